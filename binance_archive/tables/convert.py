"""A conversion run: the mirror's stored zips made tables, a month of one series at a time, only what changed.

For each month (:mod:`.sources`), each source file's stored sidecar gives the digest its table must come from; the
month's manifest (:mod:`.manifest`) says which tables are there already from those bytes. The rest is converted in
a worker thread (:mod:`.reader`, :mod:`.writer`) into a temporary Parquet file, published under its final key by
the tables' storage (a rename on disk, a whole object on S3), and entered in the manifest. A monthly file's table
replaces its month's daily tables; table files the manifest does not know (an interrupted run's) are removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from binance_archive.backends import Storage
from binance_archive.common.staging import make_temp_folder, release_temp_folder
from binance_archive.core.catalog import DEFAULT_CATALOG, Catalog
from binance_archive.core.checksum import MAX_SIDECAR_BYTES, parse_checksum
from binance_archive.core.files import ArchiveFile
from binance_archive.core.planning import validate_selection
from binance_archive.core.schemas import schema_for
from binance_archive.core.selection import Selection
from binance_archive.errors import StorageError, VerificationError
from binance_archive.events import Emitter, Event, EventKind
from binance_archive.tables.arrow import arrow_schema, import_pyarrow
from binance_archive.tables.layout import SUFFIX, month_folder, table_key, table_name
from binance_archive.tables.manifest import Manifest, Source
from binance_archive.tables.reader import ConversionError, FileFacts, OutOfOrder, read_batches
from binance_archive.tables.report import ConvertProblem, ConvertReport
from binance_archive.tables.sources import Month, months
from binance_archive.tables.writer import write_parquet

__all__ = ["Converter", "convert"]

log = logging.getLogger(__name__)


class Converter:
    """Converts a mirror's stored files into tables.

    Args:
        mirror: the storage holding the mirror (the archive's layout: ``data/...``).
        tables: the storage the tables go to.
        concurrency: months converted at once (a file each; pyarrow parses a file on several threads).
        force: convert again files whose tables are there already.
        progress: callables receiving an :class:`~binance_archive.events.Event` per file (``bytes``: its CSV's).
    """

    def __init__(
        self,
        mirror: Storage,
        tables: Storage,
        *,
        concurrency: int = 2,
        force: bool = False,
        progress: tuple[Callable[[Event], None] | None, ...] = (),
    ) -> None:
        self._mirror = mirror
        self._tables = tables
        self._concurrency = concurrency
        self._force = force
        self._emit = Emitter(progress)
        self.report = ConvertReport(tables.location)
        self._staging: Path | None = None
        # Staged files are numbered: the four kline types' files share their names (the type is in the folder only),
        # and months of different types are converted at once.
        self._staged = itertools.count()
        self._slots = asyncio.Semaphore(concurrency)

    async def run(self, months: AsyncIterator[Month]) -> ConvertReport:
        """Convert every month of ``months``; returns the report."""
        import_pyarrow()
        started = time.perf_counter()
        self._staging = await asyncio.to_thread(self._make_staging)
        queue: asyncio.Queue[Month | None] = asyncio.Queue(maxsize=2 * self._concurrency)

        async def produce() -> None:
            async for month in months:
                await queue.put(month)
            for _ in range(self._concurrency):
                await queue.put(None)

        async def work() -> None:
            while (month := await queue.get()) is not None:
                await self._month(month)

        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(produce())
                for _ in range(self._concurrency):
                    group.create_task(work())
        except BaseExceptionGroup as errors:
            first = errors.exceptions[0]
            while isinstance(first, BaseExceptionGroup):
                first = first.exceptions[0]
            raise first from None
        finally:
            staging, self._staging = self._staging, None
            if staging is not None:
                await asyncio.to_thread(_remove_staging, staging, self._tables.local_root is not None)
            self.report.duration = time.perf_counter() - started
            log.info("conversion finished: %s", self.report.summary())
        return self.report

    def _make_staging(self) -> Path:
        """Where table files are written before they are published: beside the tables when they are local (so that
        publishing is a rename), else in the system's temporary folder."""
        root = self._tables.local_root
        if root is not None:
            return Path(make_temp_folder(root, "tables"))
        return Path(tempfile.mkdtemp(prefix="binance-archive-tables-"))

    async def _month(self, month: Month) -> None:
        if not month.files:
            return
        folder = month_folder(month.files[0])
        manifest = await Manifest.load(self._tables, folder)
        if not month.monthly and any("/monthly/" in source.key for source in manifest.files.values()):
            # The month's table came from its monthly file (since removed from the mirror): daily tables beside it
            # would hold every row twice.
            for file in month.files:
                self.report.skipped += 1
                self._emit(EventKind.SKIPPED, file)
            return
        # The month's files are converted at once (the run's slots bound how many); the manifest is saved after
        # every table, so a crash loses at most the files in progress, not the month's.
        for done in asyncio.as_completed([self._file(file, manifest) for file in month.files]):
            if await done:
                await manifest.save(self._tables)
        wanted = {table_name(f) for f in month.files}
        replaced = [name for name in manifest.files if name not in wanted] if month.monthly else []
        if replaced and all(name in manifest.files for name in wanted):
            # The monthly file's table stands for the whole month: the daily tables go once it is there.
            for name in replaced:
                del manifest.files[name]
            await manifest.save(self._tables)
        await self._tidy(folder, manifest)

    async def _file(self, file: ArchiveFile, manifest: Manifest) -> bool:
        """Convert ``file`` unless its table is there from the same bytes; whether the manifest changed."""
        self._emit(EventKind.PLANNED, file)
        name = table_name(file)
        try:
            sidecar = await self._mirror.read_bytes(file.checksum_key, max_size=MAX_SIDECAR_BYTES)
            digest = parse_checksum(sidecar, filename=file.filename)
        except (StorageError, VerificationError) as exc:
            self._fail(file, ConversionError(file.key, f"its stored sidecar cannot be read: {exc}"))
            return False
        known = manifest.files.get(name)
        same = not self._force and known is not None and known.key == file.key and known.sha256 == digest
        if same and await self._tables.stat(f"{manifest.folder}/{name}") is not None:
            self.report.skipped += 1
            self._emit(EventKind.SKIPPED, file)
            return False
        try:
            async with self._slots:
                self._emit(EventKind.STARTED, file)
                facts = await self._convert(file, digest)
        except ConversionError as exc:
            self._fail(file, exc)
            return False
        manifest.files[name] = Source(file.key, digest, facts.rows)
        self.report.converted += 1
        self.report.rows += facts.rows
        self.report.duplicates += facts.duplicates
        self.report.csv_bytes += facts.csv_bytes
        self._emit(EventKind.BYTES, file, facts.csv_bytes)  # a progress line counts BYTES events
        self._emit(EventKind.DONE, file, facts.csv_bytes)
        return True

    def _fail(self, file: ArchiveFile, exc: ConversionError) -> None:
        log.warning("not converted: %s", exc)
        self.report.failed += 1
        self.report.problems.append(ConvertProblem(exc.key, exc.reason, exc.line))
        self._emit(EventKind.FAILED, file, error=str(exc))

    async def _convert(self, file: ArchiveFile, digest: str) -> FileFacts:
        """The table of ``file`` written and published; raises ConversionError for a file that cannot be one."""
        assert self._staging is not None
        staging = self._staging
        local = self._mirror.local_root
        source = str(local / file.key) if local is not None else await self._fetch(file, staging)
        # Not named *.parquet: a reader's glob over the tables (``**/*.parquet``) must not find a table in progress.
        target = staging / f"{next(self._staged)}-{table_name(file)}.part"
        try:
            facts = await asyncio.to_thread(_write_table, source, file, digest, str(target))
            try:
                await self._tables.put_file(table_key(file), target)
            except StorageError as exc:
                raise ConversionError(file.key, f"its table cannot be stored: {exc}") from None
            return facts
        finally:
            with contextlib.suppress(FileNotFoundError):
                target.unlink()
            if local is None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(source)

    async def _fetch(self, file: ArchiveFile, staging: Path) -> str:
        """A local copy of a zip of a mirror that is not on the local file system (a zip is read from its end)."""
        path = staging / f"{next(self._staged)}-source-{file.filename}"
        try:
            with open(path, "wb") as handle:  # noqa: ASYNC230 - chunks written as they come, a small block each
                async for chunk in self._mirror.read(file.key):
                    await asyncio.to_thread(handle.write, chunk)
        except (StorageError, OSError) as exc:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            raise ConversionError(file.key, f"cannot read it from the mirror: {exc}") from None
        return str(path)

    async def _tidy(self, folder: str, manifest: Manifest) -> None:
        """Remove the month's table files the manifest does not list: daily tables a monthly one replaced, and
        files an interrupted run published without entering them."""
        try:
            present = await self._tables.sizes(folder)
        except StorageError as exc:
            log.warning("cannot list %s to tidy it: %s", folder, exc)
            return
        for name in present:
            if name.endswith(SUFFIX) and name not in manifest.files:
                await self._tables.delete(f"{folder}/{name}")
                self.report.replaced += 1


def _write_table(source: str, file: ArchiveFile, digest: str, target: str) -> FileFacts:
    """Read the zip at ``source`` and write its table to ``target`` (in a worker thread)."""
    schema = schema_for(file.market, file.data_type)
    metadata = {"binance_archive.source": file.key, "binance_archive.sha256": digest}
    table_schema = arrow_schema(schema, metadata)
    facts = FileFacts()
    try:
        write_parquet(read_batches(source, file, schema, digest, facts), target, table_schema)
    except OutOfOrder:
        log.debug("%s: rows out of order, read again whole and sorted", file.key)
        facts = FileFacts()
        write_parquet(read_batches(source, file, schema, digest, facts, whole=True), target, table_schema)
    except OSError as exc:
        raise ConversionError(file.key, f"cannot write its table: {exc.strerror or exc}") from None
    return facts


def _remove_staging(path: Path, named_as_temporary: bool) -> None:
    if named_as_temporary:
        release_temp_folder(path)
    else:
        shutil.rmtree(path, ignore_errors=True)


async def convert(
    mirror: Storage,
    tables: Storage,
    selections: tuple[Selection, ...] = (),
    *,
    catalog: Catalog = DEFAULT_CATALOG,
    concurrency: int = 2,
    force: bool = False,
    progress: tuple[Callable[[Event], None] | None, ...] = (),
) -> ConvertReport:
    """Convert the stored files of ``mirror`` that ``selections`` cover (with none: all of them) into tables in
    ``tables``; both storages open. Returns the report; a file that cannot be converted is named in it.

    Raises:
        ConfigurationError: for an invalid selection, or where pyarrow is missing, before any work.
    """
    import_pyarrow()
    for selection in selections:
        validate_selection(selection, catalog)
    converter = Converter(mirror, tables, concurrency=concurrency, force=force, progress=progress)
    return await converter.run(months(mirror, selections, catalog=catalog))
