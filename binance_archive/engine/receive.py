"""The ways a file's body is received, hashed and handed to its writer; each returns the number of bytes.

- A small body (most of the archive: up to a megabyte) is hashed on the event loop, chunk by chunk, where a hop to
  a thread would cost more than the hashing.
- A large body that can be read in a worker thread (:attr:`Body.reads_in_thread`), into a writer that can write
  from one (:attr:`Writer.writes_in_thread`), is received, hashed and written there: no chunk crosses the
  engine's loop, and files in flight hash on every core.
- Any other large body is hashed and written in threads, a batch of about a megabyte at a time, while the next
  batch arrives on the loop.
- A body already on local disk (:attr:`Body.local_path`) is hashed in a thread, and its storage adopts the file;
  one on a file system that may stall (:attr:`Body.min_speed`: a mirror on a network mount) is read in a daemon
  thread, watched from the loop, and given up when it comes too slowly or not at all.

docs/performance.md has what each way was measured to gain.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import hashlib
import logging
import os
import threading
from typing import Any

from binance_archive.backends import Body, Writer
from binance_archive.common.threads import Daemons
from binance_archive.core.files import ArchiveFile
from binance_archive.errors import RetryableError, TransportError
from binance_archive.events import Emitter, EventKind

__all__ = ["BATCH", "Receiver"]

log = logging.getLogger(__name__)

BATCH = 1024 * 1024
"""Bodies larger than this are hashed and written away from the event loop, a batch of about this size at a time."""


class Receiver:
    """Receives the bodies of one run; its worker threads (at most ``threads``) are made on first use."""

    def __init__(self, emit: Emitter, *, threads: int) -> None:
        self._emit = emit
        self._threads = threads
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._daemons: Daemons | None = None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)  # idle by now, or told to stop (see _in_thread)
        if self._daemons is not None:
            self._daemons.close()

    async def body(self, file: ArchiveFile, body: Body, writer: Writer, digest: Any) -> int:
        """Receive ``body`` into ``writer``, hashing it into ``digest`` on the way."""
        if body.size is not None and body.size <= BATCH:
            return await self._on_loop(file, body, writer, digest)
        if writer.writes_in_thread and body.reads_in_thread:
            return await self._in_thread(file, body, writer, digest)
        return await self._in_batches(file, body, writer, digest)

    async def local_file(self, file: ArchiveFile, body: Body) -> tuple[int, str]:
        """The size and SHA-256 of a body already on disk (:attr:`Body.local_path`), hashed in a thread."""
        path = body.local_path
        assert path is not None
        try:
            if body.min_speed:
                size, actual = await self._watched(path, body.min_speed, body.speed_window)
            else:
                size, actual = await asyncio.to_thread(_hash_file, path)
        except OSError as exc:
            raise TransportError(f"cannot read {path}: {exc.strerror or exc}") from exc
        self._emit(EventKind.BYTES, file, size)
        return size, actual

    async def _watched(self, path: os.PathLike[str], min_speed: float, window: float) -> tuple[int, str]:
        """Hash ``path`` in a daemon thread, giving it up once it reads fewer than ``min_speed`` bytes a second over
        a whole ``window`` (a read blocked in a stalled network file system reads none): the thread cannot be
        interrupted, so it is left to end when its read does, at the latest when the process exits."""
        if self._daemons is None:
            self._daemons = Daemons(self._threads, "binance-archive-read")
        progress = [0]
        stop = threading.Event()
        reading = asyncio.ensure_future(self._daemons.run(_hash_file, path, progress, stop))
        loop = asyncio.get_running_loop()
        start, then = loop.time(), 0
        try:
            while True:
                done, _ = await asyncio.wait({reading}, timeout=min(window / 4, 1.0))
                if done:
                    return reading.result()
                now = loop.time()
                if now - start < window:
                    continue
                got = progress[0] - then
                if got < min_speed * (now - start):
                    raise RetryableError(
                        f"reading {path} came too slowly: {got} bytes in {now - start:.1f} s (at least {min_speed:g} "
                        "bytes/s expected: a stalled file system? see the min_speed option)"
                    )
                start, then = now, progress[0]
        finally:
            stop.set()
            if not reading.done():
                reading.cancel()

    async def _on_loop(self, file: ArchiveFile, body: Body, writer: Writer, digest: Any) -> int:
        emit = self._emit if self._emit.active else None
        size = 0
        async for chunk in body.chunks():
            digest.update(chunk)
            size += len(chunk)
            await writer.write(chunk)
            if emit is not None:
                emit(EventKind.BYTES, file, len(chunk))
        return size

    async def _in_thread(self, file: ArchiveFile, body: Body, writer: Writer, digest: Any) -> int:
        """Receive, hash and write a large body in a worker thread (:meth:`Body.read_in_thread`).

        On the engine's loop, every chunk would go from the client's thread to the loop, and every batch from the
        loop to a thread that hashes it and one that writes it: several hand-overs of the GIL a megabyte.
        """
        loop = asyncio.get_running_loop()
        stop = threading.Event()
        report_bytes = functools.partial(loop.call_soon_threadsafe, self._emit, EventKind.BYTES, file)
        counting = self._emit.active
        size = unreported = 0

        def absorb(chunk: bytes | memoryview) -> None:
            # Hashed and written before the next chunk is asked for: a blocking body may reuse its buffer.
            nonlocal size, unreported
            if stop.is_set():  # the download was cancelled meanwhile: nobody waits for the rest
                raise asyncio.CancelledError
            digest.update(chunk)
            writer.write_in_thread(chunk)
            size += len(chunk)
            if counting:
                unreported += len(chunk)
                if unreported >= BATCH:
                    report_bytes(unreported)
                    unreported = 0

        def receive() -> int:
            body.read_in_thread(absorb)
            if unreported:
                report_bytes(unreported)
            return size

        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(self._threads, "binance-archive-body")
        log.debug("%s: received, hashed and written in a worker thread", file.key)
        try:
            return await asyncio.wrap_future(self._pool.submit(receive))
        finally:
            # Cancelled while the thread reads: it stops at its next chunk, and a read waiting on a stalled server
            # is stopped by the body. The writer's abort copes with a write still under way.
            stop.set()
            body.stop_reading()

    async def _in_batches(self, file: ArchiveFile, body: Body, writer: Writer, digest: Any) -> int:
        """Hash and write a large body in batches of ~1 MB, in threads, while the next batch arrives.

        On the event loop, SHA-256 of a 200 MB file would take the loop's core for itself; in a thread
        (hashlib lets go of the GIL) it overlaps with receiving, and files in flight hash on every core. One
        batch is in flight at a time, so batches are hashed and written in order. A batch stays a list of the
        chunks as received: joining them would copy every byte once more on the event loop.
        """
        size = 0
        batch: list[bytes] = []
        batched = 0
        in_flight: asyncio.Future[Any] | None = None

        def hash_all(chunks: list[bytes]) -> None:
            for chunk in chunks:
                digest.update(chunk)

        def absorb(chunks: list[bytes]) -> asyncio.Future[Any]:
            return asyncio.gather(asyncio.to_thread(hash_all, chunks), writer.write_many(chunks))

        try:
            async for chunk in body.chunks():
                batch.append(chunk)
                batched += len(chunk)
                if batched >= BATCH:
                    if in_flight is not None:
                        await in_flight
                    in_flight = absorb(batch)
                    size += batched
                    self._emit(EventKind.BYTES, file, batched)
                    batch, batched = [], 0
            if in_flight is not None:
                await in_flight
                in_flight = None
            if batch:
                await absorb(batch)
                size += batched
                self._emit(EventKind.BYTES, file, batched)
        finally:
            if in_flight is not None:  # the body broke off: let the batch in flight end before the writer aborts
                in_flight.cancel()
                await asyncio.gather(in_flight, return_exceptions=True)
        return size


def _hash_file(
    path: os.PathLike[str], progress: list[int] | None = None, stop: threading.Event | None = None
) -> tuple[int, str]:
    """The size and SHA-256 of ``path``; ``progress[0]`` counts the bytes read so far, and a set ``stop`` ends the
    read early (its caller gave up)."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
            size += len(chunk)
            if progress is not None:
                progress[0] = size
            if stop is not None and stop.is_set():
                raise OSError(f"the read of {path} was given up")
    return size, digest.hexdigest()
