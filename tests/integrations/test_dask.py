"""A download on a real Dask cluster of worker processes (LocalCluster on loopback) from the fake archive: the same
files and bytes as one process, into a folder and into S3 (moto's server), a worker killed mid-run, and what is
refused before anything is submitted."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from binance_archive import Archive, Selection
from binance_archive.config import RunConfig
from binance_archive.errors import ConfigurationError
from binance_archive.progress import Counter
from binance_archive.testing import FakeArchiveServer, build_archive

from ..engine.scenario import FUNDING, SELECTION, TODAY, planned
from ..reliability.support import assert_mirror_trustworthy, wait_until
from ..support.moto import MotoS3, fake_aws, moto_server

pytest.importorskip("distributed", reason="the [test] extra installs dask[distributed]")

from binance_archive.integrations.dask import download_on_dask, run_config, shard_configs

__all__ = ["fake_aws", "moto_server"]  # the shared fixtures, imported to be visible here (fake_aws is autouse)

# Enough files that a run on two workers lasts a few seconds at 20 ms a request: 4 symbols x 90 days.
MANY = Selection(
    markets="spot", data_types="klines", symbols=("BTCUSDT", "ETHUSDT", "BNBUSDT", "XRPUSDT"), intervals="1h",
    start="2024-01-01", end="2024-03-30", periods="daily",
)  # fmt: skip


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` by its relative path, with its bytes."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def urls(server: FakeArchiveServer) -> dict[str, Any]:
    return {"base_url": server.base_url, "listing_url": server.listing_url, "today": TODAY}


async def test_a_cluster_stores_exactly_what_one_process_stores(tmp_path: Path, dask_client: Any) -> None:
    upstream = tmp_path / "upstream"
    files = planned(SELECTION, FUNDING)
    build_archive(upstream, files, max_rows=5)
    async with FakeArchiveServer(upstream) as server:
        async with Archive(tmp_path / "single", base_url=server.base_url, listing_url=server.listing_url) as archive:
            single = await archive.download([SELECTION, FUNDING], today=TODAY)
        requests_of_one = server.stats.zip_requests
        progress = Counter()
        report = await download_on_dask(
            [SELECTION, FUNDING], dask_client, shards=5, progress=progress, to=str(tmp_path / "cluster"), **urls(server)
        )
        assert server.stats.zip_requests == 2 * requests_of_one, "the shards are disjoint: each zip fetched once more"
    assert (report.downloaded, report.failed, report.missing) == (len(files), 0, 0) == (single.downloaded, 0, 0)
    assert report.bytes == single.bytes
    assert tree(tmp_path / "cluster") == tree(tmp_path / "single")
    assert report.outcomes == [], "detail='problems' by default: no outcome for a file that went well"
    assert await wait_until(lambda: progress.done == len(files)), progress.counts()


async def test_a_second_run_on_the_cluster_fetches_nothing(tmp_path: Path, dask_client: Any) -> None:
    upstream = tmp_path / "upstream"
    build_archive(upstream, planned(FUNDING), max_rows=5)
    async with FakeArchiveServer(upstream) as server:
        target = str(tmp_path / "mirror")
        first = await download_on_dask(FUNDING, dask_client, shards=3, to=target, **urls(server))
        requests = server.stats.requests
        again = await download_on_dask(FUNDING, dask_client, shards=3, to=target, **urls(server))
        assert server.stats.requests == requests, "a resumed run sends no request"
    assert (first.downloaded, again.downloaded, again.skipped) == (2, 0, 2)


async def test_a_cluster_writes_into_s3(tmp_path: Path, dask_client: Any, moto_server: MotoS3) -> None:
    upstream = tmp_path / "upstream"
    files = planned(SELECTION)
    build_archive(upstream, files, max_rows=5)
    bucket = moto_server.bucket()
    async with FakeArchiveServer(upstream) as server:
        report = await download_on_dask(
            SELECTION, dask_client, to=f"s3://{bucket}/mirror", storage_options=moto_server.storage_options(),
            **urls(server),
        )  # fmt: skip
    assert (report.downloaded, report.failed) == (len(files), 0)
    stored = moto_server.keys(bucket, "mirror/")
    assert set(stored) == {f"mirror/{k}" for f in files for k in (f.key, f.checksum_key)}
    for file in files:
        body = moto_server.client().get_object(Bucket=bucket, Key=f"mirror/{file.key}")["Body"].read()
        assert body == (upstream / file.key).read_bytes()


async def test_a_worker_killed_mid_run_loses_nothing_and_the_run_completes(tmp_path: Path, dask_client: Any) -> None:
    upstream = tmp_path / "upstream"
    files = planned(MANY)
    build_archive(upstream, files, max_rows=5)
    target = tmp_path / "mirror"
    pids = await asyncio.to_thread(dask_client.run, os.getpid)  # worker address -> pid
    async with FakeArchiveServer(upstream, latency=0.02) as server:
        run = asyncio.ensure_future(
            download_on_dask(MANY, dask_client, shards=4, concurrency=4, to=str(target), **urls(server))
        )
        # Kill a worker process (its nanny starts a new one) once a fifth of the files are stored.
        stored = lambda: sum(1 for _ in target.rglob("*.CHECKSUM")) if target.exists() else 0  # noqa: E731
        assert await wait_until(lambda: stored() >= len(files) // 5, bound=60), "the run did not start"
        assert stored() < len(files), "the run finished before the kill: make it longer"
        # The worker holding the run's configuration, where one is found: the copy the shards need must survive
        # its loss (scattered data did not, once Dask's memory manager had dropped the other copies).
        holders = await asyncio.to_thread(dask_client.who_has)
        config = [w for key, where in holders.items() if "config" in str(key).lower() for w in where]
        os.kill(pids[config[0]] if config else next(iter(pids.values())), signal.SIGKILL)
        report = await asyncio.wait_for(run, 120)
    assert report.failed == 0 and report.missing == 0, report.problems
    # Every file is stored whole; the killed shard's files were counted in the report of its second run (or as
    # skipped there, where the first had stored them).
    assert report.downloaded + report.skipped == len(files)
    keys = await assert_mirror_trustworthy(Archive(target), upstream)
    assert {k for k in keys if k.endswith(".zip")} == {f.key for f in files}
    assert not list(target.rglob(".binance-archive-*")), "no temporary file left in the mirror"


async def test_a_cancelled_run_stops_its_shards_and_a_re_run_finishes_the_job(tmp_path: Path, dask_client: Any) -> None:
    upstream = tmp_path / "upstream"
    files = planned(MANY)
    build_archive(upstream, files, max_rows=5)
    target = tmp_path / "mirror"
    stored = lambda: sum(1 for _ in target.rglob("*.CHECKSUM")) if target.exists() else 0  # noqa: E731
    async with FakeArchiveServer(upstream, latency=0.1) as server:
        run = asyncio.ensure_future(
            download_on_dask(MANY, dask_client, shards=2, concurrency=1, to=str(target), **urls(server))
        )
        assert await wait_until(lambda: stored() >= 10, bound=60), "the run did not start"
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        # Dask cannot interrupt a running task: the shards look at the stop flag twice a second and end. Unstopped,
        # they would go on for some 17 s more (360 files, one in flight in each of 2 shards, 100 ms a request).
        cancelled = time.monotonic()
        seen = -1
        while server.stats.requests != seen:
            seen = server.stats.requests
            await asyncio.sleep(0.5)
        assert time.monotonic() - cancelled < 5, "the shards took too long to stop"
        await asyncio.sleep(1.0)
        assert server.stats.requests == seen, "the shards kept fetching after the run was cancelled"
        kept = stored()
        assert kept < len(files) // 2
        assert not list(target.rglob(".binance-archive-*")), "files in flight were discarded"
        report = await download_on_dask(MANY, dask_client, shards=2, to=str(target), **urls(server))
    assert report.failed == 0 and report.downloaded + report.skipped == len(files)
    assert report.skipped == kept, "the re-run skipped exactly what the cancelled run had stored"
    await assert_mirror_trustworthy(Archive(target), upstream)


async def test_the_listing_is_read_once_for_the_whole_cluster(tmp_path: Path, dask_client: Any) -> None:
    named = Selection(markets="um", data_types=["fundingRate", "metrics"], symbols=("BTCUSDT", "ETHUSDT", "BNBUSDT"),
                      start="2024-01-01", end="2024-01-20")  # fmt: skip
    # Neither symbols nor start: every shard would read the listing for both, as one process does once.
    unnamed = Selection(markets="um", data_types=["fundingRate", "metrics"], end="2024-01-20")
    upstream = tmp_path / "upstream"
    files = planned(named)
    build_archive(upstream, files, max_rows=3)
    async with FakeArchiveServer(upstream) as server:
        async with Archive(tmp_path / "single", base_url=server.base_url, listing_url=server.listing_url) as archive:
            single = await archive.download(unnamed, today=TODAY)
        by_one = server.stats.listing_requests
        assert by_one > 0
        report = await download_on_dask(unnamed, dask_client, shards=6, to=str(tmp_path / "cluster"), **urls(server))
        assert server.stats.listing_requests - by_one == by_one, "the client read the listing, the shards did not"
        with pytest.raises(ConfigurationError, match=r"unknown symbol 'BTCUSD'.*did you mean"):
            await download_on_dask(
                named.with_(symbols=("BTCUSD",)), dask_client, to=str(tmp_path / "x"), **urls(server)
            )
    assert report.downloaded == single.downloaded == len(files) and report.failed == 0
    assert tree(tmp_path / "cluster") == tree(tmp_path / "single")
    assert not (tmp_path / "x").exists(), "an unknown symbol is refused before anything is submitted"


async def test_the_command_runs_a_download_on_the_cluster(tmp_path: Path, dask_client: Any) -> None:
    upstream = tmp_path / "upstream"
    files = planned(SELECTION, FUNDING)
    build_archive(upstream, files, max_rows=5)
    address = dask_client.scheduler.address
    async with FakeArchiveServer(upstream) as server:
        args = ["--market", "spot", "--data-type", "klines", "--symbol", "BTCUSDT,ETHUSDT", "--interval", "1h",
                "--start", "2024-01-01", "--end", "2024-02-10", "--today", TODAY.isoformat(),
                "--base-url", server.base_url, "--listing-url", server.listing_url]  # fmt: skip
        status, out, err = await _command("download", *args, "--to", str(tmp_path / "m"), "--dask", address,
                                          "--shards", "3", "--json")  # fmt: skip
        assert status == 0, err
        report = json.loads(out)
        assert (report["downloaded"], report["failed"]) == (len(planned(SELECTION)), 0)
        assert {k for k in tree(tmp_path / "m") if k.endswith(".zip")} == {f.key for f in planned(SELECTION)}
        requests = server.stats.requests
        for wrong, says in (
            (["--to", "relative/mirror", "--dask", address], "relative path"),
            (["--to", str(tmp_path / "m"), "--shards", "3"], "--shards cuts a run for --dask"),
            (["--to", str(tmp_path / "m"), "--dask", address, "--processes", "2"], "give one"),
        ):
            status, out, err = await _command("download", *args, *wrong)
            assert status == 2 and says in err, err
        assert server.stats.requests == requests, "refused before any request"


async def _command(*argv: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "binance_archive", *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    return process.returncode or 0, out.decode(), err.decode()


def test_a_relative_path_is_refused_before_anything_is_submitted(dask_client: Any) -> None:
    before = set(dask_client.who_has())
    with pytest.raises(ConfigurationError, match=r"relative path.*absolute path of a folder every worker shares"):
        asyncio.run(download_on_dask(FUNDING, dask_client, to="binance-data"))
    with pytest.raises(ConfigurationError, match="relative path"):
        run_config(FUNDING, to="file://relative/folder")
    assert set(dask_client.who_has()) == before, "no task was submitted"
    assert run_config(FUNDING, to="s3://bucket/prefix").to == "s3://bucket/prefix"


def test_shards_split_the_plan_disjointly_and_whole() -> None:
    config = RunConfig(selections=(MANY,), today=TODAY, to="/x")
    keys = {f.key for f in planned(MANY)}
    parts = [{f.key for s in c.selections for f in _plan(s, c)} for c in shard_configs(config, 7)]
    assert sum(len(p) for p in parts) == len(keys) and set().union(*parts) == keys
    within = shard_configs(RunConfig(selections=(MANY,), today=TODAY, to="/x", shard=(1, 3)), 4)
    inner = set().union(*({f.key for f in _plan(MANY, c)} for c in within))
    assert inner == {f.key for f in _plan(MANY, RunConfig(selections=(MANY,), today=TODAY, to="/x", shard=(1, 3)))}


def _plan(selection: Selection, config: RunConfig) -> list[Any]:
    from binance_archive import plan

    return list(plan(selection, today=TODAY, shard=config.shard))


def test_importing_the_library_imports_neither_dask_nor_prefect() -> None:
    code = (
        "import sys, binance_archive; from binance_archive import Archive, Selection, download, plan;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed', 'prefect', 'pyarrow')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_without_distributed_the_error_says_what_to_install() -> None:
    code = "import sys; sys.modules['distributed'] = None; import binance_archive.integrations.dask"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode != 0
    assert "pip install 'binance-archive[dask]'" in result.stderr
