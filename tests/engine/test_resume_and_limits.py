"""Resume by folder scans, large bodies hashed in threads, and a full storage that stops the run."""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from pathlib import Path

import pytest

from binance_archive import Archive, Selection, StorageFullError
from binance_archive.core import ArchiveFile
from binance_archive.engine.stored import SCAN_AFTER, StoredIndex
from binance_archive.report import Outcome
from binance_archive.storages.local import LocalStorage
from binance_archive.testing import FakeArchiveServer, build_archive

from .scenario import FAST_RETRY, TODAY, planned

# One folder of 40 daily files: more than SCAN_AFTER, so a re-run scans it.
DAILY = Selection(
    markets="spot",
    data_types="klines",
    symbols="BTCUSDT",
    intervals="1h",
    start="2024-01-01",
    end="2024-02-09",
    periods="daily",
)


class CountingStorage(LocalStorage):
    """The local storage, counting what the engine asks of it."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.calls: Counter[str] = Counter()

    async def stat(self, key: str):  # type: ignore[no-untyped-def]
        self.calls["stat"] += 1
        return await super().stat(key)

    async def sizes(self, folder: str) -> dict[str, int]:
        self.calls["sizes"] += 1
        return await super().sizes(folder)


@pytest.fixture
def daily_tree(tmp_path: Path) -> Path:
    root = tmp_path / "upstream"
    build_archive(root, planned(DAILY), max_rows=20)
    return root


async def test_a_resumed_folder_is_scanned_once_not_stated_file_by_file(daily_tree: Path, tmp_path: Path) -> None:
    files = planned(DAILY)
    assert len(files) > SCAN_AFTER + 10
    async with FakeArchiveServer(daily_tree) as server:
        storage = CountingStorage(tmp_path / "mirror")
        archive = Archive(storage, base_url=server.base_url, listing_url=server.listing_url)
        first = await archive.download(DAILY, today=TODAY)
        storage.calls.clear()
        server.stats.reset()
        second = await archive.download(DAILY, today=TODAY)
    assert first.downloaded == len(files)
    assert second.skipped == len(files) and second.downloaded == 0 and second.ok
    assert server.stats.requests == 0
    # The first SCAN_AFTER files are checked one by one (sidecar and zip), the rest from one scan.
    assert storage.calls == {"stat": 2 * SCAN_AFTER, "sizes": 1}


async def test_a_lost_zip_past_the_scan_is_fetched_again_and_its_old_sidecar_unmarked(
    daily_tree: Path, tmp_path: Path
) -> None:
    files = planned(DAILY)
    victim, emptied = files[-5], files[-2]
    mirror = tmp_path / "mirror"
    async with FakeArchiveServer(daily_tree) as server:
        archive = Archive(mirror, base_url=server.base_url, listing_url=server.listing_url)
        await archive.download(DAILY, today=TODAY)
        (mirror / victim.key).unlink()  # the zip is lost, its sidecar stays
        (mirror / emptied.key).write_bytes(b"")  # an empty zip is not a stored file either
        server.stats.reset()
        report = await archive.download(DAILY, today=TODAY)
    assert report.downloaded == 2 and report.skipped == len(files) - 2
    assert server.stats.by_key[victim.key] == 1 and server.stats.by_key[emptied.key] == 1
    for file in (victim, emptied):
        assert (mirror / file.key).read_bytes() == (daily_tree / file.key).read_bytes()


async def test_a_stored_index_answers_only_from_complete_files(tmp_path: Path) -> None:
    files = planned(DAILY)[: SCAN_AFTER + 4]
    storage = LocalStorage(tmp_path)
    for file in files[:-2]:
        await storage.put_bytes(file.key, b"zip bytes")
        await storage.put_bytes(file.checksum_key, b"sidecar")
    await storage.put_bytes(files[-2].key, b"zip without its sidecar")  # not committed: not stored
    index = StoredIndex(storage)
    answers = [await index.lookup(file) for file in files]
    # Unknown until the folder is due for a scan, then answered from it.
    assert answers[:SCAN_AFTER] == [None] * SCAN_AFTER
    assert answers[SCAN_AFTER:] == [len(b"zip bytes"), len(b"zip bytes"), 0, 0]
    # A file stored during the run is known afterwards.
    index.stored(files[-1], 5, 7)
    assert await index.lookup(files[-1]) == 5


def _write_large(root: Path, file: ArchiveFile, size: int) -> bytes:
    data = os.urandom(size)
    path = root / file.key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    (root / file.checksum_key).write_text(f"{digest}  {file.filename}\n")
    return data


async def test_a_large_body_is_verified_and_stored_whole(tmp_path: Path) -> None:
    files = planned(DAILY)[:3]
    upstream = tmp_path / "upstream"
    bodies = {f.key: _write_large(upstream, f, 3 * 1024 * 1024 + i * 12345) for i, f in enumerate(files)}
    mirror = tmp_path / "mirror"
    one = DAILY.with_(end=files[-1].date)
    async with FakeArchiveServer(upstream) as server:
        report = await Archive(mirror, base_url=server.base_url).download(one, today=TODAY)
    assert report.downloaded == 3 and report.bytes == sum(len(b) for b in bodies.values())
    for key, data in bodies.items():
        assert (mirror / key).read_bytes() == data


async def test_a_corrupted_large_body_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    file = planned(DAILY)[0]
    upstream = tmp_path / "upstream"
    _write_large(upstream, file, 2 * 1024 * 1024)
    mirror = tmp_path / "mirror"
    one = DAILY.with_(end=file.date)
    async with FakeArchiveServer(upstream) as server:
        server.faults.corrupt_keys = {file.key}
        report = await Archive(mirror, base_url=server.base_url, retry=FAST_RETRY).download(one, today=TODAY)
    assert report.failed == 1 and "SHA-256" in (report.failures[0].error or "")
    left = [p for p in mirror.rglob("*") if p.is_file()] if mirror.exists() else []
    assert left == []


class FillingStorage(LocalStorage):
    """A local storage whose disk fills up after ``room`` sidecars."""

    def __init__(self, root: Path, room: int) -> None:
        super().__init__(root)
        self.room = room

    async def put_bytes(self, key: str, data: bytes) -> None:
        if self.room <= 0:
            raise StorageFullError(f"cannot write {self.path_of(key)}: the disk is full")
        self.room -= 1
        await super().put_bytes(key, data)


async def test_a_full_storage_stops_the_run_instead_of_failing_every_file(daily_tree: Path, tmp_path: Path) -> None:
    files = planned(DAILY)
    storage = FillingStorage(tmp_path / "mirror", room=5)
    async with FakeArchiveServer(daily_tree) as server:
        archive = Archive(storage, base_url=server.base_url, concurrency=2)
        report = await archive.download(DAILY, today=TODAY)
        fetched = server.stats.zip_requests
    assert report.downloaded == 5
    assert report.stopped is not None and "the disk is full" in report.stopped
    assert not report.ok
    # Only the files in flight when the disk filled up failed; the rest were never started.
    assert 1 <= report.failed <= 2
    assert fetched <= 5 + 2 < len(files)
    assert all(o.outcome in (Outcome.DOWNLOADED, Outcome.FAILED) for o in report.outcomes)
    # Nothing under a final name without its sidecar: the failed files' zips were taken back.
    mirror = tmp_path / "mirror"
    for file in files:
        assert (mirror / file.key).exists() == (mirror / file.checksum_key).exists()
    assert "STOPPED" in report.summary()


@pytest.mark.parametrize("client", ["native", "aiohttp", "pyreqwest"])
async def test_a_body_that_drips_is_given_up_within_bounds(client: str, daily_tree: Path, tmp_path: Path) -> None:
    """A server that never pauses long enough for the read timeout, but would take minutes for a file."""
    import time

    from binance_archive import RetryPolicy

    files = planned(DAILY)[:2]
    victim = files[0]
    size = (daily_tree / victim.key).stat().st_size
    assert size > 400, "the victim must be big enough to drip for longer than the test's window"
    mirror = tmp_path / "mirror"
    one = DAILY.with_(end=files[-1].date)
    async with FakeArchiveServer(daily_tree) as server:
        server.faults.drip_keys = {victim.key}
        server.faults.drip_rate = 100  # ~size/100 s for the whole file; each write comes 0.1 s after the last
        archive = Archive(
            mirror,
            base_url=server.base_url,
            transport_options={"read_timeout": 0.4, "min_speed": 1000, "client": client},
            retry=RetryPolicy(attempts=2, backoff=0.001),
        )
        started = time.monotonic()
        report = await archive.download(one, today=TODAY)
        took = time.monotonic() - started
    assert report.downloaded == 1 and report.failed == 1
    assert "came too slowly" in (report.failures[0].error or "")
    assert took < size / 100 / 2, f"{took:.1f} s: the drip was waited out instead of given up"
    assert not (mirror / victim.key).exists() and not (mirror / victim.checksum_key).exists()


async def test_pyreqwest_reads_small_bodies_whole_until_one_comes_slowly(
    daily_tree: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """pyreqwest reads a small body in one read, which shows no progress until it ends: the first body not whole
    within a read timeout is given up within the read timeout plus its size at min_speed, and turns those reads
    off, so that the next body that drips is given up by the speed guard, after one read timeout."""
    import logging
    import time

    pytest.importorskip("pyreqwest", reason="pyreqwest is not installed (it is in the fast extra)")
    from binance_archive.errors import RetryableError
    from binance_archive.transports.http import HttpTransport

    fast, slow, later = planned(DAILY)[:3]
    size = (daily_tree / slow.key).stat().st_size
    assert size > 1000, "the dripping body must take longer at min_speed than a read timeout"

    async def fetch(http: HttpTransport, key: str) -> tuple[bytes | BaseException, float]:
        started = time.monotonic()
        try:
            async with http.get(key) as body:
                return b"".join([chunk async for chunk in body.chunks()]), time.monotonic() - started
        except RetryableError as exc:
            return exc, time.monotonic() - started

    async with FakeArchiveServer(daily_tree) as server:
        server.faults.drip_keys = {slow.key, later.key}
        server.faults.drip_rate = 100  # size / 100 s for a whole body
        options = {"read_timeout": 0.4, "min_speed": 1000, "client": "pyreqwest"}
        async with HttpTransport(base_url=server.base_url, **options) as http:
            caplog.set_level(logging.INFO, logger="binance_archive.transports.http.reqwest_client")
            whole, _ = await fetch(http, fast.key)
            first, first_took = await fetch(http, slow.key)
            second, second_took = await fetch(http, later.key)
    assert whole == (daily_tree / fast.key).read_bytes()
    for error in (first, second):
        assert isinstance(error, RetryableError) and "came too slowly" in str(error), error
    assert 0.4 + size / 1000 - 0.1 < first_took < size / 100 / 2, f"{first_took:.2f} s for the first drip"
    assert second_took < first_took / 2, f"{second_took:.2f} s: the guard did not watch the next body"
    assert "chunk by chunk from now on" in caplog.text


@pytest.mark.parametrize("client", ["native", "aiohttp", "pyreqwest"])
async def test_a_run_that_sends_no_request_never_imports_an_http_client(
    client: str, daily_tree: Path, tmp_path: Path
) -> None:
    """The HTTP client (aiohttp takes a quarter of a second to import) is loaded on the first request: a resume
    of a complete mirror runs without it, a download with it."""
    import asyncio
    import sys

    mirror = tmp_path / "mirror"
    async with FakeArchiveServer(daily_tree) as server:
        probe = (
            "import sys, datetime\n"
            "from binance_archive import Archive, Selection\n"
            "selection = Selection(markets='spot', data_types='klines', symbols='BTCUSDT', intervals='1h',"
            " start='2024-01-01', end='2024-02-09', periods='daily')\n"
            f"archive = Archive({str(mirror)!r}, base_url={server.base_url!r}, entry_points=False,"
            f" transport_options={{'client': {client!r}}})\n"
            f"report = archive.download_sync(selection, today=datetime.date.fromisoformat({TODAY.isoformat()!r}))\n"
            "print(report.downloaded, report.skipped, 'aiohttp' in sys.modules, 'pyreqwest' in sys.modules,"
            " 'binance_archive.transports.http.native' in sys.modules)\n"
        )

        async def run() -> list[str]:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-c", probe, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
            )
            out, err = await process.communicate()
            assert process.returncode == 0, err.decode()
            return out.decode().split()

        files = len(planned(DAILY))
        used = [str(client == "aiohttp"), str(client == "pyreqwest"), str(client == "native")]
        assert await run() == [str(files), "0", *used]
        server.stats.reset()
        assert await run() == ["0", str(files), "False", "False", "False"]
        assert server.stats.requests == 0


@pytest.mark.parametrize("client", ["native", "aiohttp", "pyreqwest"])
async def test_a_download_leaves_no_reference_cycles_holding_responses(
    client: str, daily_tree: Path, tmp_path: Path
) -> None:
    """The command widens the collector's young generation (runner.tune_for_one_job), so anything a file leaves in
    a reference cycle waits long to be freed: a response caught in one kept its buffers, and a 2,000-file
    download through pyreqwest peaked at 313 MB instead of 86 MB. Nothing of the library or its HTTP clients
    may end up as cyclic garbage."""
    import gc

    async with FakeArchiveServer(daily_tree) as server:
        archive = Archive(
            tmp_path / "mirror", base_url=server.base_url, transport_options={"client": client}, entry_points=False
        )
        gc.collect()
        gc.disable()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            report = await archive.download(DAILY, today=TODAY)
            gc.collect()
            # The library's objects, and the clients' responses (pyreqwest's is a Rust type of module "builtins").
            ours = Counter(
                type(o).__qualname__
                for o in gc.garbage
                if type(o).__module__.startswith(("binance_archive", "pyreqwest"))
                or type(o).__qualname__ in ("Response", "ClientResponse")
            )
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            gc.enable()
    assert report.downloaded == len(planned(DAILY)) > 10
    assert not ours, ours
