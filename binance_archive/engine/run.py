"""One download run: the plan consumed as a stream by workers, each file skipped, refreshed or transferred, and
every outcome counted in the report.

The number of files in flight is either pinned (``concurrency``) or found by measuring, up to ``max_concurrency``
(:mod:`~binance_archive.engine.pace`): then there is a worker for each file the ceiling allows, and every try of a
file passes a gate whose level moves. A worker whose file waits to be retried (a 429's Retry-After) holds no place
at the gate, so the files waiting do not starve the level: with one worker a place, a storm of refusals left most
places empty (measured: never above 80 in flight under 10% of 429s with a Retry-After of 1 s).

Memory stays flat however many files the plan names: a producer walks the plan into a bounded queue, and the
workers take files from it; daily files standing in for a missing monthly file go to a queue of their own, which
the workers take from first.

A file whose tries all failed transiently (5xx, resets, timeouts...) is put aside rather than counted failed; once
the plan is done, the same workers take those files once more (the final pass, as rclone's ``--retries`` does for
the failed remainder of a sync), and each is counted once, by how that ends. A host that answers nothing but
failures for a while stops the run instead (:class:`~binance_archive.engine.retry.DeadHost`).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Literal, TypeVar

import attrs

from binance_archive.backends import Storage, Transport
from binance_archive.core.files import ArchiveFile
from binance_archive.engine.pace import Pace, TryEnd
from binance_archive.engine.receive import Receiver
from binance_archive.engine.refresh import Refresh
from binance_archive.engine.resolve import Plan
from binance_archive.engine.retry import DeadHost, Retrying, RetryPolicy
from binance_archive.engine.stored import UNSCANNED, StoredIndex, stored_zip
from binance_archive.engine.transfer import Transfer
from binance_archive.errors import (
    FileMissingError,
    RetryableError,
    StorageError,
    StorageFullError,
    TransportError,
    VerificationError,
)
from binance_archive.events import Emitter, EventKind, ProgressCallback
from binance_archive.report import Concurrency, FileOutcome, Outcome, Report

__all__ = ["Detail", "Run", "first_leaf"]

log = logging.getLogger(__name__)

Detail = Literal["all", "problems"]
_T = TypeVar("_T")
_EVENT_OF = {
    Outcome.DOWNLOADED: EventKind.DONE,
    Outcome.SKIPPED: EventKind.SKIPPED,
    Outcome.MISSING: EventKind.MISSING,
    Outcome.FAILED: EventKind.FAILED,
}
_PROBLEMS = (Outcome.MISSING, Outcome.FAILED)
_DEFERRED_MAX = 100_000
"""The most files put aside for the final pass; beyond, a file that fails is counted failed at once (memory)."""


@attrs.frozen
class _GaveUp:
    """A file's tries all failed transiently: it fails, unless the final pass fetches it."""

    error: str
    attempts: int


class Run:
    """One download from ``transport`` into ``storage``; :meth:`execute` runs it and fills :attr:`report`.

    Args:
        concurrency: files in flight at once (one worker each); with ``max_concurrency``, the level to start at.
        max_concurrency: find the level by measuring, up to this many (``None``: ``concurrency`` is pinned).
        force: download again what is stored.
        refresh: compare stored sidecars with the archive's, and download the files that changed.
        detail: ``"all"`` keeps an outcome for every file not skipped, ``"problems"`` only for missing and failed.
        callbacks: progress callbacks (``None`` entries are left out).
    """

    def __init__(
        self,
        transport: Transport,
        storage: Storage,
        *,
        retry: RetryPolicy,
        concurrency: int,
        max_concurrency: int | None = None,
        force: bool,
        refresh: bool,
        detail: Detail,
        callbacks: tuple[ProgressCallback | None, ...],
    ) -> None:
        self._storage = storage
        self._retry = retry
        self._concurrency = concurrency
        ceiling = max_concurrency if max_concurrency is not None else concurrency
        self._ceiling = ceiling
        self._pace = Pace(min(concurrency, ceiling), ceiling) if max_concurrency is not None else None
        self._force = force
        self._keep_successes = detail == "all"
        self._emit = Emitter(callbacks)
        self.report = Report()
        # Daily files standing in for a missing monthly file: workers take these before the plan's next file.
        self._extra: collections.deque[ArchiveFile] = collections.deque()
        self._refresh = Refresh(transport, storage, retry) if refresh and not force else None
        # What a re-run finds stored, a folder scan at a time (force and refresh look at every file anyway).
        self._index = StoredIndex(storage) if not (force or refresh) else None
        self._receiver = Receiver(self._emit, threads=ceiling)
        self._transfer = Transfer(transport, storage, self._receiver, force=force, index=self._index)
        # Why nothing can be written to the storage (Storage.check_writable), or None: then no file is fetched.
        self._unwritable: StorageError | None = None
        report, extra = self.report, self._extra  # not self: the watch must not make a reference cycle of the run
        self._dead_host = DeadHost(retry, on_dead=lambda reason: _stop(report, extra, reason))
        # Files that failed transiently, with how their tries ended, for the final pass.
        self._deferred: collections.deque[tuple[ArchiveFile, _GaveUp]] = collections.deque()
        self._final = False  # the final pass is under way
        self._owner: tuple[asyncio.Task[object], int] | None = None

    async def execute(self, plan: Plan) -> None:
        """Download every file of ``plan``; errors that end the run (the listing the plan needs cannot be read, the
        storage cannot be inspected) are raised as themselves.

        The storage is asked first whether it can be written at all. When it cannot (a read-only folder or file
        system), files already stored are still skipped, but the first file that would be fetched stops the run
        instead, before any request for it: :attr:`Report.stopped` says why, and no file is counted failed.
        """
        started = time.perf_counter()
        try:
            await self._storage.check_writable()
        except StorageError as exc:
            log.debug("the storage cannot be written: %s", exc)
            self._unwritable = exc
        owner = asyncio.current_task()
        self._owner = (owner, owner.cancelling()) if owner is not None else None  # see _stopping
        # Each item: a file, and whether it is already known not to be stored.
        queue: asyncio.Queue[tuple[ArchiveFile, bool] | None] = asyncio.Queue(maxsize=2 * self._ceiling)
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._produce(plan, queue))
                for _ in range(self._ceiling):
                    group.create_task(self._worker(plan, queue))
            await self._final_pass(plan)
            while self._deferred:  # the run stopped before their second chance: failed as they stand
                file, gave_up = self._deferred.popleft()
                self._record(self._failed(file, gave_up.error, gave_up.attempts), file)
        except BaseExceptionGroup as errors:
            # Callers catch the library's exceptions, never a task group's.
            raise first_leaf(errors) from None
        finally:
            if self._refresh is not None:
                self._refresh.close()
            self._receiver.close()
            self.report.duration = time.perf_counter() - started
            pace = self._pace
            self.report.concurrency = pace.summary() if pace is not None else Concurrency.pinned(self._concurrency)
            log.info("download finished: %s", self.report.summary())

    async def _produce(self, plan: Plan, queue: asyncio.Queue[tuple[ArchiveFile, bool] | None]) -> None:
        index, report, emit = self._index, self.report, self._emit
        counting = emit.active  # looked up once: this loop is the whole of a resumed run
        async for files in plan.batches():
            for file in files:
                if report.stopped:
                    break
                known_absent = False
                if index is not None:
                    # A file the index knows is stored is skipped here: a resumed run then costs no trip
                    # through the queue, no stat and no await per file (this loop is the whole of a resume).
                    size = index.peek(file)
                    if size == UNSCANNED:
                        size = await index.lookup(file)
                    if size:
                        report.skipped += 1
                        if counting:
                            emit(EventKind.PLANNED, file)
                            emit(EventKind.SKIPPED, file, size)
                        continue
                    known_absent = size == 0
                await queue.put((file, known_absent))
            if report.stopped:
                break
        await queue.put(None)  # the end: each worker that takes it puts it back for the next

    async def _worker(self, plan: Plan, queue: asyncio.Queue[tuple[ArchiveFile, bool] | None]) -> None:
        stopping = self._stopping()
        while True:
            if self._extra:
                file, known_absent = self._extra.popleft(), False
            else:
                item = await queue.get()
                if item is None:
                    queue.put_nowait(None)  # for the next worker (only the producer puts, and it is done)
                    while self._extra and not self.report.stopped:  # fallbacks queued after the plan ran out
                        if stopping():
                            raise asyncio.CancelledError
                        await self._one(plan, self._extra.popleft())
                    return
                file, known_absent = item
            if self.report.stopped:
                continue  # drain the queue: files not started are not attempted
            if stopping():
                raise asyncio.CancelledError
            await self._one(plan, file, known_absent)

    async def _final_pass(self, plan: Plan) -> None:
        """The files put aside, each tried once more (with a full set of tries) by workers like the plan's."""
        if not self._deferred or self.report.stopped:
            return
        count = len(self._deferred)
        log.info("trying %d files that failed transiently once more", count)
        self._final = True
        failed = self.report.failed
        async with asyncio.TaskGroup() as group:
            for _ in range(min(self._ceiling, count)):  # the gate, where there is one, keeps to its level
                group.create_task(self._final_worker(plan))
        log.info("final pass: %d of %d files failed again", self.report.failed - failed, count)

    def _stopping(self) -> Callable[[], bool]:
        """For a worker: whether the download is being cancelled, and no new file may start.

        The task that runs the download (:meth:`execute`) counts a cancellation (Ctrl-C, a timeout) the moment it
        is asked for, while its task group cancels the workers only once the loop gets to it: a loop iteration
        later, in which every worker whose file just ended would start its next one (tens of files, measured with
        80 in flight). A worker's own count covers a cancellation that a library swallowed.
        """
        worker = asyncio.current_task()
        assert worker is not None
        if self._owner is None:
            return lambda: worker.cancelling() > 0
        task, before = self._owner
        return lambda: task.cancelling() > before or worker.cancelling() > 0

    async def _final_worker(self, plan: Plan) -> None:
        stopping = self._stopping()
        while not self.report.stopped:
            if stopping():
                raise asyncio.CancelledError
            if self._extra:
                await self._one(plan, self._extra.popleft())
            elif self._deferred:
                file, earlier = self._deferred.popleft()
                await self._one(plan, file, earlier=earlier)
            else:
                return

    async def _one(
        self, plan: Plan, file: ArchiveFile, known_absent: bool = False, earlier: _GaveUp | None = None
    ) -> None:
        """Skip, refresh or transfer ``file``; ``earlier`` is how its first round of tries ended (final pass)."""
        if earlier is None:
            self._emit(EventKind.PLANNED, file)
        previous: str | None = None
        sidecar: bytes | None = None
        if self._refresh is not None:
            previous, stored_sidecar = await self._refresh.stored_sidecar(file)
            if previous is not None:
                if await self._refresh.listing_vouches(file, stored_sidecar):
                    await self._skip_stored(file)
                    return
                upstream = await self._tries(plan, file, lambda _attempt: self._refresh_sidecar(file))
                if isinstance(upstream, FileOutcome | _GaveUp):
                    self._end(upstream, file, earlier)
                    return
                sidecar, digest = upstream
                if digest == previous:
                    await self._skip_stored(file)
                    return
                log.info("%s changed upstream: %s -> %s", file.key, previous, digest)
        elif not self._force and not known_absent and (stored := await stored_zip(self._storage, file)):
            self._skip(file, stored.size)
            return
        if self._unwritable is not None:
            # Nothing fetched could be stored: stop before the first request rather than fail every file after it.
            why = "nothing was fetched (give a folder or bucket that can be written to)"
            _stop(self.report, self._extra, str(self._unwritable), why)
            return
        self._emit(EventKind.STARTED, file)
        outcome = await self._tries(
            # The first try reuses the sidecar a refresh just fetched; a retry fetches it afresh.
            plan,
            file,
            lambda attempt: self._transfer.attempt(file, previous, attempt, sidecar if attempt == 1 else None),
        )
        assert isinstance(outcome, FileOutcome | _GaveUp)
        self._end(outcome, file, earlier)

    def _end(self, result: FileOutcome | _GaveUp, file: ArchiveFile, earlier: _GaveUp | None) -> None:
        """Count how ``file`` ended, or put it aside for the final pass."""
        if isinstance(result, _GaveUp):
            second_chance = self._retry.final_pass and not self._final and not self.report.stopped
            if second_chance and len(self._deferred) < _DEFERRED_MAX:
                self._deferred.append((file, result))
                self._emit(EventKind.RETRY, file, error=f"{result.error} (tried again at the end of the run)")
                return
            attempts = result.attempts + (earlier.attempts if earlier is not None else 0)
            later = f" ({earlier.attempts}, then {result.attempts} at the end of the run)" if earlier else ""
            outcome = self._failed(file, f"gave up after {attempts} tries{later}: {result.error}", attempts)
        elif earlier is not None:  # the final pass: its tries are added to the first round's
            outcome = attrs.evolve(result, attempts=result.attempts + earlier.attempts)
        else:
            outcome = result
        self._record(outcome, file)

    async def _refresh_sidecar(self, file: ArchiveFile) -> tuple[bytes, str]:
        assert self._refresh is not None
        return await self._refresh.upstream_sidecar(file)

    def _skip(self, file: ArchiveFile, size: int) -> None:
        self._record(FileOutcome(file.key, Outcome.SKIPPED, size), file)

    async def _skip_stored(self, file: ArchiveFile) -> None:
        stat = await self._storage.stat(file.key)
        self._skip(file, stat.size if stat else 0)

    def _record(self, outcome: FileOutcome, file: ArchiveFile) -> None:
        kind = outcome.outcome
        # Skipped files are only counted: a resumed run over millions of files keeps no list of them.
        self.report.add(outcome, keep=kind is not Outcome.SKIPPED and (self._keep_successes or kind in _PROBLEMS))
        if self._emit.active:
            self._emit(_EVENT_OF[kind], file, outcome.bytes, outcome.error)

    async def _tries(
        self, plan: Plan, file: ArchiveFile, attempt_once: Callable[[int], Awaitable[_T]]
    ) -> _T | FileOutcome | _GaveUp:
        """Run ``attempt_once`` until it succeeds, or return the outcome that ends the file (missing, failed), or
        how its tries ended when they all failed transiently."""
        tries = Retrying(
            self._retry,
            what=file.key,
            verify=True,
            on_retry=lambda exc: self._emit(EventKind.RETRY, file, error=str(exc)),
            dead_host=self._dead_host,
        )
        if self._pace is not None:
            attempt_once = _paced(self._pace, attempt_once)
        try:
            return await tries(attempt_once)
        except FileMissingError:
            return self._missing(plan, file, tries.attempts)
        except RetryableError as exc:
            return _GaveUp(str(exc), tries.attempts)
        except StorageFullError as exc:
            _stop(self.report, self._extra, str(exc))
            return self._failed(file, str(exc), tries.attempts)
        except VerificationError as exc:
            return self._failed(file, f"verification failed: {exc}", tries.attempts)
        except (TransportError, StorageError) as exc:
            return self._failed(file, str(exc), tries.attempts)

    @staticmethod
    def _failed(file: ArchiveFile, error: str, attempts: int) -> FileOutcome:
        return FileOutcome(file.key, Outcome.FAILED, error=error, attempts=attempts)

    def _missing(self, plan: Plan, file: ArchiveFile, attempts: int) -> FileOutcome:
        days = plan.instead_of_missing(file)
        if days:
            self._extra.extend(days)
            error = f"not in the archive; fetching its {len(days)} daily files instead"
        else:
            error = "not in the archive"
        return FileOutcome(file.key, Outcome.MISSING, error=error, attempts=attempts)


def _paced(pace: Pace, attempt_once: Callable[[int], Awaitable[_T]]) -> Callable[[int], Awaitable[_T]]:
    """``attempt_once`` with each try passing ``pace``'s gate (a retry's wait is outside it) and its end told."""

    async def paced(attempt: int) -> _T:
        ticket = pace.enter()
        if ticket is None:
            ticket = await pace.wait()
        try:
            result = await attempt_once(attempt)
        except RetryableError as exc:
            pace.leave(ticket, TryEnd.REFUSED if exc.throttled else TryEnd.OTHER)
            raise
        except BaseException:
            pace.leave(ticket, TryEnd.OTHER)
            raise
        pace.leave(ticket, TryEnd.DONE)
        return result

    return paced


def _stop(
    report: Report,
    extra: collections.deque[ArchiveFile],
    reason: str,
    why: str = "the run stopped early (files not started were not attempted)",
) -> None:
    """No file can be stored any more (the disk is full, the target cannot be written), or the host is dead: start
    no new file; those in flight end (retrying no more once the host is given up)."""
    if not report.stopped:
        report.stopped = f"{reason}; {why}"
        log.error("stopping the download: %s", reason)
    extra.clear()


def first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first error of a task group (of nested groups, the first's first)."""
    first = group.exceptions[0]
    return first_leaf(first) if isinstance(first, BaseExceptionGroup) else first
