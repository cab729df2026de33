"""One-call conveniences: ``await binance_archive.download(...)`` and ``await binance_archive.verify(...)``."""

from __future__ import annotations

import os
from typing import Any

from binance_archive.archive import Archive
from binance_archive.backends import Storage
from binance_archive.core.selection import Selection
from binance_archive.report import Report
from binance_archive.tables.report import ConvertReport
from binance_archive.verification import VerifyReport

__all__ = ["convert", "download", "verify"]


async def download(
    selection: Selection, to: str | os.PathLike[str] | Storage = "binance-data", **options: Any
) -> Report:
    """Mirror ``selection`` into ``to``. Options are :class:`Archive`'s and :meth:`Archive.download`'s.

    >>> report = await binance_archive.download(Selection(...), "./binance-data", concurrency=32)
    """
    archive_keys = {
        "transport", "transport_options", "storage_options", "base_url", "listing_url", "concurrency",
        "max_concurrency", "retry", "catalog", "progress", "plugins", "entry_points",
    }  # fmt: skip
    archive = Archive(to, **{k: v for k, v in options.items() if k in archive_keys})
    return await archive.download(selection, **{k: v for k, v in options.items() if k not in archive_keys})


async def verify(location: str | os.PathLike[str] | Storage, **options: Any) -> VerifyReport:
    """Re-hash the mirror at ``location`` against its stored sidecars (see :meth:`Archive.verify`).

    ``storage_options`` go to the storage; the other options to :meth:`Archive.verify`.
    """
    archive = Archive(location, storage_options=options.pop("storage_options", None))
    return await archive.verify(**options)


async def convert(
    mirror: str | os.PathLike[str] | Storage,
    to: str | os.PathLike[str] | Storage,
    selection: Selection | None = None,
    **options: Any,
) -> ConvertReport:
    """Convert the mirror at ``mirror`` into tables at ``to`` (see :meth:`Archive.convert`).

    ``storage_options`` go to the mirror's storage; the other options to :meth:`Archive.convert`.
    """
    archive = Archive(mirror, storage_options=options.pop("storage_options", None))
    return await archive.convert(selection, to=to, **options)
