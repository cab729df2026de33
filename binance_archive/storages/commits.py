"""How the local storage puts small files in place: each created, written and published under its final name in one
go, on the event loop while that is cheap, and in batches on writer threads once commits are measured slow.

Most of the archive (and every sidecar) is a small file buffered whole until it is committed. On a tmpfs a commit
takes 20 - 40 µs, less than handing it to a thread and back would cost. On a disk where creating a file is slow (an
ext4 folder whose files were deleted just before: 300 - 650 µs a file here; a network file system) the commits would
serialise on the event loop's thread, which then neither receives nor hashes meanwhile. :class:`Committer` measures
what the commits cost: while they are cheap it does them at once, on the loop; once their mean passes a threshold it
queues them, the commits of one turn of the loop as one batch (split among the writer threads when it is large), for
a few writer threads: one hand-over per batch, not per file, and one call back to the loop with every result in
it. The kernel's work runs without the GIL there, several files at a time.

A file is created unnamed where the system can (Linux's ``O_TMPFILE``, then ``linkat`` through ``/proc/self/fd``):
creating it then takes no lock on its folder, so the files of one folder are created in parallel, and a process
killed mid-write leaves nothing behind. In an ext4 folder emptied just before (``benchmarks/commits.py``, 2,000 files
of 60 KB, medians of 5): 1.81 s on the loop, 1.03 s on two writer threads this way, 1.80 s on two with named
temporary files and rename. Elsewhere it is a named temporary file beside the final one, renamed into place. Either
way no reader ever sees a partial file.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import queue
import threading
import time
from contextlib import suppress

from binance_archive.common.staging import replacing, sweep

__all__ = ["Committer", "Folders", "Request"]

log = logging.getLogger(__name__)

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
_UNNAMED = getattr(os, "O_TMPFILE", 0)
# What O_TMPFILE or linking through /proc answers where the system cannot: the named way is used from then on.
_UNSUPPORTED = frozenset({errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOSYS, errno.EXDEV})
_PART = 4  # files at least per thread when a batch is split among the threads
_WINDOW = 32  # commits measured together before deciding
_IDLE = 2.0  # seconds a writer thread waits for work before it ends


class Folders:
    """The folders a storage has made ready for writing this run: created, and swept of a killed process's
    temporary files. One ``makedirs`` and one directory scan per folder, not one per file. Used from the event loop
    and from writer threads (a folder prepared twice at once is harmless: both calls are idempotent)."""

    def __init__(self) -> None:
        self._ready: set[str] = set()

    def prepare(self, folder: str) -> None:
        if folder not in self._ready:
            os.makedirs(folder, exist_ok=True)
            sweep(folder)
            self._ready.add(folder)

    def create(self, temp: str, folder: str) -> int:
        """Create ``temp`` (exclusively), making its folder again if someone removed it meanwhile."""
        self.prepare(folder)
        try:
            return os.open(temp, _CREATE, 0o666)
        except FileNotFoundError:
            os.makedirs(folder, exist_ok=True)
            return os.open(temp, _CREATE, 0o666)


class Request:
    """One small file queued for a writer thread; ``future`` (of the loop that queued it) ends with its outcome."""

    __slots__ = ("data", "final", "folder", "future")

    def __init__(self, final: str, folder: str, data: bytes, future: asyncio.Future[None]) -> None:
        self.final = final
        self.folder = folder
        self.data = data
        self.future = future

    def wanted(self) -> bool:
        """Whether anyone still waits for this file (read from a writer thread).

        A cancelled commit cancels its future at once, on the loop (``Task.cancel`` cancels the future the task
        awaits), so a thread that has not begun the file skips it: a cancelled commit leaves nothing. Reading a
        future's state from another thread is one attribute read, safe under the GIL; a commit cancelled just after
        the thread looked is finished whole, as one already under way is."""
        return not self.future.done()


class Committer:
    """Publishes a storage's small files, measuring what that costs: see the module's docstring.

    Args:
        folders: the storage's folders made ready.
        fsync: flush each file to the disk before publishing it (then commits never run on the loop).
        threads: writer threads at most; 0 keeps every commit on the event loop (with ``fsync``, each in a thread
            of its own, as larger files are).
        slow: the mean seconds a commit may take on the loop; above it, commits move to the threads (0: at once).
    """

    def __init__(self, folders: Folders, *, fsync: bool, threads: int, slow: float) -> None:
        self._folders = folders
        self._fsync = fsync
        self._most = threads
        self._slow = slow
        self._clip = 10 * slow  # one stalled commit (the page cache flushing, say) must not decide alone
        self.threaded = threads > 0 and (fsync or slow == 0)
        """Whether commits go to the writer threads now (once true, it stays true)."""
        self.unnamed = bool(_UNNAMED) and os.path.isdir("/proc/self/fd")
        """Whether files are created unnamed (``O_TMPFILE``) and linked into place; turned off by the first
        refusal that says the system cannot (then: named temporary files, renamed)."""
        self._measured = 0
        self._spent = 0.0
        self._pending: dict[asyncio.AbstractEventLoop, list[Request]] = {}  # this turn's commits, by loop
        self._jobs: queue.SimpleQueue[list[Request]] = queue.SimpleQueue()
        self._lock = threading.Lock()  # over the three counts below
        self._started = 0  # writer threads alive
        self._waiting = 0  # of them, waiting for a batch
        self._queued = 0  # batches handed over and not taken yet

    async def put(self, final: str, folder: str, data: bytes) -> None:
        """Publish ``data`` under ``final`` (in ``folder``): whole, atomically. Raises the file system's OSError."""
        if self.threaded:
            loop = asyncio.get_running_loop()
            request = Request(final, folder, data, loop.create_future())
            batch = self._pending.get(loop)
            if batch is None:
                self._pending[loop] = batch = []
                loop.call_soon(self._hand_over, loop)  # once this turn of the loop is over: its commits, together
            batch.append(request)
            await request.future
        elif self._fsync:  # no writer threads, and a flush to the disk must not stall the loop
            await asyncio.to_thread(self._prepare_and_publish, final, folder, data)
        else:
            self._folders.prepare(folder)
            started = time.perf_counter()
            self.publish(final, folder, data)
            self._measure(time.perf_counter() - started)

    def _measure(self, seconds: float) -> None:
        self._spent += min(seconds, self._clip)
        self._measured += 1
        if self._measured < _WINDOW:
            return
        mean, self._spent, self._measured = self._spent / _WINDOW, 0.0, 0
        if mean > self._slow and self._most > 0:
            log.debug(
                "a commit takes %.0f µs here: commits move to %d writer threads, in batches", mean * 1e6, self._most
            )
            self.threaded = True

    # -- the writer threads ----------------------------------------------------------------------------------------

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        batch = self._pending.pop(loop, [])
        if not batch:
            return
        # Split among the threads when it is large enough to be worth it (a file system that creates files slowly
        # still creates several at once, from several threads): one hand-over per part, not per file.
        parts = max(1, min(self._most, len(batch) // _PART))
        size = -(-len(batch) // parts)
        handed = 0
        for first in range(0, len(batch), size):
            self._jobs.put(batch[first : first + size])
            handed += 1
        with self._lock:
            self._queued += handed
            more = min(self._most - self._started, self._queued - self._waiting)
            self._started += max(0, more)
            first_number = self._started - more + 1
        for number in range(first_number, first_number + more):
            try:
                threading.Thread(target=self._work, name=f"binance-archive-commit-{number}", daemon=True).start()
            except RuntimeError as exc:  # "can't start new thread": a limit of threads or processes reached
                self._no_more_threads(exc, first_number + more - number)
                return

    def _no_more_threads(self, exc: RuntimeError, not_started: int) -> None:
        """Go on with the threads that run, or, with none, do the commits on the loop from now on (those queued
        included): never leave a commit waiting for a thread that will not come."""
        with self._lock:
            self._started -= not_started
            self._most = self._started
            alone = self._started == 0
        log.warning("cannot start a writer thread (%s): %s", exc, "commits stay on the event loop" if alone else
                    f"commits go to the {self._most} writer threads running")  # fmt: skip
        if not alone:
            return
        self.threaded = False
        while (batch := self._next_queued()) is not None:
            done: list[tuple[Request, BaseException | None]] = []
            self._do(batch, done)
            _settle(done)

    def _next_queued(self) -> list[Request] | None:
        """A batch handed over and not taken yet, or ``None``."""
        try:
            batch = self._jobs.get_nowait()
        except queue.Empty:
            return None
        with self._lock:
            self._queued -= 1
        return batch

    def _work(self) -> None:
        # A daemon thread, ended by a few idle seconds: a process that ends meanwhile is not held up by it, and a
        # commit it cuts short leaves no partial file under a final name (an unnamed file vanishes with the
        # process; the next run sweeps a named temporary one).
        while True:
            with self._lock:
                self._waiting += 1
            try:
                batch = self._jobs.get(timeout=_IDLE)
            except queue.Empty:
                with self._lock:
                    self._waiting -= 1
                    if self._queued > self._waiting:
                        continue  # a batch came as this thread gave up waiting, and no other thread waits for it
                    self._started -= 1
                return
            with self._lock:
                self._waiting -= 1
                self._queued -= 1
            done: list[tuple[Request, BaseException | None]] = []
            next_batch: list[Request] | None = batch
            while next_batch is not None:  # the batches queued meanwhile are answered in one call back to the loop
                self._do(next_batch, done)
                next_batch = self._next_queued()
            _answer(done)

    def _do(self, batch: list[Request], done: list[tuple[Request, BaseException | None]]) -> None:
        for request in batch:
            if not request.wanted():
                continue
            try:
                self._prepare_and_publish(request.final, request.folder, request.data)
                done.append((request, None))
            except BaseException as exc:  # handed to the file's own commit, on the loop
                done.append((request, exc))

    # -- one file --------------------------------------------------------------------------------------------------

    def _prepare_and_publish(self, final: str, folder: str, data: bytes) -> None:
        self._folders.prepare(folder)
        self.publish(final, folder, data)

    def publish(self, final: str, folder: str, data: bytes) -> None:
        """Create, write (and flush, with fsync) and publish one file; its folder is prepared. Raises OSError."""
        if self.unnamed:
            try:
                fd = _open_unnamed(folder)
            except OSError as exc:
                if exc.errno not in _UNSUPPORTED:
                    raise
                self._no_unnamed(folder, exc)  # not on this file system, or not by this kernel
            else:
                try:
                    _write(fd, data, self._fsync)
                    if self._link(fd, final):
                        return
                finally:
                    os.close(fd)
        with replacing(final) as temp:
            fd = self._folders.create(temp, folder)
            try:
                _write(fd, data, self._fsync)
            finally:
                os.close(fd)

    def _link(self, fd: int, final: str) -> bool:
        """Give the unnamed file ``fd`` the name ``final`` (replacing a file there, atomically); False when it cannot
        be linked (the caller writes it the named way, which says what is wrong if anything is)."""
        source = f"/proc/self/fd/{fd}"
        # linkat(2) with AT_SYMLINK_FOLLOW (as unprivileged processes may link an O_TMPFILE file), which os.link
        # asks for only when given a folder descriptor; for an absolute source path that descriptor is not used.
        try:
            os.link(source, final, src_dir_fd=fd)
            return True
        except FileExistsError:  # replacing a stored file: linked beside it, then renamed over it
            pass
        except OSError as exc:
            if exc.errno in _UNSUPPORTED:
                self._no_unnamed(final, exc)
            return False
        with replacing(final) as temp:
            os.link(source, temp, src_dir_fd=fd)
        return True

    def _no_unnamed(self, where: str, exc: OSError) -> None:
        if self.unnamed:
            log.debug("unnamed files cannot be made at %s (%s): temporary files are renamed instead", where, exc)
        self.unnamed = False


def _open_unnamed(folder: str) -> int:
    flags = os.O_WRONLY | _UNNAMED | getattr(os, "O_CLOEXEC", 0)
    try:
        return os.open(folder, flags, 0o666)
    except FileNotFoundError:  # the folder was removed meanwhile
        os.makedirs(folder, exist_ok=True)
        return os.open(folder, flags, 0o666)


def _write(fd: int, data: bytes, fsync: bool) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    if fsync:
        os.fsync(fd)


def _answer(done: list[tuple[Request, BaseException | None]]) -> None:
    """Hand the outcomes to their loops: one call back per loop (one in practice)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Request, BaseException | None]]] = {}
    for item in done:
        by_loop.setdefault(item[0].future.get_loop(), []).append(item)
    for loop, items in by_loop.items():
        with suppress(RuntimeError):  # the loop is closed: nobody waits for these any more
            loop.call_soon_threadsafe(_settle, items)


def _settle(items: list[tuple[Request, BaseException | None]]) -> None:
    for request, error in items:
        if request.future.done():  # cancelled meanwhile
            continue
        if error is None:
            request.future.set_result(None)
        else:
            request.future.set_exception(error)
