"""Requests gathered into batches, each one ``s5cmd run COMMANDS`` process, with a watchdog for stalls.

Concurrent requests (the engine fetches many files, each zip with its sidecar) wait in one queue; a dispatcher
waits for the first, lets more arrive (up to ``batch_wait`` seconds, or until the batch is full) and starts a
process for them when one of the ``max_processes`` slots is free. s5cmd prints one JSON line per object as it
finishes, so every file is handed to its waiter as soon as it is on disk.

s5cmd has no read timeout of its own: a server that stalls mid-body would hold a process for as long as it
stalls. A watchdog stands in for one: a process that prints no result and whose staged files (s5cmd's
temporary ``NAME<digits>`` files included) neither grow nor change for ``read_timeout`` seconds is killed, and
its files without a result fail as retryable, their partial files removed.

Nor has it a speed limit: a server that drips a body a few bytes at a time keeps a staged file growing, which the
watchdog takes for progress. With ``min_speed``, the watchdog also weighs each file whose staged copy exists: one
that grew by less than ``min_speed`` bytes a second over a whole ``read_timeout`` window fails as retryable at
once (the engine tries it again, in another batch), while s5cmd goes on with the rest of its batch; a process left
with nothing but such files is killed.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import shlex
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

import attrs

from binance_archive.common.files import remove
from binance_archive.errors import FileMissingError, RetryableError, TransportError
from binance_archive.transports.s5cmd.errors import Tail, bounded, classify
from binance_archive.transports.s5cmd.process import kill, pump, running
from binance_archive.transports.s5cmd.stats import S5cmdStats

__all__ = ["BatchSettings", "Batcher"]

log = logging.getLogger(__name__)

_DRAIN_SECONDS = 5.0  # after a stalled process is killed, how long its last output lines are read


@attrs.define(eq=False)
class _Request:
    key: str
    dest: Path
    future: asyncio.Future[Path]

    def resolve(self) -> None:
        if self.future.done():  # its waiter went away (cancelled): nobody will delete the staged file
            remove(self.dest)
        else:
            self.future.set_result(self.dest)

    def fail(self, exc: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(exc)


@attrs.frozen
class BatchSettings:
    """How batches are formed and watched (the transport's options)."""

    batch_size: int
    batch_wait: float
    max_processes: int
    read_timeout: float
    min_speed: float = 0.0
    """Bytes a second a staged file must grow by over each ``read_timeout`` window (0: no check)."""


class Batcher:
    """Gathers requests into ``s5cmd run`` batches that download into ``staging``.

    ``command`` gives s5cmd's argv up to (not including) ``run FILE``; ``url`` an object's ``s3://`` URL.
    """

    def __init__(
        self,
        staging: Path,
        settings: BatchSettings,
        *,
        command: Callable[[], list[str]],
        env: dict[str, str],
        url: Callable[[str], str],
        stats: S5cmdStats,
    ) -> None:
        self._staging = staging
        self._settings = settings
        self._command = command
        self._env = env
        self._url = url
        self.stats = stats
        self._pending: deque[_Request] = deque()
        self._has_pending = asyncio.Event()
        self._is_full = asyncio.Event()
        self._slots = asyncio.Semaphore(settings.max_processes)
        self._batches: set[asyncio.Task[None]] = set()
        self._seq = 0
        self._dispatcher: asyncio.Task[None] | None = asyncio.get_running_loop().create_task(
            self._dispatch(), name="s5cmd-dispatcher"
        )
        self._dispatcher.add_done_callback(self._dispatcher_done)

    def submit(self, key: str) -> asyncio.Future[Path]:
        """Queue ``key``; the future ends with the staged file's path (the waiter deletes it) or the error."""
        if not key or key.startswith("/") or any(c in key for c in "\r\n\0"):
            raise TransportError(f"refusing key {key!r}: not an object key s5cmd can fetch")
        self._seq += 1
        name = key.rpartition("/")[2][-120:]  # keeps the name readable, and within any file system's limit
        dest = self._staging / f"{self._seq:09d}-{name}"
        future: asyncio.Future[Path] = asyncio.get_running_loop().create_future()
        self._pending.append(_Request(key, dest, future))
        self._has_pending.set()
        if len(self._pending) >= self._settings.batch_size:
            self._is_full.set()
        return future

    async def close(self) -> None:
        """Fail every request still waiting, stop every process, and wait for them."""
        closed = TransportError("the s5cmd transport was closed")
        while self._pending:
            self._pending.popleft().fail(closed)
        tasks = [t for t in (self._dispatcher, *self._batches) if t is not None]
        self._dispatcher = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._batches.clear()

    async def _dispatch(self) -> None:
        """Form batches: wait for a request, let more arrive (up to batch_wait), wait for a process slot."""
        loop = asyncio.get_running_loop()
        settings = self._settings
        while True:
            await self._has_pending.wait()
            if len(self._pending) < settings.batch_size and settings.batch_wait > 0:
                self._is_full.clear()
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._is_full.wait(), settings.batch_wait)
            await self._slots.acquire()
            batch: list[_Request] = []
            while self._pending and len(batch) < settings.batch_size:
                request = self._pending.popleft()
                if not request.future.done():  # skip requests whose waiter gave up meanwhile
                    batch.append(request)
            if not self._pending:
                self._has_pending.clear()
                self._is_full.clear()
            if not batch:
                self._slots.release()
                continue
            task = loop.create_task(self._run_batch(batch), name=f"s5cmd-batch-{self.stats.batches + 1}")
            self._batches.add(task)
            task.add_done_callback(functools.partial(self._batch_done, batch))

    def _batch_done(self, batch: list[_Request], task: asyncio.Task[None]) -> None:
        # Here rather than in _run_batch's finally: a task cancelled before it started never runs that.
        self._batches.discard(task)
        self._slots.release()
        closed = TransportError("the s5cmd transport was closed")
        for request in batch:
            request.fail(closed)  # a no-op for every request the batch answered

    def _dispatcher_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:  # a bug: never leave a waiter hanging
            log.error("the s5cmd dispatcher failed", exc_info=exc)
            while self._pending:
                self._pending.popleft().fail(TransportError(f"the s5cmd dispatcher failed: {exc!r}"))

    async def _run_batch(self, batch: list[_Request]) -> None:
        task = asyncio.current_task()

        def abandoned(future: asyncio.Future[Path]) -> None:
            # Every waiter of the batch gave up (cancelled): stop s5cmd rather than let it run on.
            if future.cancelled() and task is not None and all(r.future.done() for r in batch):
                task.cancel()

        for request in batch:
            request.future.add_done_callback(abandoned)
        try:
            await self._execute(batch)
        except TransportError as exc:
            for request in batch:
                request.fail(exc)
        except Exception as exc:
            log.exception("an s5cmd batch failed")
            for request in batch:
                request.fail(TransportError(f"an s5cmd batch failed: {exc!r}"))

    async def _execute(self, batch: list[_Request]) -> None:
        self.stats.batches += 1
        self.stats.keys += len(batch)
        self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
        commands = self._staging / f"batch-{self.stats.batches:06d}.txt"
        lines = [f"cp --raw {shlex.quote(self._url(r.key))} {shlex.quote(str(r.dest))}\n" for r in batch]
        await asyncio.to_thread(commands.write_text, "".join(lines), "utf-8")
        by_dest = {str(r.dest): r for r in batch}
        tail = Tail()
        printed = [0]  # lines s5cmd printed: progress for the watchdog

        def on_line(line: str) -> None:
            printed[0] += 1
            self._on_result(line, by_dest, tail)

        argv = [*self._command(), "run", str(commands)]
        log.debug("s5cmd batch of %d keys", len(batch))
        stalled = False
        try:
            async with running(argv, env=self._env) as proc:
                self.stats.processes += 1
                assert proc.stdout is not None
                assert proc.stderr is not None
                reading = asyncio.ensure_future(asyncio.gather(pump(proc.stdout, on_line), pump(proc.stderr, on_line)))
                try:
                    if await self._watch(reading, by_dest, printed):
                        stalled = True
                        kill(proc)
                        # Its last lines may still report files it finished just before.
                        await asyncio.wait({reading}, timeout=_DRAIN_SECONDS)
                    else:
                        await reading
                finally:
                    if not reading.done():
                        reading.cancel()
                    await asyncio.gather(reading, return_exceptions=True)
                returncode = await proc.wait()
        except asyncio.CancelledError:
            _discard(self._staging, [r.dest.name for r in by_dest.values()])  # s5cmd was killed: its partial files
            raise
        finally:
            remove(commands)
        if stalled:
            await asyncio.to_thread(_discard, self._staging, [r.dest.name for r in by_dest.values()])
            for request in by_dest.values():
                request.fail(
                    RetryableError(
                        f"{self._url(request.key)} timed out: s5cmd stalled for {self._settings.read_timeout:g} s "
                        "without progress (read_timeout), so it was stopped"
                    )
                )
            return
        if by_dest:
            message = tail.text() or "no message"
            for request in by_dest.values():
                what = self._url(request.key)
                exc = classify(message, what)
                text = f"s5cmd exited with status {returncode} without a result for {what}"
                # A general error is never proof that a file is missing: that case is retried too.
                if isinstance(exc, RetryableError | FileMissingError):
                    request.fail(RetryableError(f"{text}: {message}"))
                else:
                    request.fail(TransportError(f"{text}: {exc}"))

    async def _watch(self, reading: asyncio.Future[Any], by_dest: dict[str, _Request], lines: list[int]) -> bool:
        """Wait for ``reading`` (s5cmd's output, read to its end): False once it ends; True as soon as the
        process made no progress for ``read_timeout`` seconds.

        Progress is a line printed, or a change (size, allocated blocks, modification time) among the staged
        files of the requests still without a result, s5cmd's temporary files included: a large file that takes
        minutes is not a stall as long as its bytes keep arriving. The files are looked at only when no line
        came since the last look.
        """
        staging = self._staging
        read_timeout = self._settings.read_timeout
        weigh = self._settings.min_speed > 0
        loop = asyncio.get_running_loop()
        interval = min(max(read_timeout / 4, 0.02), 1.0)
        last_at = loop.time()
        last_lines = lines[0]
        last_files: frozenset[tuple[str, int, int, int]] | None = None
        # A request's staging prefix: its window's start, and its staged size and allocated blocks then.
        windows: dict[str, tuple[float, int, int]] = {}
        while True:
            finished, _ = await asyncio.wait({reading}, timeout=interval)
            if finished:
                return False
            now = loop.time()
            printed = lines[0] != last_lines
            if printed:
                last_lines, last_at = lines[0], now
                if not weigh:
                    continue
            seqs = frozenset(r.dest.name.partition("-")[0] for r in by_dest.values())
            files = await asyncio.to_thread(_staged_files, staging, seqs)
            if files is None or files != last_files:  # None: the folder could not be read; assume progress
                last_files, last_at = files, now
            elif not printed and now - last_at >= read_timeout:
                log.debug("s5cmd made no progress for %.1f s: stopping it", now - last_at)
                return True
            if weigh and files is not None and self._too_slow(files, by_dest, windows, now):
                log.debug("every file left to s5cmd came too slowly: stopping it")
                return True

    def _too_slow(
        self,
        files: frozenset[tuple[str, int, int, int]],
        by_dest: dict[str, _Request],
        windows: dict[str, tuple[float, int, int]],
        now: float,
    ) -> bool:
        """Fail, as retryable, every request whose staged file grew by less than ``min_speed`` bytes a second over
        a whole ``read_timeout`` window; True when s5cmd still works on files nobody waits for any more."""
        window, min_speed = self._settings.read_timeout, self._settings.min_speed
        staged: dict[str, tuple[int, int]] = {}
        for name, size, blocks, _ in files:
            seq = name.partition("-")[0]
            before = staged.get(seq, (0, 0))
            staged[seq] = (before[0] + size, before[1] + blocks)
        waiting = 0
        for request in by_dest.values():
            if request.future.done():
                continue
            waiting += 1
            seq = request.dest.name.partition("-")[0]
            if seq not in staged:
                continue  # not begun by s5cmd yet: nothing to weigh
            size, blocks = staged[seq]
            start, size_then, blocks_then = windows.setdefault(seq, (now, size, blocks))
            elapsed = now - start
            if elapsed < window:
                continue
            # The size counts a body written in order to the byte; where s5cmd writes parts out of order (the size
            # jumps to the end with the first write of the last part), the blocks allocated since count the rest.
            got = max(size - size_then, (blocks - blocks_then) * 512)
            if got < min_speed * elapsed:
                waiting -= 1
                request.fail(
                    RetryableError(
                        f"{self._url(request.key)} came too slowly: {got} bytes in {elapsed:.1f} s "
                        f"(at least {min_speed:g} bytes/s expected; see the min_speed option)"
                    )
                )
            else:
                windows[seq] = (now, size, blocks)
        return waiting == 0 and bool(by_dest)  # files left without a result, and nobody waits for them

    def _on_result(self, line: str, by_dest: dict[str, _Request], tail: Tail) -> None:
        try:
            record: Any = json.loads(line)
        except ValueError:
            tail.add(line)
            return
        if not isinstance(record, dict):
            tail.add(line)
            return
        error = record.get("error")
        if record.get("operation") == "cp":
            if error is None and record.get("success"):
                request = by_dest.pop(str(record.get("destination")), None)
                if request is None:  # should s5cmd ever rewrite the destination, match by source instead
                    request = self._by_source(str(record.get("source")), by_dest)
                if request is not None:
                    request.resolve()
                    return
            elif error is not None:
                request = self._match(str(record.get("command", "")), by_dest)
                if request is not None:
                    request.fail(classify(str(error), self._url(request.key)))
                    return
        if error is not None:
            tail.add(str(error))
        else:
            log.debug("s5cmd said: %s", bounded(line))

    def _match(self, command: str, by_dest: dict[str, _Request]) -> _Request | None:
        """The request an error line is about: its command ends with the (unique) staging path."""
        at = command.rfind(" " + str(self._staging) + os.sep)
        if at >= 0 and (request := by_dest.pop(command[at + 1 :], None)) is not None:
            return request
        for dest in by_dest:
            if command.endswith(" " + dest):
                return by_dest.pop(dest)
        return None

    def _by_source(self, source: str, by_dest: dict[str, _Request]) -> _Request | None:
        for dest, request in by_dest.items():
            if self._url(request.key) == source:
                return by_dest.pop(dest)
        return None


def _staged_files(folder: Path, seqs: frozenset[str]) -> frozenset[tuple[str, int, int, int]] | None:
    """``(name, size, blocks, mtime)`` of the staged files whose name starts with one of ``seqs`` and a dash
    (s5cmd downloads into ``NAME<digits>``, then renames it to ``NAME``); None if the folder is unreadable."""
    found: set[tuple[str, int, int, int]] = set()
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.partition("-")[0] not in seqs:
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:  # renamed or removed meanwhile
                    continue
                found.add((entry.name, st.st_size, getattr(st, "st_blocks", 0), st.st_mtime_ns))
    except OSError:
        return None
    return frozenset(found)


def _discard(folder: Path, names: Sequence[str]) -> None:
    """Remove the staged files named ``names`` and s5cmd's temporary files for them (``NAME<digits>``).

    For requests left without a result by a killed process: a file it had renamed to its final name is
    removed too, since nobody will take it.
    """
    wanted = tuple(names)
    if not wanted:
        return
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.startswith(wanted):
                    with suppress(OSError):
                        os.unlink(entry.path)
    except OSError:
        pass  # the folder is gone (closed): nothing left to remove
