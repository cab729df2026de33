"""The engine: plan -> skip what is stored -> fetch -> verify -> store -> report.

An :class:`Archive` joins one transport and one storage. ``download`` consumes the plan as a stream with a
fixed number of workers, so memory stays flat however many files a selection names.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import datetime as dt
import functools
import hashlib
import logging
import os
import re
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self, TypeVar

from binance_archive.backends import Body, Storage, StoredObject, Transport, Writer
from binance_archive.core.catalog import DEFAULT_CATALOG, Catalog
from binance_archive.core.checksum import MAX_SIDECAR_BYTES, parse_checksum
from binance_archive.core.datatypes import DataType
from binance_archive.core.files import CHECKSUM_SUFFIX, ArchiveFile
from binance_archive.core.listing import ListedObject
from binance_archive.core.markets import Market
from binance_archive.core.periods import Period
from binance_archive.core.planning import Shard, files_of_month, parse_shard, plan, utc_today, validate_selection
from binance_archive.core.selection import Selection
from binance_archive.core.symbols import validate_symbol
from binance_archive.discovery import first_date, list_objects, list_symbols
from binance_archive.errors import (
    ConfigurationError,
    FileMissingError,
    RetryableError,
    StorageError,
    StorageFullError,
    TransportError,
    VerificationError,
)
from binance_archive.events import Event, EventKind, ProgressCallback
from binance_archive.plugins import BackendRegistry, make_plugin_manager
from binance_archive.report import FileOutcome, Outcome, Report
from binance_archive.retry import RetryPolicy
from binance_archive.storages.local import LocalStorage
from binance_archive.stored_index import UNSCANNED, StoredIndex

if TYPE_CHECKING:
    from binance_archive.verification import VerifyReport

__all__ = ["MAX_CONCURRENCY", "Archive"]

log = logging.getLogger(__name__)

Detail = Literal["all", "problems"]
MAX_CONCURRENCY = 10_000
"""The most files in flight an Archive accepts."""
_LISTINGS_KEPT = 16  # listings of sidecars a refresh keeps (each at most a year of one series: ~370 entries)
_MAX_LISTED_SIDECARS = 1000
_MD5 = re.compile(r"[0-9a-fA-F]{32}")
_T = TypeVar("_T")
_EVENT_OF = {
    Outcome.DOWNLOADED: EventKind.DONE,
    Outcome.SKIPPED: EventKind.SKIPPED,
    Outcome.MISSING: EventKind.MISSING,
    Outcome.FAILED: EventKind.FAILED,
}
_PROBLEMS = (Outcome.MISSING, Outcome.FAILED)
# Bodies larger than this are hashed and written in threads, batch by batch, while the next batch arrives;
# smaller ones (most of the archive) are hashed on the event loop, where a thread hop would cost more.
_BATCH = 1024 * 1024


class Archive:
    """A mirror of the archive: one transport to fetch from, one storage to keep the files in.

    Use it as an async context manager (or just ``await archive.download(...)``, which opens and closes
    the backends around itself)::

        async with Archive("./binance-data") as archive:
            report = await archive.download(
                Selection(markets="spot", data_types="klines", symbols="BTCUSDT", intervals="1m",
                          start="2024-01-01", end="2024-03-15")
            )

    Args:
        storage: where the mirror goes: a folder, a URL (``s3://bucket/prefix``) or a Storage instance.
        transport: how files are fetched: a name (``http``, or any installed plugin's) or an instance.
        transport_options: keyword options for the transport's constructor.
        storage_options: keyword options for the storage's constructor.
        base_url: where the archive's files are (passed to the transport as ``base_url``).
        listing_url: the S3 listing of the archive (passed to the transport as ``listing_url``).
        concurrency: files in flight at once (default: the transport's preference: 80 for HTTP, 512 for s5cmd,
            32 for a mirror).
        retry: the retry policy for transient failures.
        catalog: the availability matrix to plan against.
        progress: a callable receiving every progress :class:`~binance_archive.events.Event`.
        plugins: extra plugin objects to register (third parties normally use entry points).
        entry_points: load plugins from the ``binance_archive`` entry-point group.

    Raises:
        ConfigurationError: for an unknown backend or option, before any I/O.
    """

    def __init__(
        self,
        storage: str | os.PathLike[str] | Storage = "binance-data",
        *,
        transport: str | Transport = "http",
        transport_options: Mapping[str, Any] | None = None,
        storage_options: Mapping[str, Any] | None = None,
        base_url: str | None = None,
        listing_url: str | None = None,
        concurrency: int | None = None,
        retry: RetryPolicy | None = None,
        catalog: Catalog = DEFAULT_CATALOG,
        progress: ProgressCallback | None = None,
        plugins: Iterable[object] = (),
        entry_points: bool = True,
    ) -> None:
        self.registry = BackendRegistry.from_plugin_manager(
            make_plugin_manager(entry_points=entry_points, plugins=plugins)
        )
        options = dict(transport_options or {})
        if base_url is not None:
            options.setdefault("base_url", base_url)
        if listing_url is not None:
            options.setdefault("listing_url", listing_url)
        self.transport = self.registry.transport(transport, options)
        self.storage = self.registry.storage(storage, storage_options)
        stage_near = getattr(self.transport, "stage_near", None)
        if callable(stage_near) and isinstance(self.storage, LocalStorage):
            # A transport that stages files on disk (s5cmd) stages them on the mirror's file system, so the
            # storage adopts each with a hard link instead of a copy.
            stage_near(self.storage.root)
        if concurrency is not None and concurrency < 1:
            raise ConfigurationError(f"concurrency must be at least 1, got {concurrency}")
        if concurrency is not None and concurrency > MAX_CONCURRENCY:
            # Each slot is a worker task (and up to two connections): a typo such as 1000000 would take
            # gigabytes and minutes before the first request.
            raise ConfigurationError(f"concurrency must be at most {MAX_CONCURRENCY}, got {concurrency}")
        self.concurrency = concurrency or self.transport.default_concurrency
        size_for = getattr(self.transport, "size_for", None)
        if callable(size_for):
            size_for(self.concurrency)
        self.retry = retry or RetryPolicy()
        self.catalog = catalog
        self.progress = progress
        self._opened = 0

    # -- lifecycle -----------------------------------------------------------------------------------------

    def import_dependencies(self) -> None:
        """Import now what the backends import on first use (see :meth:`Transport.import_dependencies`)."""
        self.transport.import_dependencies()
        self.storage.import_dependencies()

    async def __aenter__(self) -> Self:
        await self._open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._close()

    async def _open(self) -> None:
        if self._opened == 0:
            await self.transport.open()
            try:
                await self.storage.open()
            except BaseException:
                await self.transport.close()
                raise
        self._opened += 1

    async def _close(self) -> None:
        self._opened -= 1
        if self._opened == 0:
            try:
                await self.storage.close()
            finally:
                await self.transport.close()

    async def _session(self) -> _Opened:
        await self._open()
        return _Opened(self)

    # -- discovery -----------------------------------------------------------------------------------------

    async def symbols(
        self, market: Market | str, data_type: DataType | str, period: Period | str | None = None
    ) -> list[str]:
        """The symbols that have files of ``data_type`` in ``market``, from the archive's listing.

        Raises:
            ConfigurationError: for an unknown market, data type or period, or a type the market lacks.
            TransportError: when the listing cannot be read.
        """
        m, t = Market.parse(market), DataType.parse(data_type)
        p = Period.parse(period) if period is not None else None
        self.catalog.lookup(m, t)
        async with await self._session():
            return await list_symbols(self.transport, self.catalog, m, t, p)

    async def list_files(self, prefix: str) -> AsyncIterator[ListedObject]:
        """Every object under ``prefix`` in the archive's listing, with size, ETag and LastModified."""
        async with await self._session():
            async for obj in list_objects(self.transport, prefix):
                yield obj

    # -- verification --------------------------------------------------------------------------------------

    async def verify(
        self,
        *,
        prefix: str = "data/",
        selections: Iterable[Selection] = (),
        today: dt.date | None = None,
    ) -> VerifyReport:
        """Re-hash the stored mirror against its stored sidecars; name corrupt, missing, unverified and orphan files.

        Args:
            prefix: only keys under this prefix.
            selections: also report every file these selections plan that is not stored as missing.
            today: the UTC date the selections are planned for.
        """
        from binance_archive.verification import verify_storage  # only here: a download does not need it

        async with await self._session():
            try:
                return await verify_storage(
                    self.storage, prefix=prefix, selections=selections, today=today, catalog=self.catalog
                )
            except BaseExceptionGroup as errors:
                # A folder it may not read, say: raised as the StorageError it is, not as a task group's.
                raise _first_leaf(errors) from None

    # -- download ------------------------------------------------------------------------------------------

    async def download(
        self,
        selection: Selection | Iterable[Selection],
        *,
        force: bool = False,
        refresh: bool = False,
        today: dt.date | None = None,
        shard: Shard | str | None = None,
        progress: ProgressCallback | None = None,
        detail: Detail = "all",
        fallback: bool = True,
    ) -> Report:
        """Mirror every file of ``selection``: skip what is stored, fetch, verify, store, and report.

        Args:
            selection: what to mirror (or several selections, mirrored in one run). No symbols means
                every symbol the listing shows; no start date means from each series' first file.
            force: download again even what is already stored.
            refresh: compare each stored file's sidecar with the archive's and download those that changed
                (Binance re-uploads fixed files); the report keeps the replaced checksum.
            today: the UTC date to plan for (default: today).
            shard: ``(k, n)`` or ``"k/n"``: only shard k of n of the plan.
            progress: a callable for progress events (in addition to the archive's own).
            detail: ``"all"`` keeps an outcome for every file not skipped; ``"problems"`` only for missing
                and failed files, for large runs: an outcome costs ~1 KB (~90 MB for 100,000 files), so only
                ``"problems"`` keeps memory flat as a plan grows (the command uses it unless asked for --json).
            fallback: when a monthly file is missing, download the daily files of its month instead.

        Raises:
            ConfigurationError: for an invalid selection, before any I/O.
        """
        selections = (selection,) if isinstance(selection, Selection) else tuple(selection)
        for one in selections:
            validate_selection(one, self.catalog)
        parsed_shard = parse_shard(shard)
        today = today or utc_today()
        run = _Run(self, force=force, refresh=refresh, today=today, progress=progress, detail=detail, fallback=fallback)
        async with await self._session():
            await run.execute(self._plans(selections, today, parsed_shard))
        return run.report

    def download_sync(self, selection: Selection | Iterable[Selection], **kwargs: Any) -> Report:
        """:meth:`download` for scripts without an event loop (it runs one).

        Raises:
            RuntimeError: when called inside a running event loop (a notebook, an async app): there,
                ``await archive.download(...)`` instead.
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            from binance_archive.runner import run

            return run(self.download(selection, **kwargs))
        raise RuntimeError(
            "download_sync() cannot run inside a running event loop (a notebook or an async application); "
            "use `await archive.download(...)` there"
        )

    async def _plans(
        self, selections: tuple[Selection, ...], today: dt.date, shard: Shard | None
    ) -> AsyncIterator[Iterator[ArchiveFile]]:
        """The plan, as a stream of lazy plans: one per selection, or, where a selection leaves out symbols or
        its start date, one per series once the listing has filled them in.

        Plain iterators inside, awaited only between them: a resumed run walks millions of files, and an async
        generator step per file would cost more than everything else done for a stored file.
        """
        for selection in selections:
            async for files in self._plans_of(selection, today, shard):
                yield files

    async def _plans_of(
        self, selection: Selection, today: dt.date, shard: Shard | None
    ) -> AsyncIterator[Iterator[ArchiveFile]]:
        if selection.symbols and selection.start is not None:
            yield plan(selection, today=today, catalog=self.catalog, shard=shard)
            return
        for market in selection.markets:
            for data_type in selection.data_types:
                symbols = selection.symbols or _safe_symbols(
                    await self._listing(
                        functools.partial(list_symbols, self.transport, self.catalog, market, data_type)
                    )
                )
                log.info("%s %s: %d symbols", market.value, data_type.value, len(symbols))
                for symbol in symbols:
                    for interval in selection.intervals_for(data_type):
                        start = selection.start
                        if start is None:
                            start = await self._listing(
                                functools.partial(
                                    first_date, self.transport, self.catalog, market, data_type, symbol, interval
                                )
                            )
                            if start is None:
                                log.info(
                                    "no files for %s %s %s %s", market.value, data_type.value, symbol, interval or ""
                                )
                                continue
                        if selection.end is not None and start > selection.end:
                            continue
                        one = selection.with_(
                            markets=(market,),
                            data_types=(data_type,),
                            symbols=(symbol,),
                            intervals=(interval,) if interval else (),
                            start=start,
                        )
                        yield plan(one, today=today, catalog=self.catalog, shard=shard)

    async def _listing(self, read: Callable[[], Awaitable[_T]]) -> _T:
        """Read the listing with the retry policy: a 503 or a reset on one listing page must not end the run."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return await read()
            except RetryableError as exc:
                if attempt >= self.retry.attempts:
                    raise
                delay = self.retry.delay(attempt, exc.retry_after)
                log.debug("retrying the listing in %.2fs: %s", delay, exc)
                await asyncio.sleep(delay)


class _Opened:
    """``async with await archive._session()``: keeps the backends open for one call."""

    def __init__(self, archive: Archive) -> None:
        self._archive = archive

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        await self._archive._close()


class _Run:
    """One download: the workers, the report, and the per-file pipeline."""

    def __init__(
        self,
        archive: Archive,
        *,
        force: bool,
        refresh: bool,
        today: dt.date,
        progress: ProgressCallback | None,
        detail: Detail,
        fallback: bool,
    ) -> None:
        self.transport = archive.transport
        self.storage = archive.storage
        self.retry = archive.retry
        self.concurrency = archive.concurrency
        self.force = force
        self.refresh = refresh
        self.today = today
        self.fallback = fallback
        self.keep_successes = detail == "all"
        self.callbacks = [cb for cb in (archive.progress, progress) if cb is not None]
        self.report = Report()
        # Daily files standing in for a missing monthly file: workers take these before the plan's next file.
        self.extra: collections.deque[ArchiveFile] = collections.deque()
        # For refresh: the listing of sidecars, by scope (see _listing_vouches).
        self.use_listing = True
        self.listings: dict[str, asyncio.Future[dict[str, ListedObject] | None]] = {}
        # What a re-run finds stored, a folder scan at a time (force and refresh look at every file anyway).
        self.index = StoredIndex(self.storage) if not (force or refresh) else None
        # Threads that receive, hash and write large bodies on loops of their own (see _pump); made on first use.
        self.pumps: concurrent.futures.ThreadPoolExecutor | None = None

    def emit(self, kind: EventKind, file: ArchiveFile, nbytes: int = 0, error: str | None = None) -> None:
        if self.callbacks:
            event = Event(kind, file, nbytes, error)
            for callback in self.callbacks:
                callback(event)

    async def execute(self, plans: AsyncIterator[Iterator[ArchiveFile]]) -> None:
        started = time.perf_counter()
        # Each item: a file, and whether it is already known not to be stored.
        queue: asyncio.Queue[tuple[ArchiveFile, bool] | None] = asyncio.Queue(maxsize=2 * self.concurrency)

        async def produce() -> None:
            index, report, callbacks = self.index, self.report, self.callbacks
            async for files in plans:
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
                            if callbacks:
                                self.emit(EventKind.PLANNED, file)
                                self.emit(EventKind.SKIPPED, file, size)
                            continue
                        known_absent = size == 0
                    await queue.put((file, known_absent))
                if report.stopped:
                    break
            for _ in range(self.concurrency):
                await queue.put(None)

        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(produce())
                for _ in range(self.concurrency):
                    group.create_task(self._worker(queue))
        except BaseExceptionGroup as errors:
            # An error that ends the run (the listing the plan needs cannot be read, the storage cannot be
            # inspected) is raised as itself: callers catch the library's exceptions, never a task group's.
            raise _first_leaf(errors) from None
        finally:
            for task in self.listings.values():
                task.cancel()  # only a run that ends early leaves one unfinished
            if self.pumps is not None:
                self.pumps.shutdown(wait=False, cancel_futures=True)  # idle by now, or told to stop (see _pump)
            self.report.duration = time.perf_counter() - started
            log.info("download finished: %s", self.report.summary())

    async def _worker(self, queue: asyncio.Queue[tuple[ArchiveFile, bool] | None]) -> None:
        while True:
            if self.extra:
                file, known_absent = self.extra.popleft(), False
            else:
                item = await queue.get()
                if item is None:
                    while self.extra and not self.report.stopped:  # fallbacks queued after the plan ran out
                        await self._one(self.extra.popleft())
                    return
                file, known_absent = item
            if self.report.stopped:
                continue  # drain the queue: files not started are not attempted
            await self._one(file, known_absent)

    def _stop(self, exc: StorageFullError) -> None:
        """No file can be stored any more (the disk is full): start no new file; those in flight finish."""
        if not self.report.stopped:
            self.report.stopped = f"{exc}; the run stopped early (files not started were not attempted)"
            log.error("stopping the download: %s", exc)
        self.extra.clear()

    async def _one(self, file: ArchiveFile, known_absent: bool = False) -> None:
        self.emit(EventKind.PLANNED, file)
        previous: str | None = None
        sidecar: bytes | None = None
        if self.refresh and not self.force:
            previous, stored_sidecar = await self._stored_sidecar(file)
            if previous is not None:
                # The listing vouches for an unchanged sidecar (its ETag is the MD5 of the stored bytes): one
                # listing request covers a year of files. Where it cannot, the upstream sidecar is fetched.
                if await self._listing_vouches(file, stored_sidecar):
                    await self._skip_stored(file)
                    return
                upstream = await self._with_retries(file, lambda attempt: self._upstream_sidecar(file))
                if isinstance(upstream, FileOutcome):
                    self._record(upstream, file)
                    return
                sidecar, digest = upstream
                if digest == previous:
                    await self._skip_stored(file)
                    return
                log.info("%s changed upstream: %s -> %s", file.key, previous, digest)
        elif not self.force and not known_absent and (stored := await self._is_stored(file)):
            self._skip(file, stored.size)
            return
        self.emit(EventKind.STARTED, file)
        outcome = await self._with_retries(
            # The first try reuses the sidecar a refresh just fetched; a retry fetches it afresh.
            file,
            lambda attempt: self._fetch(file, previous, attempt, sidecar if attempt == 1 else None),
        )
        assert isinstance(outcome, FileOutcome)
        self._record(outcome, file)

    def _skip(self, file: ArchiveFile, size: int) -> None:
        self._record(FileOutcome(file.key, Outcome.SKIPPED, size), file)

    async def _skip_stored(self, file: ArchiveFile) -> None:
        stat = await self.storage.stat(file.key)
        self._skip(file, stat.size if stat else 0)

    async def _upstream_sidecar(self, file: ArchiveFile) -> tuple[bytes, str]:
        content = await self.transport.get_bytes(file.checksum_key, max_size=MAX_SIDECAR_BYTES)
        return content, parse_checksum(content, filename=file.filename)

    async def _is_stored(self, file: ArchiveFile) -> StoredObject | None:
        """The zip of a stored file: one whose sidecar (written last, as the commit marker) and non-empty zip are."""
        if await self.storage.stat(file.checksum_key) is None:
            return None
        stat = await self.storage.stat(file.key)
        if stat is not None and stat.size > 0:
            return stat
        # A sidecar without a (non-empty) zip beside it: the zip was lost. Unmark the file before its zip is
        # written again, or a crash between the new zip and its sidecar would pair the new bytes with the old
        # sidecar (a CORRUPT file under its final name if Binance replaced the file meanwhile).
        await self.storage.delete(file.checksum_key)
        return None

    async def _stored_sidecar(self, file: ArchiveFile) -> tuple[str | None, bytes]:
        """The digest and bytes of the stored sidecar; ``(None, b"")`` when the file is not (completely) stored."""
        if not await self._is_stored(file):
            return None, b""
        try:
            content = await self.storage.read_bytes(file.checksum_key, max_size=MAX_SIDECAR_BYTES)
            return parse_checksum(content), content
        except (StorageError, VerificationError):
            return None, b""

    async def _listing_vouches(self, file: ArchiveFile, stored: bytes) -> bool:
        """Whether the archive's listing shows ``file``'s sidecar with exactly the stored bytes.

        S3 gives an object uploaded in one part (a sidecar is ~100 bytes) the MD5 of its bytes as ETag, so an
        equal ETag and size mean an equal sidecar, hence an equal digest. Anything else (no listing, another
        kind of ETag, the sidecar absent from the listing) proves nothing, and the sidecar is fetched.
        """
        if not self.use_listing:
            return False
        # One listing per series and year of daily files (at most 732 entries: one page), or per series of
        # monthly files; the workers share it, and the last few are kept (the plan walks series in order).
        scope = file.name_prefix + (f"{file.date.year}-" if file.period is Period.DAILY else "")
        task = self.listings.get(scope)
        if task is None:
            task = asyncio.ensure_future(self._list_sidecars(scope))
            self.listings[scope] = task
            while len(self.listings) > _LISTINGS_KEPT:
                self.listings.pop(next(iter(self.listings)))
        listed = (await asyncio.shield(task) or {}).get(file.checksum_key)
        return (
            listed is not None
            and listed.size == len(stored)
            and listed.etag.lower() == hashlib.md5(stored, usedforsecurity=False).hexdigest()
        )

    async def _list_sidecars(self, scope: str) -> dict[str, ListedObject] | None:
        """The sidecars the listing shows under ``scope``, or ``None`` when it cannot be read (then: GETs)."""
        found: dict[str, ListedObject] = {}
        attempt = 0
        while True:
            attempt += 1
            try:
                async for page in self.transport.list(scope, delimiter=None):
                    for obj in page.objects:
                        if obj.key.endswith(CHECKSUM_SUFFIX):
                            found[obj.key] = obj
                    if len(found) > _MAX_LISTED_SIDECARS:  # not a year of one series: a listing gone wrong
                        return None
                if found and not any(_MD5.fullmatch(obj.etag) for obj in found.values()):
                    self.use_listing = False  # this transport's listing has no MD5 ETags (a local mirror)
                return found
            except RetryableError as exc:
                if attempt >= self.retry.attempts:
                    return None
                await asyncio.sleep(self.retry.delay(attempt, exc.retry_after))
            except (TransportError, VerificationError) as exc:
                # A transport that cannot list, or a listing that is not one: fetch each sidecar for the rest of
                # the run.
                log.debug("refresh without the listing of %s: %s", scope, exc)
                self.use_listing = False
                return None

    def _record(self, outcome: FileOutcome, file: ArchiveFile) -> None:
        kind = outcome.outcome
        # Skipped files are only counted: a resumed run over millions of files keeps no list of them.
        self.report.add(outcome, keep=kind is not Outcome.SKIPPED and (self.keep_successes or kind in _PROBLEMS))
        if self.callbacks:
            self.emit(_EVENT_OF[kind], file, outcome.bytes, outcome.error)

    async def _with_retries(self, file: ArchiveFile, attempt_once: Callable[[int], Awaitable[_T]]) -> _T | FileOutcome:
        """Run ``attempt_once`` until it succeeds, or return the outcome that ends the file (missing, failed)."""
        attempt = 0
        verify_failures = 0
        while True:
            attempt += 1
            try:
                return await attempt_once(attempt)
            except FileMissingError as exc:
                return self._missing(file, attempt, exc)
            except RetryableError as exc:
                if attempt >= self.retry.attempts:
                    return FileOutcome(
                        file.key, Outcome.FAILED, error=f"gave up after {attempt} tries: {exc}", attempts=attempt
                    )
                delay = self.retry.delay(attempt, exc.retry_after)
                log.debug("retrying %s in %.2fs: %s", file.key, delay, exc)
                self.emit(EventKind.RETRY, file, error=str(exc))
                await asyncio.sleep(delay)
            except StorageFullError as exc:
                self._stop(exc)
                return FileOutcome(file.key, Outcome.FAILED, error=str(exc), attempts=attempt)
            except VerificationError as exc:
                verify_failures += 1
                if verify_failures >= self.retry.verify_attempts or attempt >= self.retry.attempts:
                    return FileOutcome(file.key, Outcome.FAILED, error=f"verification failed: {exc}", attempts=attempt)
                self.emit(EventKind.RETRY, file, error=str(exc))
            except (TransportError, StorageError) as exc:
                return FileOutcome(file.key, Outcome.FAILED, error=str(exc), attempts=attempt)

    def _missing(self, file: ArchiveFile, attempt: int, exc: FileMissingError) -> FileOutcome:
        if self.fallback and file.period is Period.MONTHLY and file.data_type is not DataType.FUNDING_RATE:
            days = list(files_of_month(file, today=self.today))
            if days:
                self.extra.extend(days)
                return FileOutcome(
                    file.key,
                    Outcome.MISSING,
                    error=f"not in the archive; fetching its {len(days)} daily files instead",
                    attempts=attempt,
                )
        return FileOutcome(file.key, Outcome.MISSING, error="not in the archive", attempts=attempt)

    async def _fetch(
        self, file: ArchiveFile, previous: str | None, attempt: int, known_sidecar: bytes | None = None
    ) -> FileOutcome:
        """One try: sidecar and zip fetched concurrently, the zip hashed as it streams into storage."""
        sidecar: asyncio.Future[bytes]
        if known_sidecar is not None:
            sidecar = asyncio.get_running_loop().create_future()
            sidecar.set_result(known_sidecar)
        else:
            sidecar = asyncio.create_task(self.transport.get_bytes(file.checksum_key, max_size=MAX_SIDECAR_BYTES))
        try:
            async with self.transport.get(file.key) as body:
                expected, size = await self._store_verified(file, body, sidecar, previous)
            sidecar_bytes = sidecar.result()
        except FileMissingError:
            # Whether the sidecar exists decides between a missing date and an archive inconsistency, so wait
            # for its answer (it is already in flight) instead of racing it: a zip that 404s before its sidecar
            # has answered must not be reported missing one run and failed the next.
            sidecar_error = (await asyncio.gather(sidecar, return_exceptions=True))[0]
            if not isinstance(sidecar_error, BaseException):
                # The sidecar exists but the zip does not: an archive inconsistency, not a missing date.
                raise TransportError(f"{file.key} is missing but its .CHECKSUM exists") from None
            if isinstance(sidecar_error, FileMissingError | asyncio.CancelledError):
                raise
            raise sidecar_error from None  # e.g. a 503 for the sidecar: retried, and the next try decides
        finally:
            if not sidecar.done():
                sidecar.cancel()
                await asyncio.gather(sidecar, return_exceptions=True)
            elif not sidecar.cancelled():
                sidecar.exception()  # marks its exception (if any) retrieved: no "never retrieved" warning
        # The sidecar goes last: its presence marks a complete, verified file.
        try:
            await self.storage.put_bytes(file.checksum_key, sidecar_bytes)
        except StorageError:
            # The disk filled up between the zip and its sidecar, say: take the zip back rather than leave it
            # under its final name without its marker (verify would call it unverified); the next run fetches it.
            with contextlib.suppress(StorageError):
                await self.storage.delete(file.key)
            raise
        if self.index is not None:
            self.index.stored(file, size, len(sidecar_bytes))
        return FileOutcome(
            file.key,
            Outcome.DOWNLOADED,
            size,
            sha256=expected,
            attempts=attempt,
            previous_sha256=previous if previous != expected else None,
        )

    async def _expected_digest(self, file: ArchiveFile, sidecar: asyncio.Future[bytes]) -> str:
        try:
            content = await sidecar
        except FileMissingError:
            raise TransportError(f"{file.checksum_key} is missing: the file cannot be verified") from None
        return parse_checksum(content, filename=file.filename)

    async def _store_verified(
        self, file: ArchiveFile, body: Body, sidecar: asyncio.Future[bytes], previous: str | None
    ) -> tuple[str, int]:
        if previous is not None or self.force:
            # Unmark the old copy first: a crash between zip and sidecar must not pair new bytes with an old
            # sidecar (or old bytes with a new one).
            await self.storage.delete(file.checksum_key)
        if body.local_path is not None:
            return await self._adopt_local(file, body, sidecar)
        digest = hashlib.sha256()
        size = 0
        async with self.storage.writer(file.key) as writer:
            if body.size is not None and body.size <= _BATCH:
                callbacks = self.callbacks
                async for chunk in body.chunks():
                    digest.update(chunk)
                    size += len(chunk)
                    await writer.write(chunk)
                    if callbacks:
                        self.emit(EventKind.BYTES, file, len(chunk))
            elif writer.writes_in_thread and (body.blocking or body.loop_free):
                size = await self._pump(file, body, digest, writer)
            else:
                size = await self._stream_large(file, body, digest, writer)
            expected = await self._expected_digest(file, sidecar)
            actual = digest.hexdigest()
            if actual != expected:
                raise VerificationError(f"{file.key}: SHA-256 {actual} does not match the sidecar's {expected}")
            await writer.commit()
        return expected, size

    async def _pump(self, file: ArchiveFile, body: Body, digest: Any, writer: Writer) -> int:
        """Receive, hash and write a large body in a worker thread: from its blocking reader where it has one
        (:attr:`Body.blocking`), else on an event loop of that thread.

        On the engine's loop, every chunk would go from the client's thread to the loop, and every batch from the
        loop to a thread that hashes it and one that writes it: several hand-overs of the GIL a megabyte. In a thread
        of its own, the body's chunks never reach the engine's loop, and files in flight still hash on every core
        (3 x 200 MB on 2 cores: 1.03 s in the engine before, 0.89 s after; see docs/performance.md).
        """
        loop = asyncio.get_running_loop()
        stop = threading.Event()
        report_bytes = functools.partial(loop.call_soon_threadsafe, self.emit, EventKind.BYTES, file)
        callbacks = bool(self.callbacks)
        size = unreported = 0

        def absorb(chunk: bytes | memoryview) -> None:
            # Hashed and written before the next chunk is asked for: a blocking body may reuse its buffer.
            nonlocal size, unreported
            if stop.is_set():  # the download was cancelled meanwhile: nobody waits for the rest
                raise asyncio.CancelledError
            digest.update(chunk)
            writer.write_in_thread(chunk)
            size += len(chunk)
            if callbacks:
                unreported += len(chunk)
                if unreported >= _BATCH:
                    report_bytes(unreported)
                    unreported = 0

        def finish() -> int:
            if unreported:
                report_bytes(unreported)
            return size

        def receive_blocking() -> int:
            for chunk in body.blocking_chunks():
                absorb(chunk)
            return finish()

        async def receive() -> int:
            async for chunk in body.chunks():
                absorb(chunk)
            return finish()

        if self.pumps is None:
            self.pumps = concurrent.futures.ThreadPoolExecutor(self.concurrency, "binance-archive-body")
        own_loop = None
        if body.blocking:
            log.debug("%s: fetched again, hashed and written in a worker thread", file.key)
            done = self.pumps.submit(receive_blocking)
        else:
            log.debug("%s: received, hashed and written in a worker thread", file.key)
            own_loop = _OwnLoop(receive)
            done = self.pumps.submit(own_loop.run)
        try:
            return await asyncio.wrap_future(done)
        finally:
            # Cancelled while the thread reads: it stops at its next chunk; a read waiting on a stalled response
            # is cancelled on the thread's loop (releasing the response waits for a read under way: pyreqwest's),
            # and a blocking GET's socket is shut down when the response is released (leaving transport.get()).
            # The writer's abort copes with a write still under way.
            stop.set()
            if own_loop is not None:
                own_loop.cancel()

    async def _stream_large(self, file: ArchiveFile, body: Body, digest: Any, writer: Writer) -> int:
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
                if batched >= _BATCH:
                    if in_flight is not None:
                        await in_flight
                    in_flight = absorb(batch)
                    size += batched
                    self.emit(EventKind.BYTES, file, batched)
                    batch, batched = [], 0
            if in_flight is not None:
                await in_flight
                in_flight = None
            if batch:
                await absorb(batch)
                size += batched
                self.emit(EventKind.BYTES, file, batched)
        finally:
            if in_flight is not None:  # the body broke off: let the batch in flight end before the writer aborts
                in_flight.cancel()
                await asyncio.gather(in_flight, return_exceptions=True)
        return size

    async def _adopt_local(self, file: ArchiveFile, body: Body, sidecar: asyncio.Future[bytes]) -> tuple[str, int]:
        assert body.local_path is not None
        path = body.local_path
        size, actual = await asyncio.to_thread(_hash_file, path)
        self.emit(EventKind.BYTES, file, size)
        expected = await self._expected_digest(file, sidecar)
        if actual != expected:
            raise VerificationError(f"{file.key}: SHA-256 {actual} does not match the sidecar's {expected}")
        await self.storage.put_file(file.key, path)
        return expected, size


class _OwnLoop:
    """``work()`` run on a new event loop of a worker thread (:meth:`run`), cancellable from another thread."""

    def __init__(self, work: Callable[[], Awaitable[Any]]) -> None:
        self._work = work
        self._lock = threading.Lock()
        self._running: tuple[asyncio.AbstractEventLoop, asyncio.Task[Any]] | None = None
        self._cancelled = False

    def run(self) -> Any:
        async def main() -> Any:
            task = asyncio.current_task()
            assert task is not None
            with self._lock:
                if self._cancelled:
                    raise asyncio.CancelledError
                self._running = (asyncio.get_running_loop(), task)
            try:
                return await self._work()
            finally:
                with self._lock:
                    self._running = None

        return asyncio.run(main())

    def cancel(self) -> None:
        """Cancel ``work()`` at its next await (or before it starts); from any thread."""
        with self._lock:
            self._cancelled = True
            if self._running is not None:
                loop, task = self._running
                loop.call_soon_threadsafe(task.cancel)


def _safe_symbols(listed: Iterable[str]) -> tuple[str, ...]:
    """The listing's symbols that can name a folder; others (``..``, control characters) are skipped, not fatal.

    A listing is data from the network: one odd folder name must neither escape the storage root nor end the run.
    """
    safe = []
    for symbol in listed:
        try:
            if validate_symbol(symbol) == symbol.strip().upper():
                safe.append(symbol)
                continue
        except ConfigurationError as exc:
            log.warning("skipping a symbol of the listing: %s", exc)
            continue
        log.warning("skipping the symbol %r of the listing: the archive spells symbols in upper case", symbol)
    return tuple(safe)


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


def _hash_file(path: os.PathLike[str]) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()
