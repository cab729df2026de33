"""Retries that finish the job: the final pass over the files that failed transiently, and the dead-host rule that
stops a run against a host that answers nothing but failures."""

from __future__ import annotations

import asyncio
import collections
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from binance_archive import Archive, RetryPolicy
from binance_archive.events import Event, EventKind
from binance_archive.report import Outcome
from binance_archive.testing import FakeArchiveServer

from .scenario import FUNDING, SELECTION, TODAY, planned

QUICK = RetryPolicy(attempts=3, backoff=0.001, max_backoff=0.01)
# Against a dead host: short waits, given up after a second of nothing but failures.
DEAD_QUICK = RetryPolicy(backoff=0.05, max_backoff=0.5, dead_after=1.0)
# A plan that would take minutes to fail file by file at 4 in flight (10 tries of ~1.6 s of waits each, then the
# final pass): 12 months x 2 symbols of 1h klines, daily, is 732 files.
LONG = SELECTION.with_(start="2023-01-01", end="2023-12-31", periods="daily")
BOUND = 60.0  # seconds: generous; the runs below stop in about dead_after (printed with -s)


def archive_for(server: FakeArchiveServer, mirror: Path, **kwargs: object) -> Archive:
    return Archive(mirror, base_url=server.base_url, listing_url=server.listing_url, **kwargs)  # type: ignore[arg-type]


async def test_files_that_failed_every_try_are_fetched_in_a_final_pass_and_counted_once(
    server: FakeArchiveServer, mirror: Path
) -> None:
    files = planned(SELECTION)
    server.faults.fail_first = QUICK.attempts  # every file's first round of tries fails with a 503
    events: list[Event] = []
    async with archive_for(server, mirror, retry=QUICK) as archive:
        report = await archive.download(SELECTION, today=TODAY, progress=events.append)
    assert report.ok and report.failed == 0 and report.downloaded == len(files), report.failures
    assert sorted(o.key for o in report.outcomes) == sorted(f.key for f in files), "one outcome a file"
    assert all(o.outcome is Outcome.DOWNLOADED and o.attempts == QUICK.attempts + 1 for o in report.outcomes)
    kinds = collections.Counter(e.kind for e in events)
    assert kinds[EventKind.PLANNED] == kinds[EventKind.DONE] == len(files) and kinds[EventKind.FAILED] == 0, kinds
    assert all((mirror / f.key).is_file() and (mirror / f.checksum_key).is_file() for f in files)


async def test_without_the_final_pass_they_fail(server: FakeArchiveServer, mirror: Path) -> None:
    server.faults.fail_first = QUICK.attempts
    policy = RetryPolicy(attempts=3, backoff=0.001, max_backoff=0.01, final_pass=False)
    async with archive_for(server, mirror, retry=policy) as archive:
        report = await archive.download(FUNDING, today=TODAY)
    assert report.failed == 2 and all("gave up after 3 tries: HTTP 503" in (o.error or "") for o in report.failures)


async def test_the_final_pass_leaves_out_what_failed_for_good(
    server: FakeArchiveServer, tree: Path, mirror: Path
) -> None:
    """A checksum mismatch that repeated, a zip missing beside its sidecar and a missing date are not tried again."""
    files = planned(SELECTION)
    corrupt, lost_zip, missing = files[0], files[1], files[2]
    server.faults.corrupt_keys = {corrupt.key}
    server.faults.missing_keys = {missing.key}
    (tree / lost_zip.key).unlink()
    server.refresh()
    async with archive_for(server, mirror, retry=QUICK) as archive:
        report = await archive.download(SELECTION, today=TODAY, fallback=False)
    failed = {o.key: o for o in report.failures}
    assert set(failed) == {corrupt.key, lost_zip.key}, failed
    assert report.missing == 1 and report.downloaded == len(files) - 3
    # One round of tries each, not two: a mismatch is tried verify_attempts times, the others once.
    assert server.stats.by_key[corrupt.key] == QUICK.verify_attempts, server.stats.by_key[corrupt.key]
    assert server.stats.by_key[lost_zip.key] == 1 and server.stats.by_key[missing.key] == 1
    assert "end of the run" not in str(failed)


def closed_port() -> Iterator[str]:
    """A base URL nobody listens on: a socket bound and never listening holds the port meanwhile."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def dead_url() -> Iterator[str]:
    yield from closed_port()


async def test_a_closed_port_stops_the_run_in_seconds_saying_what_failed_and_since_when(
    dead_url: str, tmp_path: Path
) -> None:
    files = planned(LONG)
    archive = Archive(tmp_path / "m", base_url=dead_url, listing_url=dead_url, retry=DEAD_QUICK, concurrency=4)
    started = time.perf_counter()
    async with asyncio.timeout(BOUND):
        report = await archive.download(LONG, today=TODAY)
    took = time.perf_counter() - started
    print(f"\nclosed port: the run stopped after {took:.2f} s (dead_after {DEAD_QUICK.dead_after} s)")
    stopped = report.stopped or ""
    assert "every request has failed since" in stopped and " UTC (" in stopped, stopped
    assert "connection failed" in stopped and dead_url in stopped, stopped
    assert "--dead-after" in stopped
    assert not report.ok and report.downloaded == 0
    # Files not started were not attempted: most of the plan is not in the report at all.
    assert report.failed < len(files) / 4, report.failed
    assert report.total == report.failed


async def test_a_server_that_answers_503_to_everything_stops_the_run_in_seconds(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    async with FakeArchiveServer(tmp_path / "empty", error_rate=1.0) as server:
        archive = archive_for(server, tmp_path / "m", retry=DEAD_QUICK, concurrency=4)
        started = time.perf_counter()
        async with asyncio.timeout(BOUND):
            report = await archive.download(LONG, today=TODAY)
        took = time.perf_counter() - started
        asked = server.stats.requests
    print(f"\n503 to everything: the run stopped after {took:.2f} s, {asked} requests")
    stopped = report.stopped or ""
    assert "every request has failed since" in stopped and "HTTP 50" in stopped, stopped
    assert server.base_url in stopped
    assert report.failed < len(planned(LONG)) / 4


async def test_one_file_that_always_fails_is_not_a_dead_host(server: FakeArchiveServer, mirror: Path) -> None:
    """Only failures across files take the host for dead: one broken file, retried alone, fails on its own."""
    one = FUNDING.with_(end="2024-01-31")
    server.faults.fail_first = 1000
    policy = RetryPolicy(attempts=4, backoff=0.05, max_backoff=0.1, dead_after=0.1, dead_after_failures=2)
    async with archive_for(server, mirror, retry=policy, concurrency=1) as archive:
        report = await archive.download(one, today=TODAY)
    assert report.stopped is None and report.failed == 1
    assert "gave up after 8 tries" in (report.failures[0].error or "")


async def test_dead_after_zero_never_stops_the_run(dead_url: str, tmp_path: Path) -> None:
    policy = RetryPolicy(attempts=2, backoff=0.01, max_backoff=0.01, dead_after=0, dead_after_failures=1)
    archive = Archive(tmp_path / "m", base_url=dead_url, listing_url=dead_url, retry=policy, concurrency=4)
    async with asyncio.timeout(BOUND):
        report = await archive.download(FUNDING, today=TODAY)
    assert report.stopped is None and report.failed == 2
    assert all(o.attempts == 4 for o in report.failures)
