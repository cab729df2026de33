"""A hostile environment: a full disk, permission denied, a read-only file system, an unreachable or stalling server.

Each must give a clear error (a failed file with its reason, or an exit status and a message; never a
traceback), within a bounded time (timeouts, bounded retries), and leave nothing partial behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import io
import json
import multiprocessing
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from binance_archive import Archive, RetryPolicy, Selection
from binance_archive.cli import main
from binance_archive.core import ArchiveFile
from binance_archive.errors import TransportError
from binance_archive.report import Outcome
from binance_archive.testing import make_sidecar, make_zip, replace_file

from ..support.mounts import mounted_tmpfs, remount
from ..support.processes import s5cmd_children
from .scenario import TODAY, build, planned
from .support import QUICK_RETRY, ServerThread, assert_mirror_trustworthy, backends, closed_port, run_main, temp_files

SMALL = Selection(
    markets="spot",
    data_types="klines",
    symbols="BTCUSDT",
    intervals="1m",
    start="2024-03-01",
    end="2024-03-20",
    periods="daily",
)  # fmt: skip  20 files of ~70 KB
BIG = Selection(
    markets="spot", data_types="trades", symbols="BTCUSDT", start="2024-03-01", end="2024-03-01", periods="daily"
)  # one file of more than 1 MB: it streams into its temporary file instead of being buffered


def cli_download(server_url: str, listing_url: str, to: Path, *extra: str) -> list[str]:
    return [
        "download", "--market", "spot", "--data-type", "klines", "--symbol", "BTCUSDT", "--interval", "1m",
        "--start", "2024-03-01", "--end", "2024-03-20", "--period", "daily", "--today", TODAY.isoformat(),
        "--base-url", server_url, "--listing-url", listing_url, "--to", str(to), "--json", *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("upstream")
    build(root, SMALL, max_rows=None)
    write_big(root, planned(BIG)[0], 2 * 1024 * 1024)
    return root


def write_big(root: Path, file: ArchiveFile, size: int) -> None:
    """A zip of about ``size`` bytes (random rows do not compress), with its sidecar."""
    rng = random.Random(file.key)
    rows = b"".join(b"%d,%s\n" % (i, rng.randbytes(24).hex().encode()) for i in range(size // 40))
    data = make_zip(file, rows)
    assert len(data) > 1024 * 1024, "the big file must be larger than what the local storage buffers"
    path = root / file.key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    (root / file.checksum_key).write_bytes(make_sidecar(file, data))


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[[str, str], Path]]:
    """Mount tmpfs file systems (skipping, saying why, where mounting is not allowed); unmounted afterwards."""
    with contextlib.ExitStack() as mounts:
        yield lambda name, options: mounts.enter_context(mounted_tmpfs(tmp_path / name, options))


# -- a full disk ------------------------------------------------------------------------------------------------


def test_a_full_disk_fails_files_clearly_leaves_nothing_partial_and_a_rerun_completes(
    upstream: Path, tmpfs: Callable[[str, str], Path]
) -> None:
    mirror = tmpfs("full", "size=600k")
    with ServerThread(upstream) as server:
        # The big file streams into its temporary file and meets the full disk mid-body; the small ones
        # meet it when they are written, or when their sidecar is.
        status, out, err = run_main(cli_download(server.base_url, server.listing_url, mirror, "--concurrency", "4"))
        big_status, big_out, _ = run_main(
            ["download", "--market", "spot", "--data-type", "trades", "--symbol", "BTCUSDT", "--start", "2024-03-01",
             "--end", "2024-03-01", "--period", "daily", "--today", TODAY.isoformat(), "--base-url", server.base_url,
             "--to", str(mirror), "--json"]
        )  # fmt: skip
        assert status == 1 and big_status == 1, err
        assert "Traceback" not in err
        report = json.loads(out)
        failures = [o for o in report["outcomes"] if o["outcome"] == "failed"]
        assert failures and report["downloaded"] >= 1, "the disk should take a few files, then be full"
        assert all("the disk is full" in o["error"] for o in failures), failures
        # The run stops there: only the files in flight fail, the rest are not attempted.
        assert "the disk is full" in report["stopped"] and len(failures) <= 4
        (big,) = json.loads(big_out)["outcomes"]
        assert big["outcome"] == "failed" and "the disk is full" in big["error"]
        # Nothing partial: no temporary file, no zip without its sidecar, nothing unverified.
        assert not temp_files(mirror)
        asyncio.run(assert_mirror_trustworthy(Archive(mirror, entry_points=False), upstream))

        # Space is freed: the same command completes the mirror, fetching only what is missing.
        remount(mirror, "size=64m")
        server.stats.reset()
        status, out, err = run_main(cli_download(server.base_url, server.listing_url, mirror))
        assert status == 0, err
        again = json.loads(out)
        planned_count = again["downloaded"] + again["skipped"]
        assert report["downloaded"] + len(failures) < planned_count, "the first run should have stopped early"
        assert again["skipped"] == report["downloaded"] and again["failed"] == 0 and again["stopped"] is None
        assert server.stats.zip_requests == again["downloaded"]
    asyncio.run(assert_mirror_trustworthy(Archive(mirror, entry_points=False), upstream))


def test_a_sidecar_that_cannot_be_stored_takes_its_zip_back(upstream: Path, tmpfs: Callable[[str, str], Path]) -> None:
    """The disk fills up exactly between a zip and its sidecar (the file system has one inode left): the zip must
    not stay under its final name without its sidecar."""
    mirror = tmpfs("inodes", "size=64m")
    one = planned(SMALL)[0]
    (mirror / one.folder).mkdir(parents=True)
    stats = os.statvfs(mirror)
    remount(mirror, f"nr_inodes={stats.f_files - stats.f_ffree + 1}")  # room for the zip, none for its sidecar
    with ServerThread(upstream) as server:
        archive = Archive(mirror, base_url=server.base_url, retry=QUICK_RETRY, entry_points=False)
        report = asyncio.run(archive.download(SMALL.with_(end="2024-03-01"), today=TODAY))
    (failure,) = report.failures
    assert "the disk is full" in (failure.error or "") and one.checksum_key in (failure.error or "")
    assert not (mirror / one.key).exists(), "a zip was left under its final name without its sidecar"
    assert not temp_files(mirror)


# -- a read-only file system ------------------------------------------------------------------------------------


async def test_a_read_only_file_system_is_named_and_the_stored_files_are_left_alone(
    upstream: Path, tmpfs: Callable[[str, str], Path]
) -> None:
    mirror = tmpfs("ro", "size=64m")
    async with backends("http", "local", upstream, mirror.parent) as cell:
        assert cell.server is not None
        archive = Archive(mirror, base_url=cell.server.base_url, retry=QUICK_RETRY, entry_points=False)
        assert (await archive.download(SMALL, today=TODAY)).ok
        lost = planned(SMALL)[5]
        (mirror / lost.key).unlink()
        (mirror / lost.checksum_key).unlink()
        before = {p: p.read_bytes() for p in mirror.rglob("*") if p.is_file()}
        remount(mirror, "ro")
        cell.server.stats.reset()
        try:
            # Nothing new can be written...
            fresh = await archive.download(SMALL, today=TODAY)
            # ...and replacing what is stored (--force, --refresh) must stop cleanly, not with an OSError.
            replace_file(upstream, planned(SMALL)[0], max_rows=30)
            forced = await archive.download(SMALL, today=TODAY, force=True)
            refreshed = await archive.download(SMALL, today=TODAY, refresh=True)
        finally:
            remount(mirror, "rw")
            replace_file(upstream, planned(SMALL)[0], max_rows=None, seed=0)
        # The storage said up front that it cannot be written: no zip was requested by any of the three runs.
        assert cell.server.stats.zip_requests == 0
    # The lost file stops the run before its request (nothing could be stored): how many of the 19 stored files
    # were seen (skipped) before the stop depends on timing; none was touched, and no file is counted failed.
    assert fresh.skipped <= 19 and fresh.downloaded == 0
    for report in (fresh, forced, refreshed):
        assert not report.failures and report.stopped and "read-only" in report.stopped, report
        assert "nothing was fetched" in report.stopped
    assert {p: p.read_bytes() for p in mirror.rglob("*") if p.is_file()} == before


# -- permission denied (a real EACCES: an unprivileged user, since root bypasses file modes) --------------------


def _as_nobody(argv: list[str], conn: Any) -> None:
    """Runs in a forked child: drop to nobody, run the CLI, send back (status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    sys.stderr = err
    try:
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
        status = main(argv, out=out)
    except BaseException:
        status = 99
        err.write(traceback.format_exc())
    conn.send((status, out.getvalue(), err.getvalue()))
    conn.close()
    os._exit(0)


def as_nobody(argv: list[str]) -> tuple[int, str, str]:
    if os.geteuid() != 0:
        pytest.skip("dropping to an unprivileged user needs root")
    # The child cannot read this interpreter's files once it is nobody (they may live under /root): everything
    # the command imports is imported here, before the fork, whatever earlier tests happened to import.
    import importlib

    for module in ("binance_archive.archive", "binance_archive.plugins", "binance_archive.transports.s5cmd",
                   "binance_archive.transports.mirror", "binance_archive.transports.http.reqwest_client", "binance_archive.transports.http.aiohttp_client", "aiohttp",
                   "binance_archive.transports.http.native",
                   "pyreqwest.client", "pyreqwest.exceptions", "cattrs", "uvloop", "encodings.idna"):  # fmt: skip
        importlib.import_module(module)
    Archive("unused", entry_points=False)  # the plugin manager and every built-in backend's module
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_as_nobody, args=(argv, send))
    child.start()
    send.close()
    try:
        if not receive.poll(120):
            child.kill()
            pytest.fail("the unprivileged CLI did not answer within 120 s")
        result: tuple[int, str, str] = receive.recv()
    finally:
        child.join(10)
    return result


@pytest.fixture
def root_owned(tmp_path: Path) -> Iterator[Path]:
    """A folder nobody may read and traverse but not write (pytest's own temp folders are private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="binance-archive-eacces-", dir="/tmp"))
    folder.chmod(0o755)
    yield folder
    subprocess.run(["rm", "-rf", str(folder)], check=False)


def test_permission_denied_is_named_for_new_files_and_for_replacing_stored_ones(
    upstream: Path, root_owned: Path
) -> None:
    mirror = root_owned / "mirror"
    mirror.mkdir(mode=0o755)
    with ServerThread(upstream) as server:
        status, out, err = as_nobody(cli_download(server.base_url, server.listing_url, mirror))
        assert status == 1, err
        report = json.loads(out)
        # Refused before any file was requested (the storage was asked whether it can be written), not 20 failures.
        assert report["failed"] == 0 and "permission denied" in report["stopped"], report
        assert server.stats.zip_requests == 0
        assert not any(mirror.iterdir()), "nothing may be left behind"

        # A complete mirror owned by root: nobody's --force and --refresh must fail cleanly and change nothing.
        status, out, err = run_main(cli_download(server.base_url, server.listing_url, mirror))
        assert status == 0, err
        before = {p: p.read_bytes() for p in mirror.rglob("*") if p.is_file()}
        for flag in ("--force", "--refresh"):
            if flag == "--refresh":
                replace_file(upstream, planned(SMALL)[3], max_rows=30)
            server.stats.reset()
            status, out, err = as_nobody(cli_download(server.base_url, server.listing_url, mirror, flag))
            assert status == 1 and "Traceback" not in err, err
            report = json.loads(out)
            assert report["failed"] == 0 and "permission denied" in report["stopped"], report
            assert server.stats.zip_requests == 0
        replace_file(upstream, planned(SMALL)[3], max_rows=None, seed=0)
    assert {p: p.read_bytes() for p in mirror.rglob("*") if p.is_file()} == before


def test_verify_names_a_folder_it_may_not_read(upstream: Path, root_owned: Path) -> None:
    mirror = root_owned / "mirror"
    with ServerThread(upstream) as server:
        status, _, err = run_main(cli_download(server.base_url, server.listing_url, mirror))
        assert status == 0, err
    private = mirror / planned(SMALL)[0].folder
    private.chmod(0o700)
    status, out, err = as_nobody(["verify", str(mirror)])
    assert status == 1 and "Traceback" not in err, err
    assert "permission denied" in (out + err).lower() and str(private) in out + err


# -- an unreachable or silent server ----------------------------------------------------------------------------

RETRY = RetryPolicy(attempts=3, backoff=0.05, max_backoff=0.1)
BOUND = 20.0  # seconds; every case below ends in well under a second here


async def test_an_unreachable_server_fails_every_file_quickly_and_creates_nothing(tmp_path: Path) -> None:
    base_url = f"http://127.0.0.1:{closed_port()}"
    mirror = tmp_path / "mirror"
    archive = Archive(mirror, base_url=base_url, listing_url=base_url, retry=RETRY, entry_points=False)
    async with asyncio.timeout(BOUND):
        report = await archive.download(SMALL, today=TODAY)
    assert report.failed == 20 and report.downloaded == 0
    # 3 tries, and 3 more in the final pass (2 s of failures, short of the dead-host rule's 15 s).
    assert all("connection failed" in (o.error or "") and "gave up after 6 tries" in (o.error or "")
               for o in report.failures)  # fmt: skip
    assert not mirror.exists() or not any(mirror.rglob("*.zip"))
    # Discovery (no symbols given) needs the listing: a clear TransportError after its retries, not a hang.
    async with asyncio.timeout(BOUND):
        with pytest.raises(TransportError, match="connection failed"):
            await archive.download(SMALL.with_(symbols=()), today=TODAY)


def test_the_cli_reports_an_unreachable_server_with_status_1(tmp_path: Path) -> None:
    base_url = f"http://127.0.0.1:{closed_port()}"
    status, _, err = run_main(
        ["download", "--market", "spot", "--data-type", "klines", "--interval", "1m", "--start", "2024-03-01",
         "--end", "2024-03-02", "--today", TODAY.isoformat(), "--base-url", base_url, "--listing-url", base_url,
         "--to", str(tmp_path / "m"), "--transport-option", "connect_timeout=1", "--retries", "3"]
    )  # fmt: skip
    assert status == 1 and "Traceback" not in err
    assert "connection failed" in err and base_url in err


def test_the_cli_stops_against_a_dead_host_saying_what_failed_and_since_when(tmp_path: Path) -> None:
    """Symbols and dates given (no listing needed): 60 files whose tries would take minutes at 2 in flight; the
    run stops once every request has failed for --dead-after seconds."""
    base_url = f"http://127.0.0.1:{closed_port()}"
    started = time.perf_counter()
    status, out, err = run_main(
        ["download", "--market", "spot", "--data-type", "klines", "--interval", "1m", "--symbol", "BTCUSDT,ETHUSDT",
         "--start", "2024-03-01", "--end", "2024-03-30", "--period", "daily", "--today", TODAY.isoformat(),
         "--base-url", base_url, "--to", str(tmp_path / "m"), "--concurrency", "2", "--dead-after", "1"]
    )  # fmt: skip
    took = time.perf_counter() - started
    print(f"\nthe CLI against a closed port: status {status} after {took:.1f} s")
    assert status == 1 and "Traceback" not in err, err
    assert "stopped early: every request has failed since" in out and "UTC" in out, out
    assert "connection failed" in out and base_url in out
    assert took < BOUND * 3, "the default retries of 60 files would take minutes"


@pytest.mark.parametrize("client", ["native", "aiohttp", "pyreqwest"])
async def test_a_server_that_accepts_and_never_answers_times_out(client: str, tmp_path: Path) -> None:
    accepted: list[socket.socket] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(3600)

    silent = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    try:
        archive = Archive(
            tmp_path / "mirror", base_url=f"http://127.0.0.1:{port}", retry=RETRY, entry_points=False,
            transport_options={"read_timeout": 0.2, "client": client},
        )  # fmt: skip
        async with asyncio.timeout(0.2 * RETRY.attempts * 2 + BOUND):
            report = await archive.download(SMALL.with_(end="2024-03-02"), today=TODAY)
    finally:
        silent.close()
        del accepted
    assert report.failed == 2 and all("timed out" in (o.error or "") for o in report.failures), report.failures


@pytest.mark.parametrize("transport", ["http", "http-pyreqwest"])
async def test_a_body_that_stalls_midway_times_out_and_leaves_nothing(
    transport: str, upstream: Path, tmp_path: Path
) -> None:
    stalled_zip, stalled_sidecar = planned(SMALL)[1], planned(SMALL)[2]
    stalls = {stalled_zip.key, stalled_sidecar.checksum_key, planned(BIG)[0].key}
    async with backends(transport, "local", upstream, tmp_path, stall_keys=stalls, stall_seconds=60) as cell:
        archive = cell.archive(retry=RetryPolicy(attempts=2, backoff=0.01), transport_options={"read_timeout": 0.3})
        async with asyncio.timeout(0.3 * 2 * 2 + BOUND):
            report = await archive.download([SMALL, BIG], today=TODAY)
    failed = {o.key: o.error or "" for o in report.failures}
    assert set(failed) == {stalled_zip.key, stalled_sidecar.key, planned(BIG)[0].key}
    assert all("timed out" in e for e in failed.values()), failed
    assert report.downloaded == 20 - 2
    mirror = tmp_path / "mirror"
    for key in failed:
        assert not (mirror / key).exists()
    assert not temp_files(mirror)
    assert all(o.outcome is not Outcome.SKIPPED for o in report.outcomes)


async def test_s5cmd_bounds_a_body_that_stalls(upstream: Path, tmp_path: Path) -> None:
    """s5cmd has no read timeout: the transport's watchdog kills a process that makes no progress for
    read_timeout, fails its unfinished files as retryable, and removes their partial (staged) files."""
    stalled, healthy = planned(SMALL)[0], planned(SMALL)[1]
    report = None
    async with backends("s5cmd", "local", upstream, tmp_path, stall_keys={stalled.key}, stall_seconds=30) as cell:
        archive = cell.archive(retry=RetryPolicy(attempts=2, backoff=0.01), transport_options={"read_timeout": 0.3})
        with contextlib.suppress(TimeoutError):  # caught here, so that no traceback keeps s5cmd's pipes alive
            async with asyncio.timeout(0.3 * 2 * 2 + 2):
                report = await archive.download(SMALL.with_(end="2024-03-02"), today=TODAY)
        staged = sorted(p.name for p in cell.staging.rglob("*") if p.is_file())
        children = s5cmd_children()
    collect_while_the_loop_runs()
    assert report is not None, "still waiting for the stalled body"
    assert report.failed == 1 and report.downloaded == 1, report.failures
    (failure,) = report.failures
    assert failure.key == stalled.key
    assert "timed out" in (failure.error or "") and "stalled for 0.3 s" in (failure.error or ""), failure.error
    mirror = tmp_path / "mirror"
    assert not (mirror / stalled.key).exists() and (mirror / healthy.key).exists()
    assert not temp_files(mirror)
    assert staged == [], "the killed process's partial files must be removed at once, not at close"
    assert children == [], "the stalled s5cmd must be killed and reaped"


def collect_while_the_loop_runs() -> list[str]:
    """Collect garbage now, while the event loop still runs: a subprocess transport left unclosed is then closed
    (with a ResourceWarning) instead of failing a later test once its loop is gone. Returns those warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        gc.collect()
    return [str(w.message) for w in caught if "unclosed transport" in str(w.message)]


async def test_cancelling_an_s5cmd_download_closes_its_pipes(upstream: Path, tmp_path: Path) -> None:
    collect_while_the_loop_runs()
    async with backends("s5cmd", "local", upstream, tmp_path, stall_keys={planned(SMALL)[0].key}) as cell:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.5):
                await cell.archive().download(SMALL.with_(end="2024-03-01"), today=TODAY)
    assert collect_while_the_loop_runs() == []
