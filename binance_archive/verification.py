"""Verifying a stored mirror: every zip re-hashed against its stored sidecar, and what does not belong named.

Works on any storage (it reads through the :class:`~binance_archive.backends.Storage` contract), so a
mirror on S3 is checked the same way as one on disk.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import hashlib
import logging
import time
from collections.abc import Iterable
from typing import Any

import attrs

from binance_archive.backends import Storage, StoredObject
from binance_archive.core.catalog import DEFAULT_CATALOG, Catalog
from binance_archive.core.checksum import MAX_SIDECAR_BYTES, parse_checksum
from binance_archive.core.files import CHECKSUM_SUFFIX, ArchiveFile
from binance_archive.core.planning import plan
from binance_archive.core.selection import Selection
from binance_archive.errors import InvalidKeyError, StorageError, VerificationError
from binance_archive.report import JsonReport

__all__ = ["REPAIRABLE", "Problem", "ProblemKind", "VerifyReport", "verify_storage"]

log = logging.getLogger(__name__)


class ProblemKind(enum.Enum):
    """What is wrong with a stored key."""

    CORRUPT = "corrupt"
    """The zip's SHA-256 differs from its stored sidecar, or the sidecar is unreadable."""
    MISSING = "missing"
    """A sidecar whose zip is absent, or a file a selection expects that is not stored."""
    UNVERIFIED = "unverified"
    """A zip without its sidecar: its download never completed (a re-run fetches it again)."""
    ORPHAN = "orphan"
    """Not a key of the archive: a temporary file left by a killed process, or a stray file."""


REPAIRABLE = frozenset({ProblemKind.CORRUPT, ProblemKind.MISSING, ProblemKind.UNVERIFIED})
"""The kinds of problem :meth:`binance_archive.Archive.repair` fixes by fetching the file again."""


@attrs.frozen
class Problem:
    key: str
    kind: ProblemKind
    detail: str = ""


@attrs.define
class VerifyReport(JsonReport):
    """What :func:`verify_storage` found. ``ok`` is true when there is no problem at all."""

    location: str
    checked: int = 0
    """Zips re-hashed and found equal to their sidecars."""
    bytes: int = 0
    duration: float = 0.0
    problems: list[Problem] = attrs.Factory(list)
    empty: bool = False
    """No file of the archive was found (none verified, none corrupt, missing or unverified): often a wrong path
    or prefix rather than an empty mirror, so the command refuses it; ``ok`` alone would not tell."""

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def repairable(self) -> list[str]:
        """The keys of the files :meth:`binance_archive.Archive.repair` fetches again: the corrupt, missing and
        unverified ones (orphans are not files of the archive, and are left alone)."""
        return sorted({p.key for p in self.problems if p.kind in REPAIRABLE})

    def count(self, kind: ProblemKind) -> int:
        return sum(1 for p in self.problems if p.kind is kind)

    def summary(self) -> str:
        counts = ", ".join(f"{self.count(k)} {k.value}" for k in ProblemKind)
        return f"{self.location}: {self.checked} files verified ({self.bytes / 1e6:.1f} MB); {counts}"

    def to_dict(self) -> dict[str, Any]:
        import cattrs  # here, not at the top: every download imports this module, few ever serialise a report

        data: dict[str, Any] = cattrs.unstructure(self)
        data["ok"] = self.ok
        return data


async def verify_storage(
    storage: Storage,
    *,
    prefix: str = "data/",
    selections: Iterable[Selection] = (),
    today: dt.date | None = None,
    catalog: Catalog = DEFAULT_CATALOG,
    concurrency: int = 8,
) -> VerifyReport:
    """Re-hash every stored zip under ``prefix`` against its stored sidecar.

    Most callers want :meth:`binance_archive.Archive.verify` or :func:`binance_archive.verify`, which open
    the storage around this.

    A storage holding no file of the archive under ``prefix`` gives a report with :attr:`VerifyReport.empty` set
    (and a warning logged): it has no problem, but nothing was verified either; the command calls it an error.

    Args:
        storage: the mirror to check (already open).
        prefix: only keys under this prefix.
        selections: also report as missing every file these selections plan that is not stored.
        today: the date the selections are planned for.
        catalog: the catalog the selections are planned against.
        concurrency: zips hashed at once.
    """
    report = VerifyReport(storage.location)
    started = time.perf_counter()
    # One listing pass, grouped by folder: a zip and its sidecar sit side by side, so a folder's
    # worth of keys is all that is held in memory at once.
    semaphore = asyncio.Semaphore(concurrency)
    async with asyncio.TaskGroup() as group:
        folder: str | None = None
        batch: dict[str, StoredObject] = {}
        async for obj in storage.list(prefix):
            parent = obj.key.rsplit("/", 1)[0]
            if parent != folder and batch:
                await _check_folder(storage, batch, report, group, semaphore)
                batch = {}
            folder = parent
            batch[obj.key] = obj
        if batch:
            await _check_folder(storage, batch, report, group, semaphore)
    report.empty = not report.checked and all(p.kind is ProblemKind.ORPHAN for p in report.problems)
    if report.empty:
        # Nothing of the archive there at all: a typo in the path or the prefix, more often than an empty mirror.
        log.warning("%s holds no file of the archive under %r: nothing was verified", storage.location, prefix)
    for path in await asyncio.to_thread(lambda: list(storage.temporary_files())):
        report.problems.append(Problem(path, ProblemKind.ORPHAN, "temporary file of an interrupted write"))
    for selection in selections:
        for file in plan(selection, today=today, catalog=catalog):
            if await storage.stat(file.checksum_key) is None:
                report.problems.append(Problem(file.key, ProblemKind.MISSING, "planned but not stored"))
    report.problems.sort(key=lambda p: (p.kind.value, p.key))
    report.duration = time.perf_counter() - started
    log.info("%s", report.summary())
    return report


async def _check_folder(
    storage: Storage,
    objects: dict[str, StoredObject],
    report: VerifyReport,
    group: asyncio.TaskGroup,
    semaphore: asyncio.Semaphore,
) -> None:
    for key, obj in objects.items():
        if key.endswith(CHECKSUM_SUFFIX):
            zip_key = key[: -len(CHECKSUM_SUFFIX)]
            if not _is_archive_key(zip_key):
                report.problems.append(Problem(key, ProblemKind.ORPHAN, "not a key of the archive"))
            elif zip_key not in objects:
                report.problems.append(Problem(zip_key, ProblemKind.MISSING, "its sidecar is stored, the zip is not"))
            continue
        if not _is_archive_key(key):
            report.problems.append(Problem(key, ProblemKind.ORPHAN, "not a key of the archive"))
        elif key + CHECKSUM_SUFFIX not in objects:
            report.problems.append(Problem(key, ProblemKind.UNVERIFIED, "no sidecar: the download never completed"))
        else:
            # Take the slot before creating the task, so a mirror of millions of files never has more
            # than `concurrency` checks (and tasks) alive at once.
            await semaphore.acquire()
            group.create_task(_check_one(storage, obj, report, semaphore))


def _is_archive_key(key: str) -> bool:
    try:
        ArchiveFile.from_key(key)
    except InvalidKeyError:
        return False
    return True


async def _check_one(storage: Storage, obj: StoredObject, report: VerifyReport, semaphore: asyncio.Semaphore) -> None:
    try:
        try:
            sidecar = await storage.read_bytes(obj.key + CHECKSUM_SUFFIX, max_size=MAX_SIDECAR_BYTES)
            expected = parse_checksum(sidecar, filename=obj.key.rsplit("/", 1)[1])
            digest = hashlib.sha256()
            size = 0
            async for chunk in storage.read(obj.key):
                digest.update(chunk)
                size += len(chunk)
        except (VerificationError, StorageError) as exc:
            report.problems.append(Problem(obj.key, ProblemKind.CORRUPT, str(exc)))
            return
    finally:
        semaphore.release()
    if digest.hexdigest() != expected:
        report.problems.append(
            Problem(obj.key, ProblemKind.CORRUPT, f"SHA-256 {digest.hexdigest()} differs from the sidecar's {expected}")
        )
    else:
        report.checked += 1
        report.bytes += size
