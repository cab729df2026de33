"""Files of every market and data type, as the fake archive writes them: with and without header rows, in
milliseconds and in microseconds, with the real files' duplicates and disorder."""

from __future__ import annotations

import asyncio
import datetime as dt
import zipfile
from pathlib import Path
from typing import Any

from binance_archive import Archive, ArchiveFile, Selection
from binance_archive.core import DEFAULT_CATALOG, DataType, Market, Period
from binance_archive.tables import ConvertReport
from binance_archive.testing import build_archive, key_path
from binance_archive.testing.content import HEADER_SINCE, MICROSECONDS_SINCE

MAX_ROWS = 300


def _symbol(market: Market, data_type: DataType) -> str:
    if data_type is DataType.BVOL_INDEX:
        return "BTCBVOLUSDT"
    if market is Market.OPTION:
        return "BTC-231027-30000-C"
    return "BTCUSD_PERP" if market is Market.FUTURES_CM else "BTCUSDT"


def every_kind() -> list[ArchiveFile]:
    """A file of every market and data type of the catalog; futures klines, trades and aggTrades from before
    their header rows and after, spot from its milliseconds and from its microseconds."""
    files = []
    for entry in DEFAULT_CATALOG.entries:
        period = Period.DAILY if Period.DAILY in entry.periods else Period.MONTHLY
        interval = entry.intervals[period][2] if entry.data_type.has_interval else None  # 3m or 1m: many rows
        if entry.market is Market.SPOT:
            days = [dt.date(2024, 12, 30), MICROSECONDS_SINCE + dt.timedelta(days=3)]
        elif entry.market.is_futures and (
            entry.data_type.has_interval or entry.data_type in (DataType.TRADES, DataType.AGG_TRADES)
        ):
            days = [HEADER_SINCE - dt.timedelta(days=40), HEADER_SINCE + dt.timedelta(days=3)]
        else:
            days = [entry.last_date or max(entry.first_date or dt.date(2023, 6, 1), dt.date(2023, 6, 1))]
        for day in days:
            if period is Period.MONTHLY:
                day = day.replace(day=1)
            files.append(
                ArchiveFile(
                    entry.market, entry.data_type, _symbol(entry.market, entry.data_type), period, day, interval
                )
            )
    return files


def build(root: Path, files: list[ArchiveFile], **kwargs: Any) -> Path:
    build_archive(root, files, max_rows=kwargs.pop("max_rows", MAX_ROWS), **kwargs)
    return root


def csv_text(root: Path, file: ArchiveFile) -> str:
    with zipfile.ZipFile(key_path(root, file.key)) as archive:
        return archive.read(archive.namelist()[0]).decode()


def convert(mirror: Path, tables: Path, selection: Selection | None = None, **options: Any) -> ConvertReport:
    return asyncio.run(Archive(mirror, entry_points=False).convert(selection, to=tables, **options))
