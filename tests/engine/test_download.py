"""End to end: download, verify, resume, missing dates, fallback, faults, corruption, cancellation."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

import pytest

from binance_archive import Archive, ConfigurationError, RetryPolicy, Selection
from binance_archive.core import ArchiveFile, parse_checksum
from binance_archive.events import Event, EventKind
from binance_archive.report import Outcome, Report
from binance_archive.testing import FakeArchiveServer, build_archive, replace_file

from .scenario import FAST_RETRY, FUNDING, SELECTION, TODAY, planned


def archive_for(server: FakeArchiveServer, mirror: Path, **kwargs: object) -> Archive:
    return Archive(mirror, base_url=server.base_url, listing_url=server.listing_url, **kwargs)  # type: ignore[arg-type]


def assert_verified_mirror(mirror: Path, upstream: Path, files: list[ArchiveFile]) -> None:
    for file in files:
        stored = (mirror / file.key).read_bytes()
        assert stored == (upstream / file.key).read_bytes()
        sidecar = (mirror / file.checksum_key).read_bytes()
        assert sidecar == (upstream / file.checksum_key).read_bytes()
        assert hashlib.sha256(stored).hexdigest() == parse_checksum(sidecar)


async def test_download_verifies_and_mirrors_the_layout(server: FakeArchiveServer, tree: Path, mirror: Path) -> None:
    files = planned(SELECTION, FUNDING)
    async with archive_for(server, mirror) as archive:
        report = await archive.download(SELECTION, today=TODAY)
        report2 = await archive.download(FUNDING, today=TODAY)
    assert report.downloaded + report2.downloaded == len(files)
    assert report.ok and report2.ok and report.failed == report.missing == 0
    assert report.bytes == sum((tree / f.key).stat().st_size for f in planned(SELECTION))
    assert_verified_mirror(mirror, tree, files)
    # Each file costs one zip and one sidecar request, no more.
    assert server.stats.zip_requests == len(files)
    assert server.stats.checksum_requests == len(files)


async def test_resume_fetches_nothing_already_stored(server: FakeArchiveServer, mirror: Path) -> None:
    async with archive_for(server, mirror) as archive:
        first = await archive.download(SELECTION, today=TODAY)
        server.stats.reset()
        second = await archive.download(SELECTION, today=TODAY)
    assert first.downloaded == len(planned(SELECTION))
    assert second.skipped == first.downloaded and second.downloaded == 0
    assert server.stats.requests == 0


async def test_resume_redownloads_a_file_whose_sidecar_was_never_written(
    server: FakeArchiveServer, mirror: Path
) -> None:
    async with archive_for(server, mirror) as archive:
        await archive.download(SELECTION, today=TODAY)
        victim = planned(SELECTION)[3]
        (mirror / victim.checksum_key).unlink()  # as if the process died between zip and sidecar
        server.stats.reset()
        report = await archive.download(SELECTION, today=TODAY)
    assert report.downloaded == 1 and server.stats.by_key[victim.key] == 1


async def test_force_downloads_again(server: FakeArchiveServer, mirror: Path) -> None:
    async with archive_for(server, mirror) as archive:
        await archive.download(SELECTION, today=TODAY)
        report = await archive.download(SELECTION, today=TODAY, force=True)
    assert report.downloaded == len(planned(SELECTION)) and report.skipped == 0


async def test_missing_date_is_missing_not_failed(server: FakeArchiveServer, tree: Path, mirror: Path) -> None:
    daily = [f for f in planned(SELECTION) if f.period.value == "daily"]
    gone = daily[2]
    server.faults.missing_keys = {gone.key}
    async with archive_for(server, mirror) as archive:
        report = await archive.download(SELECTION, today=TODAY)
    assert report.ok and report.missing == 1 and report.failed == 0
    assert [o.key for o in report.outcomes if o.outcome is Outcome.MISSING] == [gone.key]
    assert not (mirror / gone.key).exists() and not (mirror / gone.checksum_key).exists()


async def test_missing_monthly_file_falls_back_to_daily_files(tmp_path: Path, mirror: Path) -> None:
    selection = Selection(
        markets="spot", data_types="klines", symbols="BTCUSDT", intervals="1h", start="2024-02", end="2024-02"
    )
    monthly = planned(selection)
    assert [f.period.value for f in monthly] == ["monthly"]
    days = planned(selection.with_(periods="daily"))
    upstream = tmp_path / "upstream"
    build_archive(upstream, days, max_rows=5)  # only the daily files exist upstream
    async with FakeArchiveServer(upstream) as server, archive_for(server, mirror) as archive:
        report = await archive.download(selection, today=TODAY)
    assert report.downloaded == len(days) == 29
    assert report.missing == 1 and report.ok
    assert_verified_mirror(mirror, upstream, days)


async def test_injected_faults_are_survived(server: FakeArchiveServer, tree: Path, mirror: Path) -> None:
    server.faults.error_rate = 0.15
    server.faults.rate_429 = 0.1
    server.faults.retry_after = 0
    server.faults.reset_rate = 0.05
    server.faults.truncate_rate = 0.1
    server.faults.seed = 7
    events: list[Event] = []
    async with archive_for(server, mirror, retry=RetryPolicy(attempts=12, backoff=0.01, max_backoff=0.05)) as archive:
        report = await archive.download(SELECTION, today=TODAY, progress=events.append)
    assert report.ok and report.downloaded == len(planned(SELECTION)), report.failures
    assert sum(server.stats.faults.values()) > 0, "the fault knobs injected nothing"
    assert any(e.kind is EventKind.RETRY for e in events)
    assert_verified_mirror(mirror, tree, planned(SELECTION))


async def test_fail_first_is_retried_with_backoff(server: FakeArchiveServer, mirror: Path) -> None:
    server.faults.fail_first = 2
    async with archive_for(server, mirror, retry=FAST_RETRY) as archive:
        report = await archive.download(FUNDING, today=TODAY)
    assert report.ok and report.downloaded == 2
    assert all(o.attempts == 3 for o in report.outcomes)


async def test_retries_are_bounded(server: FakeArchiveServer, mirror: Path) -> None:
    server.faults.error_rate = 1.0
    async with archive_for(server, mirror, retry=RetryPolicy(attempts=3, backoff=0.001)) as archive:
        report = await archive.download(FUNDING, today=TODAY)
    assert report.failed == 2 and not report.ok
    # 3 tries, then 3 more in the final pass at the end of the run: never more.
    assert all("gave up after 6 tries (3, then 3 at the end of the run)" in (o.error or "") for o in report.failures)
    assert all(o.attempts == 6 for o in report.failures)
    assert all(server.stats.by_key[f.key] == 6 for f in planned(FUNDING)), server.stats.by_key
    assert not (mirror / "data").exists() or not any(p.is_file() for p in (mirror / "data").rglob("*"))


async def test_corrupted_file_is_reported_and_not_stored(server: FakeArchiveServer, mirror: Path) -> None:
    victim = planned(SELECTION)[0]
    server.faults.corrupt_keys = {victim.key}
    async with archive_for(server, mirror, retry=FAST_RETRY) as archive:
        report = await archive.download(SELECTION, today=TODAY)
    assert report.failed == 1 and not report.ok
    (failure,) = report.failures
    assert failure.key == victim.key and "does not match the sidecar" in (failure.error or "")
    assert not (mirror / victim.key).exists() and not (mirror / victim.checksum_key).exists()
    assert report.downloaded == len(planned(SELECTION)) - 1


async def test_stalled_body_times_out_and_leaves_nothing(server: FakeArchiveServer, mirror: Path) -> None:
    victim = planned(FUNDING)[0]
    server.faults.stall_keys = {victim.key}
    server.faults.stall_seconds = 5
    archive = archive_for(
        server, mirror, transport_options={"read_timeout": 0.3}, retry=RetryPolicy(attempts=2, backoff=0.001)
    )
    async with archive:
        report = await archive.download(FUNDING, today=TODAY)
    assert report.failed == 1 and report.downloaded == 1
    assert "timed out" in (report.failures[0].error or "")
    assert not (mirror / victim.key).exists()


async def test_cancellation_leaves_no_partial_file(server: FakeArchiveServer, mirror: Path) -> None:
    stalled = planned(SELECTION)[:4]
    server.faults.stall_keys = {f.key for f in stalled}
    server.faults.stall_seconds = 30
    done = asyncio.Event()

    def on_event(event: Event) -> None:
        if event.kind is EventKind.DONE:
            done.set()

    async with archive_for(server, mirror, concurrency=8) as archive:
        task = asyncio.create_task(archive.download(SELECTION, today=TODAY, progress=on_event))
        await asyncio.wait_for(done.wait(), 10)
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    for file in stalled:
        assert not (mirror / file.key).exists()
    # The mirror fixture asserts that no temporary file is left either.


async def test_a_cancelled_download_starts_no_new_file(server: FakeArchiveServer, mirror: Path) -> None:
    """Cancelled (Ctrl-C) the moment a file is done, the download starts no other file.

    The task group cancels the workers a loop iteration after the download's own task is cancelled; meanwhile a
    worker whose file just ended would go straight on to its next (tens of files, measured with 80 in flight).
    """
    started_after: list[str] = []
    cancelled = False
    task: asyncio.Task[Report] | None = None

    def on_event(event: Event) -> None:
        nonlocal cancelled
        if event.kind is EventKind.DONE and not cancelled:
            cancelled = True
            assert task is not None
            task.cancel()  # as the command's Ctrl-C handler does, from inside a worker's step
        elif event.kind is EventKind.STARTED and cancelled:
            started_after.append(event.file.key)

    async with archive_for(server, mirror, concurrency=4) as archive:
        task = asyncio.create_task(archive.download(SELECTION, today=TODAY, progress=on_event))
        with pytest.raises(asyncio.CancelledError):
            await task
    assert cancelled, "no file was done: the test tests nothing"
    assert started_after == []


async def test_refresh_replaces_only_changed_files(server: FakeArchiveServer, tree: Path, mirror: Path) -> None:
    files = planned(SELECTION)
    async with archive_for(server, mirror) as archive:
        await archive.download(SELECTION, today=TODAY)
        old = parse_checksum((mirror / files[1].checksum_key).read_bytes())
        new = replace_file(tree, files[1], max_rows=50)
        untouched = (mirror / files[2].key).stat().st_mtime_ns
        server.stats.reset()
        report = await archive.download(SELECTION, today=TODAY, refresh=True)
    assert report.downloaded == 1 and report.skipped == len(files) - 1
    (outcome,) = report.outcomes
    assert outcome.key == files[1].key and outcome.previous_sha256 == old and outcome.sha256 == new
    # The listing vouches for the unchanged sidecars (one listing per series and year; 2 symbols x monthly and
    # daily files here): only the changed file's sidecar and zip are fetched.
    assert server.stats.zip_requests == 1 and server.stats.checksum_requests == 1
    assert server.stats.listing_requests == 4
    assert (mirror / files[2].key).stat().st_mtime_ns == untouched
    assert_verified_mirror(mirror, tree, files)


async def test_report_is_json_serialisable(server: FakeArchiveServer, mirror: Path) -> None:
    server.faults.missing_keys = {planned(FUNDING)[1].key}
    async with archive_for(server, mirror) as archive:
        report = await archive.download(FUNDING, today=TODAY)
    data = json.loads(report.to_json())
    assert data["downloaded"] == 1 and data["missing"] == 1 and data["ok"] is True
    assert {o["outcome"] for o in data["outcomes"]} == {"downloaded", "missing"}
    again = Report.from_dict(data)
    assert again.outcomes == report.outcomes and again.downloaded == report.downloaded


async def test_progress_events_follow_the_run(server: FakeArchiveServer, mirror: Path) -> None:
    events: list[Event] = []
    async with archive_for(server, mirror, progress=events.append) as archive:
        report = await archive.download(SELECTION, today=TODAY)
        await archive.download(SELECTION, today=TODAY)
    kinds = [e.kind for e in events]
    assert kinds.count(EventKind.DONE) == report.downloaded
    assert kinds.count(EventKind.SKIPPED) == report.downloaded
    assert sum(e.bytes for e in events if e.kind is EventKind.BYTES) == report.bytes


async def test_concurrency_is_bounded(server: FakeArchiveServer, mirror: Path) -> None:
    server.faults.latency = 0.02
    async with archive_for(server, mirror, concurrency=3) as archive:
        report = await archive.download(SELECTION, today=TODAY)
    assert report.ok
    # Each file in flight holds at most two requests (its zip and its sidecar).
    assert 2 <= server.stats.max_in_flight <= 6


async def test_download_without_async_with(server: FakeArchiveServer, mirror: Path) -> None:
    report = await archive_for(server, mirror).download(FUNDING, today=TODAY)
    assert report.downloaded == 2


async def test_invalid_selection_is_refused_before_any_request(server: FakeArchiveServer, mirror: Path) -> None:
    bad = Selection(markets="um", data_types="klines", symbols="BTCUSDT", intervals="1s", start="2024-01-01")
    with pytest.raises(ConfigurationError, match="valid intervals"):
        await archive_for(server, mirror).download(bad, today=TODAY)
    assert server.stats.requests == 0 and not mirror.exists()


async def test_a_local_body_that_cannot_be_read_fails_its_file_not_the_run(tmp_path: Path) -> None:
    """A transport handing over a file on local disk (s5cmd's staged copy, a mirror's zip) that is gone by the time
    the engine reads it: that file fails with the reason, the run goes on (an OSError used to escape the run)."""
    from contextlib import asynccontextmanager
    from typing import ClassVar

    from binance_archive.backends import FileBody, Transport

    files = planned(FUNDING)
    upstream = tmp_path / "upstream"
    build_archive(upstream, files, max_rows=5)

    class Vanishing(Transport):
        name: ClassVar[str] = "vanishing"

        @asynccontextmanager
        async def get(self, key: str):  # type: ignore[no-untyped-def]
            path = upstream / key
            yield FileBody(upstream / (key + ".gone") if key == files[0].key else path, size=path.stat().st_size)

        async def get_bytes(self, key: str, *, max_size: int) -> bytes:
            return (upstream / key).read_bytes()

    archive = Archive(tmp_path / "mirror", transport=Vanishing(), retry=RetryPolicy(attempts=2, backoff=0))
    report = await archive.download(FUNDING, today=TODAY)
    assert report.downloaded == 1 and report.failed == 1
    (failure,) = report.failures
    assert failure.key == files[0].key and "cannot read" in (failure.error or "") and ".gone" in (failure.error or "")
