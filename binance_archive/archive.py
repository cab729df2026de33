"""The facade users hold: an :class:`Archive` joins one transport and one storage, and runs downloads, verification
and discovery over them.

The work is done by the engine's rooms (:mod:`binance_archive.engine`): ``download`` resolves the selections into
a plan (:mod:`~binance_archive.engine.resolve`) and runs it (:mod:`~binance_archive.engine.run`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
from collections.abc import AsyncIterator, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from binance_archive.backends import Storage, Transport, TransportContext
from binance_archive.common.options import MAX_LEVEL, check_levels
from binance_archive.core.catalog import DEFAULT_CATALOG, Catalog
from binance_archive.core.coverage import narrow
from binance_archive.core.datatypes import DataType
from binance_archive.core.files import ArchiveFile
from binance_archive.core.listing import ListedObject
from binance_archive.core.markets import Market
from binance_archive.core.periods import Period
from binance_archive.core.planning import Shard, parse_shard, utc_today, validate_selection
from binance_archive.core.selection import Selection
from binance_archive.engine.discovery import list_objects, list_symbols
from binance_archive.engine.resolve import Plan
from binance_archive.engine.retry import RetryPolicy
from binance_archive.engine.run import Detail, Run, first_leaf
from binance_archive.errors import ConfigurationError
from binance_archive.events import ProgressCallback
from binance_archive.plugins import BackendRegistry, make_plugin_manager
from binance_archive.report import Report

if TYPE_CHECKING:
    from binance_archive.tables.report import ConvertReport
    from binance_archive.verification import VerifyReport

__all__ = ["MAX_CONCURRENCY", "Archive"]

log = logging.getLogger(__name__)

MAX_CONCURRENCY = MAX_LEVEL
"""The most files in flight an Archive accepts (pinned, or as the ceiling)."""


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
        base_url: where the archive's files are (passed to the transport as ``base_url``; the HTTP transport's
            default is the ``BINANCE_ARCHIVE_BASE_URL`` environment variable where it is set).
        listing_url: the S3 listing of the archive (passed to the transport as ``listing_url``; the HTTP
            transport's default is ``BINANCE_ARCHIVE_LISTING_URL`` where it is set).
        concurrency: files in flight at once, pinned (default: found by measuring for HTTP, from 128 up to 256;
            512 for s5cmd, 32 for a mirror). With ``max_concurrency``: the level to start from.
        max_concurrency: find the number of files in flight by measuring, up to this many: it grows while
            throughput grows, and halves at once when the server turns tries away (429, 503, refused
            connections). The default for HTTP is 256; give ``concurrency`` alone to pin the level instead.
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
        max_concurrency: int | None = None,
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
        check_levels(concurrency, max_concurrency)  # before any backend is built
        self.storage = self.registry.storage(storage, storage_options)
        kind = transport if isinstance(transport, Transport) else self.registry.transport_class(transport)
        if max_concurrency is None and concurrency is None:
            max_concurrency = kind.default_max_concurrency
        if max_concurrency is None:
            self.concurrency = concurrency or kind.default_concurrency
        else:
            self.concurrency = concurrency or min(kind.default_concurrency, max_concurrency)
        self.max_concurrency = max_concurrency
        """The ceiling of the files in flight when the engine finds its own level; ``None`` when it is pinned at
        :attr:`concurrency`."""
        # What the transport is built with: settings flow into it now, never after.
        context = TransportContext(concurrency=max_concurrency or self.concurrency, local_root=self.storage.local_root)
        self.transport = self.registry.transport(transport, options, context)
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

    # -- tables --------------------------------------------------------------------------------------------

    async def convert(
        self,
        selection: Selection | Iterable[Selection] | None = None,
        *,
        to: str | os.PathLike[str] | Storage,
        to_options: Mapping[str, Any] | None = None,
        force: bool = False,
        concurrency: int = 2,
        progress: ProgressCallback | None = None,
    ) -> ConvertReport:
        """Convert the mirror's stored files into typed, hive-partitioned Parquet tables (needs pyarrow:
        ``pip install 'binance-archive[tables]'``); see docs/tables.md.

        Only verified files are converted (their stored bytes must match their stored sidecar), and only what
        changed since the last conversion (by SHA-256). A month's table comes from its monthly file where one is
        stored, from its daily files otherwise. Read the tables back with :func:`binance_archive.read_table`,
        DuckDB, polars or pandas.

        Args:
            selection: what to convert (markets, data types, symbols, intervals, dates); ``None``: everything the
                mirror holds. Periods are chosen by what is stored.
            to: where the tables go: a folder, a URL (``s3://bucket/prefix``) or a Storage instance.
            to_options: keyword options for that storage's constructor.
            force: convert again files whose tables are there already.
            concurrency: months converted at once.
            progress: a callable for an event per file (in addition to the archive's own).

        Raises:
            ConfigurationError: for an invalid selection or storage, a mirror folder that does not exist, or where
                pyarrow is missing, before any work.
        """
        from binance_archive.tables.convert import convert

        selections = (
            () if selection is None else ((selection,) if isinstance(selection, Selection) else tuple(selection))
        )
        if concurrency < 1:
            raise ConfigurationError(f"concurrency must be at least 1, got {concurrency}")
        root = self.storage.local_root
        if root is not None and not root.is_dir():
            raise ConfigurationError(f"the mirror folder {root} does not exist; give the folder downloads went to")
        tables = self.registry.storage(to, to_options)
        async with await self._session(), tables:
            return await convert(
                self.storage, tables, selections, catalog=self.catalog, concurrency=concurrency, force=force,
                progress=(self.progress, progress),
            )  # fmt: skip

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

        A mirror that holds no file of the archive under ``prefix`` gives a report with ``empty`` set (and a
        warning logged); :meth:`repair` fetches again what the report found corrupt, missing or unverified.

        Raises:
            ConfigurationError: for a local mirror folder that does not exist (a typo must not look like a sound
                mirror).
        """
        from binance_archive.verification import verify_storage  # only here: a download does not need it

        root = self.storage.local_root
        if root is not None and not root.is_dir():
            raise ConfigurationError(f"the mirror folder {root} does not exist; give the folder downloads went to")
        async with await self._session():
            try:
                return await verify_storage(
                    self.storage, prefix=prefix, selections=selections, today=today, catalog=self.catalog
                )
            except BaseExceptionGroup as errors:
                # A folder it may not read, say: raised as the StorageError it is, not as a task group's.
                raise first_leaf(errors) from None

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
        resolved: bool = False,
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
            resolved: the selections come from :meth:`resolve` (their symbols checked against the listing and
                filled in already), so the listing is not read again: the parts of a run spread over many machines
                pass it.

        A selection that can plan no file at all (a retired data type after its last date, a start in the future)
        is refused with a :class:`ConfigurationError` saying why, in one line ("bookTicker on futures/um ended
        2024-03-30; ..."); where only a part of the selections plans nothing (one of two data types, say), that
        part is left out with a warning logged (logger ``binance_archive.archive``) and the rest is downloaded.

        The storage is asked first whether it can be written (:meth:`Storage.check_writable`): when it cannot,
        files already stored are still skipped, but the run stops before fetching anything, with
        :attr:`Report.stopped` saying why.

        Raises:
            ConfigurationError: for an invalid selection, or one that can plan no file, before any I/O.
        """
        plan = self._plan(selection, today=today, shard=parse_shard(shard), fallback=fallback, check=not resolved)
        return await self._run(plan, force=force, refresh=refresh, detail=detail, progress=progress)

    async def resolve(
        self, selection: Selection | Iterable[Selection], *, today: dt.date | None = None
    ) -> tuple[Selection, ...]:
        """The selections with every symbol and start date they leave out filled in from the archive's listing, the
        series that share their dates merged: what a run spread over many machines plans from, so that the listing
        is read once rather than by every part (:mod:`binance_archive.integrations.dask` does this).

        Raises:
            ConfigurationError: as :meth:`download` does, before any I/O.
        """
        plan = self._plan(selection, today=today, shard=None, fallback=True, check=True)
        async with await self._session():
            return await plan.resolved()

    def _plan(
        self,
        selection: Selection | Iterable[Selection],
        *,
        today: dt.date | None,
        shard: Shard | None,
        fallback: bool,
        check: bool,
    ) -> Plan:
        """The plan of ``selection``: each validated, the parts that can plan no file left out (said in the log)."""
        selections = (selection,) if isinstance(selection, Selection) else tuple(selection)
        for one in selections:
            validate_selection(one, self.catalog)
        today = today or utc_today()
        narrowed = narrow(selections, today=today, catalog=self.catalog).check()
        for reason in narrowed.reasons:
            log.warning("left out, as it plans no file: %s", reason)
        return Plan(
            selections=narrowed.selections,
            today=today,
            shard=shard,
            transport=self.transport,
            catalog=self.catalog,
            retry=self.retry,
            fallback=fallback,
            storage=self.storage,
            check=check,
        )

    async def repair(
        self,
        found: VerifyReport | Iterable[str],
        *,
        progress: ProgressCallback | None = None,
        detail: Detail = "all",
    ) -> Report:
        """Fetch again, verified, exactly the files a :meth:`verify` found corrupt, missing or unverified.

        A plain re-run of the download skips a corrupt file (its sidecar is there, so it counts as stored), and
        ``refresh`` skips it too (the archive's sidecar has not changed); ``force`` would fetch the whole
        selection. This fetches those files only, each replaced atomically (its sidecar taken away first, stored
        again last). Orphan files are left as they are.

        Args:
            found: a :class:`~binance_archive.verification.VerifyReport` (its
                :attr:`~binance_archive.verification.VerifyReport.repairable` keys), or keys of the archive.
            progress: a callable for progress events (in addition to the archive's own).
            detail: as for :meth:`download`.

        Returns:
            The report of the download of those files (nothing planned: an empty report).

        Raises:
            ConfigurationError: for a key that is not one of the archive's.
        """
        from binance_archive.verification import VerifyReport

        keys = found.repairable if isinstance(found, VerifyReport) else list(found)
        files = tuple(ArchiveFile.from_key(key) for key in dict.fromkeys(keys))
        plan = Plan(
            selections=(),
            files=files,
            today=utc_today(),
            shard=None,
            transport=self.transport,
            catalog=self.catalog,
            retry=self.retry,
            fallback=False,  # exactly those files: a monthly file the archive lost is reported, not replaced
        )
        return await self._run(plan, force=True, refresh=False, detail=detail, progress=progress)

    async def _run(
        self, plan: Plan, *, force: bool, refresh: bool, detail: Detail, progress: ProgressCallback | None
    ) -> Report:
        run = Run(
            self.transport,
            self.storage,
            retry=self.retry,
            concurrency=self.concurrency,
            max_concurrency=self.max_concurrency,
            force=force,
            refresh=refresh,
            detail=detail,
            callbacks=(self.progress, progress),
        )
        async with await self._session():
            await run.execute(plan)
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


class _Opened:
    """``async with await archive._session()``: keeps the backends open for one call."""

    def __init__(self, archive: Archive) -> None:
        self._archive = archive

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        await self._archive._close()
