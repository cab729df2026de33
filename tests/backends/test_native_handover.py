"""The native client's hand-over of a large body's socket to the worker thread (``transports/http/native/handover.py``).

Over plain HTTP the native client does not send a large body's GET again (as ``test_blocking_get.py`` tests of the
other clients): the thread reads the rest of the first answer from the connection's own socket, after the bytes the
event loop had received already. It must give the same bytes with one GET, free the connection's place, turn a
body cut short, stalled or dripping into the library's errors, and stop at once when the request is left.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from binance_archive import ArchiveFile, DataType, Market, Period
from binance_archive.errors import RetryableError
from binance_archive.testing import FakeArchiveServer, key_path, write_file
from binance_archive.transports.http import HttpTransport
from binance_archive.transports.http.native import connection, handover

from ..reliability.support import wait_until
from ..support.reading import ThreadRead

FILE = ArchiveFile(Market.SPOT, DataType.TRADES, "BTCUSDT", Period.DAILY, dt.date(2024, 1, 1))
BIG = 3 * connection.PAUSE_AT  # the loop pauses its socket at PAUSE_AT: the rest waits there for the thread
SMALL = 300_000


def _tree(tmp_path: Path, size: int) -> Path:
    root = tmp_path / f"upstream-{size}"
    write_file(root, FILE, member=random.Random(5).randbytes(size))  # incompressible: the zip is as large
    return root


@pytest.fixture
def socket_bytes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the bytes the thread received from the socket itself (not from what the loop had received)."""
    counted: list[int] = []
    rest = handover.HandedOver._rest

    def counting(self: handover.HandedOver, *args: object) -> Iterator[memoryview]:
        for chunk in rest(self, *args):  # type: ignore[arg-type]
            counted.append(len(chunk))
            yield chunk

    monkeypatch.setattr(handover.HandedOver, "_rest", counting)
    return counted


async def _read_in_thread(body: object) -> bytes:
    assert getattr(body, "blocking", False), "a large body is read in the worker thread"
    # bytes(chunk): a chunk may be a view of the reader's one buffer, valid until the next is asked for
    return await asyncio.to_thread(lambda: b"".join(bytes(c) for c in body.blocking_chunks()))  # type: ignore[attr-defined]


@pytest.mark.parametrize("size", [BIG, SMALL])
async def test_a_large_body_is_read_on_from_its_own_socket_with_one_get(
    tmp_path: Path, size: int, socket_bytes: list[int]
) -> None:
    tree = _tree(tmp_path, size)
    data = key_path(tree, FILE.key).read_bytes()
    async with FakeArchiveServer(tree) as server:
        # limit=1: the sidecar's GET below gets the one place only if the hand-over gave it back
        async with HttpTransport(base_url=server.base_url, client="native", large_body_bytes=1, limit=1) as transport:
            async with transport.get(FILE.key) as body:
                if size == SMALL:  # the case of a body whole before the hand-over: nothing left for the socket
                    own = body._connection  # type: ignore[attr-defined]
                    assert await wait_until(lambda: own.buffered == len(data), 10)
                assert await _read_in_thread(body) == data
                from_socket = sum(socket_bytes)
                sidecar = await asyncio.wait_for(transport.get_bytes(FILE.checksum_key, max_size=1024), 5)
            assert sidecar == key_path(tree, FILE.checksum_key).read_bytes()
            # The connection went with the thread: the next file gets a new one, and is whole.
            async with transport.get(FILE.key) as body:
                assert await _read_in_thread(body) == data
        assert server.stats.by_key[FILE.key] == 2, "one GET for each of the two reads: none sent again"
    if size == BIG:
        # Most of the body came through the socket handed over (the loop stops at PAUSE_AT and the bytes it has).
        assert from_socket > len(data) - 2 * connection.PAUSE_AT, socket_bytes
    else:
        assert from_socket == 0, "the body was whole on the loop before the hand-over"


@pytest.mark.parametrize(
    ("fault", "words"),
    [("truncate", "truncated"), ("stall", "timed out after"), ("drip", "came too slowly")],
)
async def test_a_body_that_breaks_off_stalls_or_drips_in_the_thread_is_the_librarys_error(
    tmp_path: Path, fault: str, words: str
) -> None:
    tree = _tree(tmp_path, BIG)
    async with FakeArchiveServer(tree, shutdown_timeout=0.5) as server:
        faults = server.faults
        if fault == "truncate":
            faults.truncate_rate = 1.0
        else:
            setattr(faults, f"{fault}_keys", {FILE.key})
            faults.stall_seconds = 5
        async with HttpTransport(
            base_url=server.base_url, client="native", large_body_bytes=1, read_timeout=0.4, min_speed=100_000
        ) as transport:
            started = time.monotonic()
            with pytest.raises(RetryableError, match=words) as caught:
                async with transport.get(FILE.key) as body:
                    await _read_in_thread(body)
            took = time.monotonic() - started
        fired = server.stats.faults[fault]
    assert fired == 1, f"the {fault} fault must have fired for the test to mean anything"
    assert took < 4, f"{took:.1f} s: the {fault} was waited out"
    assert server.base_url.split("//")[1] in str(caught.value), "the message names where it went wrong"


async def test_leaving_the_request_stops_a_read_blocked_on_the_socket_at_once(
    tmp_path: Path, socket_bytes: list[int]
) -> None:
    tree = _tree(tmp_path, BIG)
    async with FakeArchiveServer(tree, shutdown_timeout=0.5) as server:
        server.faults.stall_keys = {FILE.key}  # half the body, then 20 s of nothing
        server.faults.stall_seconds = 20
        async with HttpTransport(
            base_url=server.base_url, client="native", large_body_bytes=1, read_timeout=30.0
        ) as transport:
            async with transport.get(FILE.key) as body:
                read = ThreadRead(body.blocking_chunks())
                await read.blocked("part of the body came")
            await read.stopped_at_once()
    assert socket_bytes, "the reader was reading from the socket handed over"


async def test_a_request_left_before_the_hand_over_reads_nothing(tmp_path: Path) -> None:
    tree = _tree(tmp_path, BIG)
    async with (
        FakeArchiveServer(tree) as server,
        HttpTransport(base_url=server.base_url, client="native", large_body_bytes=1) as transport,
    ):
        async with transport.get(FILE.key) as body:
            body.release()  # what leaving the request does: before the thread has asked for the socket
            with pytest.raises(RetryableError, match="stopped"):
                await _read_in_thread(body)
        async with transport.get(FILE.key) as body:  # the client goes on
            assert await _read_in_thread(body) == key_path(tree, FILE.key).read_bytes()


async def test_a_loop_that_does_not_hand_the_socket_over_fails_the_read_after_a_read_timeout(tmp_path: Path) -> None:
    """The worker thread asks the event loop for the socket; a loop that is stuck (or stopped: an interrupted
    process) must not hold the thread, and the interpreter's exit that joins it, forever."""
    tree = _tree(tmp_path, BIG)
    async with (
        FakeArchiveServer(tree) as server,
        HttpTransport(base_url=server.base_url, client="native", large_body_bytes=1, read_timeout=0.3) as transport,
    ):
        async with transport.get(FILE.key) as body:
            read = ThreadRead(body.blocking_chunks())
            time.sleep(1.0)  # noqa: ASYNC251 (on purpose: the loop stuck, so the hand-over cannot run meanwhile)
            await asyncio.to_thread(read.thread.join, 10)
        async with transport.get(FILE.key) as body:  # the client goes on
            assert await _read_in_thread(body) == key_path(tree, FILE.key).read_bytes()
    assert len(read.outcome) == 1 and isinstance(read.outcome[0], RetryableError), read.outcome
    assert "did not hand" in str(read.outcome[0])


async def test_a_far_servers_large_body_is_handed_over_all_the_same(tmp_path: Path, socket_bytes: list[int]) -> None:
    """``refetch_within`` keeps the other clients from a second GET to a far server; the hand-over sends none, so
    the native client hands the socket over however slowly the first answer came."""
    tree = _tree(tmp_path, BIG)
    async with (
        FakeArchiveServer(tree, latency=0.2) as server,
        HttpTransport(base_url=server.base_url, client="native", large_body_bytes=1, refetch_within=0.01) as transport,
    ):
        async with transport.get(FILE.key) as body:
            assert await _read_in_thread(body) == key_path(tree, FILE.key).read_bytes()
        assert server.stats.by_key[FILE.key] == 1
    assert socket_bytes, "read on from the socket handed over"
