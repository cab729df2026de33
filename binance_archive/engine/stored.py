"""What is stored already: one file asked about (:func:`stored_zip`), or, for a re-run, folder by folder without
two stats per file (:class:`StoredIndex`).

A resumed download mostly meets files it already has. Asking the storage about each one costs two
``stat`` calls (a system call each locally, a HEAD request each on S3). The plan walks one folder (a series:
market, data type, symbol, interval) at a time, so once a folder has shown a few planned files, the index asks the
storage for the sizes of everything in it at once (:meth:`Storage.sizes`: one directory scan, or one listing
page per 1,000 objects) and answers the rest of that folder from memory.

A folder is scanned only after :data:`SCAN_AFTER` of its files were planned, so a plan that names one file in
each of many large folders still costs a stat per file, not a scan. Only a few folders are kept.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Iterable

from binance_archive.backends import Storage, StoredObject
from binance_archive.core.datatypes import DataType
from binance_archive.core.files import CHECKSUM_SUFFIX, ArchiveFile
from binance_archive.core.markets import Market
from binance_archive.core.periods import Period
from binance_archive.errors import StorageError

__all__ = ["SCAN_AFTER", "UNSCANNED", "StoredIndex", "stored_zip", "stores_symbol"]

log = logging.getLogger(__name__)

SCAN_AFTER = 8
"""Files of one folder checked one by one before the folder is scanned as a whole."""
_FOLDERS_KEPT = 4
UNSCANNED = -1
"""What :meth:`StoredIndex.peek` answers for a file whose folder it has not scanned (never a size)."""


async def stored_zip(storage: Storage, file: ArchiveFile) -> StoredObject | None:
    """The zip of a stored file: one whose sidecar (written last, as the commit marker) and non-empty zip are."""
    if await storage.stat(file.checksum_key) is None:
        return None
    stat = await storage.stat(file.key)
    if stat is not None and stat.size > 0:
        return stat
    # A sidecar without a (non-empty) zip beside it: the zip was lost. Unmark the file before its zip is written
    # again, or a crash between the new zip and its sidecar would pair the new bytes with the old sidecar (a
    # CORRUPT file under its final name if Binance replaced the file meanwhile).
    await storage.delete(file.checksum_key)
    return None


async def stores_symbol(
    storage: Storage, market: Market, data_type: DataType, symbol: str, periods: Iterable[Period]
) -> bool:
    """Whether ``storage`` holds any object of ``symbol``'s ``data_type`` in ``market`` (in one of ``periods``): then
    the archive had files of it, and a re-run need not ask the listing (it costs no request at all)."""
    for period in periods:
        try:
            async for _obj in storage.list(f"data/{market.value}/{period.value}/{data_type.value}/{symbol}/"):
                return True
        except StorageError as exc:
            log.debug("cannot look for %s in %s: %s", symbol, storage.location, exc)
    return False


class StoredIndex:
    """Answers "is this file stored and complete?" from folder scans, where it can.

    :meth:`lookup` returns the stored zip's size for a complete file (the zip is there, not empty, and its
    sidecar, written last as the commit marker, is beside it), ``0`` for a file that is not stored, and ``None``
    when the index does not know: the caller then asks the storage about that one file.
    """

    def __init__(self, storage: Storage, *, scan_after: int = SCAN_AFTER) -> None:
        self._storage = storage
        self._scan_after = scan_after
        # Per folder: the sizes by name, or None for a folder that could not be scanned.
        self._folders: collections.OrderedDict[str, dict[str, int] | None] = collections.OrderedDict()
        self._counting = ""  # the folder whose planned files are being counted
        self._count = 0
        self._last_folder = ""  # the folder peek() answered last, and its sizes (most files follow their folder)
        self._last_sizes: dict[str, int] | None = None

    def peek(self, file: ArchiveFile) -> int | None:
        """:meth:`lookup` without I/O: the answer when ``file``'s folder is scanned already, else :data:`UNSCANNED`.

        The producer of a resumed run asks this of every planned file; only the first files of each folder then
        cost an ``await`` (and the scan), the rest a couple of dictionary look-ups.
        """
        folder, _, name = file.key.rpartition("/")
        if folder != self._last_folder:
            if folder not in self._folders:
                return UNSCANNED
            self._last_folder, self._last_sizes = folder, self._folders[folder]
        sizes = self._last_sizes
        if sizes is None:  # this folder could not be scanned: one file at a time
            return None
        if name + CHECKSUM_SUFFIX not in sizes:
            return 0
        # A sidecar without a (non-empty) zip is the engine's to repair (it unmarks the file): not known here.
        size = sizes.get(name)
        return size if size is not None and size > 0 else None

    async def lookup(self, file: ArchiveFile) -> int | None:
        known = self.peek(file)
        if known != UNSCANNED:
            return known
        folder = file.key.rpartition("/")[0]
        if not self._due(folder):
            return None
        await self._scan(folder)
        return self.peek(file)

    def stored(self, file: ArchiveFile, size: int, sidecar_size: int) -> None:
        """Note a file this run stored, should the plan name it again (overlapping selections)."""
        folder, _, name = file.key.rpartition("/")
        sizes = self._folders.get(folder)
        if sizes is not None:
            sizes[name] = size
            sizes[name + CHECKSUM_SUFFIX] = sidecar_size

    def _due(self, folder: str) -> bool:
        """Whether ``folder`` has now shown enough planned files to be worth a scan."""
        if folder != self._counting:
            self._counting, self._count = folder, 0
        self._count += 1
        return self._count > self._scan_after

    async def _scan(self, folder: str) -> dict[str, int] | None:
        sizes: dict[str, int] | None
        try:
            sizes = await self._storage.sizes(folder)
        except StorageError as exc:
            # Each file is then checked on its own, and reports its own error if the storage keeps failing.
            log.debug("cannot scan %s, checking its files one by one: %s", folder, exc)
            sizes = None
        self._folders[folder] = sizes
        while len(self._folders) > _FOLDERS_KEPT:
            if self._folders.popitem(last=False)[0] == self._last_folder:
                self._last_folder = ""
        return sizes
