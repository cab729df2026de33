"""Large bodies: received, hashed and written in a worker thread when the client and the storage allow it.

Four paths, which must store the same verified bytes and survive a body cut short, a corrupt body, a stall, a
drip and a cancelled download without leaving anything under a final name:

- ``blocking``: a body over the HTTP transport's ``large_body_bytes`` is fetched again on a blocking connection
  in the worker thread (aiohttp, pyreqwest), from a server that answered within ``refetch_within``;
- ``handover``: the native client hands its own socket (plain HTTP) to the worker thread, which reads the rest;
- ``thread-loop``: pyreqwest's bodies may be read on another thread's event loop, so the worker thread reads
  the first response there;
- ``event-loop``: aiohttp's bodies, bound to their loop, are batched on the engine's loop.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from binance_archive import Archive, RetryPolicy, Selection
from binance_archive.events import Event, EventKind
from binance_archive.testing import FakeArchiveServer, Faults, key_path, write_file

from ..backends._scenario import assert_mirrored
from ..reliability.support import wait_until
from .scenario import FAST_RETRY, TODAY, planned

pyreqwest = pytest.importorskip("pyreqwest", reason="the worker-thread path needs the pyreqwest client ([fast])")

LARGE = Selection(
    markets="spot", data_types="trades", symbols="BTCUSDT", start="2024-01-01", end="2024-01-03", periods="daily"
)  # fmt: skip
SIZE = 3 * 1024 * 1024 + 12_345  # over the engine's 1 MB batch, and not a multiple of any chunk size
PUMP_LOG = "received, hashed and written in a worker thread"  # the engine (engine/receive.py)
REFETCH_LOG = "fetched again on a blocking connection"  # the HTTP transport's body (transports/http/body.py)
HANDOVER_LOG = "read on from the connection's own socket"  # the native client (transports/http/native/client.py)

# (client, large_body_bytes): the threshold is under SIZE for the blocking path, 0 (off) for the others.
PATHS = {
    "blocking-pyreqwest": ("pyreqwest", 1024 * 1024),
    "blocking-aiohttp": ("aiohttp", 1024 * 1024),
    "handover-native": ("native", 1024 * 1024),
    "thread-loop": ("pyreqwest", 0),
    "event-loop": ("aiohttp", 0),
}
THREADED = ["blocking-pyreqwest", "blocking-aiohttp", "handover-native", "thread-loop"]  # with worker threads


@pytest.fixture
def large_tree(tmp_path: Path) -> Path:
    root = tmp_path / "upstream"
    rng = random.Random(7)
    for file in planned(LARGE):
        write_file(root, file, member=rng.randbytes(SIZE))
    return root


def _archive(
    mirror: Path,
    server: FakeArchiveServer,
    path: str,
    *,
    retry: RetryPolicy = FAST_RETRY,
    progress: Callable[[Event], None] | None = None,
    **transport_options: object,
) -> Archive:
    client, large_body_bytes = PATHS[path]
    return Archive(
        mirror,
        base_url=server.base_url,
        transport_options={
            "client": client,
            "large_body_bytes": large_body_bytes,
            "refetch_within": 60.0,  # fetched again however slowly a loaded machine answers (see the last test)
            "read_timeout": 2.0,
            **transport_options,
        },
        retry=retry,
        progress=progress,
        entry_points=False,
    )


@pytest.mark.parametrize("path", PATHS)
async def test_large_bodies_are_stored_verified_by_every_path(
    large_tree: Path, mirror: Path, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[Event] = []
    caplog.set_level(logging.DEBUG, logger="binance_archive")
    async with FakeArchiveServer(large_tree) as server:
        report = await _archive(mirror, server, path, progress=events.append).download(LARGE, today=TODAY)
        by_key = dict(server.stats.by_key)
    files = planned(LARGE)
    assert report.downloaded == len(files) and not report.failures
    assert_mirrored(large_tree, mirror, files)
    messages = [r.getMessage() for r in caplog.records]
    refetched = sum(REFETCH_LOG in m for m in messages)
    handed = sum(HANDOVER_LOG in m for m in messages)
    pumped = sum(PUMP_LOG in m for m in messages)
    assert (refetched, handed, pumped) == {
        "blocking-pyreqwest": (len(files), 0, len(files)),
        "blocking-aiohttp": (len(files), 0, len(files)),
        "handover-native": (0, len(files), len(files)),
        "thread-loop": (0, 0, len(files)),
        "event-loop": (0, 0, 0),
    }[path]
    # The blocking path sends each zip's GET twice (the first response is released unread); the sidecars once.
    gets = 2 if path.startswith("blocking") else 1
    assert by_key == {**{f.key: gets for f in files}, **{f.checksum_key: 1 for f in files}}
    # Progress still arrives on the caller's thread, in batches, adding up to every byte of every zip.
    received = [e for e in events if e.kind is EventKind.BYTES]
    assert sum(e.bytes for e in received) == sum(key_path(large_tree, f.key).stat().st_size for f in files)
    assert len(received) >= len(files) * (SIZE // (1024 * 1024))


@pytest.mark.parametrize("path", PATHS)
async def test_a_large_body_cut_short_is_fetched_again(large_tree: Path, mirror: Path, path: str) -> None:
    async with FakeArchiveServer(large_tree, faults=Faults(truncate_rate=0.3, seed=3)) as server:
        report = await _archive(mirror, server, path).download(LARGE, today=TODAY)
        truncated = server.stats.faults["truncate"]
    assert truncated > 0, "the fault must have fired for the test to mean anything"
    assert report.downloaded == len(planned(LARGE)) and not report.failures
    assert_mirrored(large_tree, mirror, planned(LARGE))


@pytest.mark.parametrize("path", THREADED)
async def test_a_corrupt_large_body_is_never_stored(large_tree: Path, mirror: Path, path: str) -> None:
    bad = planned(LARGE)[1]
    once = RetryPolicy(attempts=2, backoff=0.01, max_backoff=0.02)
    async with FakeArchiveServer(large_tree, faults=Faults(corrupt_keys={bad.key})) as server:
        report = await _archive(mirror, server, path, retry=once).download(LARGE, today=TODAY)
    assert [f.key for f in report.failures] == [bad.key]
    assert "does not match the sidecar" in (report.failures[0].error or "")
    assert not key_path(mirror, bad.key).exists() and not key_path(mirror, bad.checksum_key).exists()
    assert_mirrored(large_tree, mirror, [f for f in planned(LARGE) if f != bad])


@pytest.mark.parametrize("path", THREADED)
async def test_cancelling_a_download_mid_body_leaves_nothing_and_stops_the_threads(
    large_tree: Path, mirror: Path, path: str
) -> None:
    files = planned(LARGE)
    # Every body stops halfway for longer than the test: the worker threads are mid-read when it is cancelled.
    faults = Faults(stall_keys={f.key for f in files}, stall_seconds=20.0)
    threads_before = {t.ident for t in threading.enumerate()}
    async with FakeArchiveServer(large_tree, faults=faults, shutdown_timeout=0.5) as server:
        started = asyncio.Event()

        def progress(event: Event) -> None:
            if event.kind is EventKind.BYTES:
                started.set()

        archive = _archive(mirror, server, path, progress=progress, read_timeout=30.0)  # the cancel ends it
        task = asyncio.create_task(archive.download(LARGE, today=TODAY))
        await asyncio.wait_for(started.wait(), 10)
        assert any(t.name.startswith("binance-archive-body") for t in threading.enumerate()), "bodies in threads"
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
    for file in files:
        assert not key_path(mirror, file.key).exists() and not key_path(mirror, file.checksum_key).exists()

    # The readers end once their responses are released (not after the 20 s stall): a blocking GET's socket is
    # shut down then. Temporary files are gone (the mirror fixture checks that too, after the test).
    def pumps_ended() -> bool:
        return not any(
            t.name.startswith("binance-archive-body") and t.ident not in threads_before for t in threading.enumerate()
        )

    assert await wait_until(pumps_ended, 10), "the worker threads went on reading after the download was cancelled"


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("fault", ["stall", "drip"])
async def test_a_large_body_that_stalls_or_drips_is_given_up_in_time(
    large_tree: Path, mirror: Path, path: str, fault: str
) -> None:
    files = planned(LARGE)
    victim = files[0]
    faults = Faults(stall_keys={victim.key}, stall_seconds=20.0) if fault == "stall" else Faults(drip_keys={victim.key})
    async with FakeArchiveServer(large_tree, faults=faults, shutdown_timeout=0.5) as server:
        once = RetryPolicy(attempts=2, backoff=0.01, max_backoff=0.02)
        archive = _archive(mirror, server, path, retry=once, read_timeout=0.5, min_speed=10_000)
        loop = asyncio.get_running_loop()
        started = loop.time()
        report = await archive.download(LARGE, today=TODAY)
        took = loop.time() - started
    assert [f.key for f in report.failures] == [victim.key]
    expected = "timed out" if fault == "stall" else "came too slowly"
    assert expected in (report.failures[0].error or ""), report.failures[0].error
    assert took < 10, f"{took:.1f} s: the {fault} was waited out instead of given up"
    assert not key_path(mirror, victim.key).exists() and not key_path(mirror, victim.checksum_key).exists()
    assert_mirrored(large_tree, mirror, files[1:])


@pytest.mark.parametrize(("client", "pumped"), [("pyreqwest", True), ("aiohttp", False)])
async def test_a_far_servers_large_bodies_are_read_from_their_first_answers(
    large_tree: Path, mirror: Path, client: str, pumped: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """Answers slower than ``refetch_within``: no GET is sent twice; pyreqwest's bodies are still read in the worker
    thread (on its own loop), aiohttp's in batches from the engine's loop."""
    caplog.set_level(logging.DEBUG, logger="binance_archive")
    async with FakeArchiveServer(large_tree, faults=Faults(latency=0.1)) as server:
        archive = Archive(
            mirror,
            base_url=server.base_url,
            transport_options={"client": client, "large_body_bytes": 1024 * 1024, "refetch_within": 0.05},
            retry=FAST_RETRY,
            entry_points=False,
        )
        report = await archive.download(LARGE, today=TODAY)
        by_key = dict(server.stats.by_key)
    files = planned(LARGE)
    assert report.downloaded == len(files) and not report.failures
    assert_mirrored(large_tree, mirror, files)
    assert by_key == {**{f.key: 1 for f in files}, **{f.checksum_key: 1 for f in files}}
    messages = [r.getMessage() for r in caplog.records]
    assert not any(REFETCH_LOG in m for m in messages)
    assert sum(PUMP_LOG in m for m in messages) == (len(files) if pumped else 0)
