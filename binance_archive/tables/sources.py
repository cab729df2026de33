"""What a conversion reads: the mirror's stored files, a month of one series at a time.

A month's table comes from its monthly file where the mirror stores one, from its daily files otherwise, never from
both. A file counts as stored when its sidecar is there (written last, as the download's commit marker). Series
come from the selections (their symbols, or the ones the mirror holds) or, with none, from the whole mirror.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator, Iterable

import attrs

from binance_archive.backends import Storage
from binance_archive.core.catalog import DEFAULT_CATALOG, Catalog
from binance_archive.core.datatypes import DataType
from binance_archive.core.files import CHECKSUM_SUFFIX, ArchiveFile
from binance_archive.core.intervals import Interval
from binance_archive.core.markets import Market
from binance_archive.core.periods import Period
from binance_archive.core.selection import Selection
from binance_archive.errors import InvalidKeyError

__all__ = ["Month", "Series", "months"]

log = logging.getLogger(__name__)


@attrs.frozen(order=True)
class Series:
    """One series of the archive: a market, a data type, a symbol and (for klines) an interval."""

    market: Market = attrs.field(order=lambda m: m.value)
    data_type: DataType = attrs.field(order=lambda t: t.value)
    symbol: str
    interval: Interval | None = attrs.field(order=lambda i: "" if i is None else i.value)

    def folder(self, period: Period) -> str:
        probe = ArchiveFile(self.market, self.data_type, self.symbol, period, dt.date(2000, 1, 1), self.interval)
        return probe.folder + "/"


@attrs.frozen
class Month:
    """The stored files of one series' month: its monthly file, or else its daily files (in date order)."""

    series: Series
    month: dt.date
    files: tuple[ArchiveFile, ...]

    @property
    def monthly(self) -> bool:
        return bool(self.files) and self.files[0].period is Period.MONTHLY


async def months(
    mirror: Storage, selections: Iterable[Selection] = (), *, catalog: Catalog = DEFAULT_CATALOG
) -> AsyncIterator[Month]:
    """Every month of stored files the selections cover (with none: every one in the mirror), a series at a time."""
    wanted = tuple(selections)
    for series, first, last in await _series(mirror, wanted, catalog):
        stored = await _stored(mirror, series)
        by_month: dict[dt.date, list[ArchiveFile]] = {}
        for file in stored:
            month = file.date.replace(day=1)
            if (first is None or month >= first.replace(day=1)) and (last is None or month <= last):
                by_month.setdefault(month, []).append(file)
        for month, files in sorted(by_month.items()):
            monthly = [f for f in files if f.period is Period.MONTHLY]
            chosen = monthly[:1] if monthly else sorted(f for f in files if f.period is Period.DAILY)
            yield Month(series, month, tuple(chosen))


async def _series(
    mirror: Storage, selections: tuple[Selection, ...], catalog: Catalog
) -> list[tuple[Series, dt.date | None, dt.date | None]]:
    """The series to convert, each with the date range the selection asks for (None: unbounded)."""
    found: dict[Series, tuple[dt.date | None, dt.date | None]] = {}
    if not selections:
        for entry in catalog.entries:
            for series in await _series_in_mirror(mirror, entry.market, entry.data_type, entry.periods):
                found[series] = (None, None)
        return [(s, *found[s]) for s in sorted(found)]
    for selection in selections:
        for market in selection.markets:
            for data_type in selection.data_types:
                entry = catalog.lookup(market, data_type)
                intervals = selection.intervals_for(data_type)
                if selection.symbols:
                    candidates = [Series(market, data_type, s, i) for s in selection.symbols for i in intervals]
                else:
                    in_mirror = await _series_in_mirror(mirror, market, data_type, entry.periods)
                    candidates = [s for s in in_mirror if s.interval in intervals]
                for series in candidates:
                    found[series] = (selection.start, selection.end)
    return [(s, *found[s]) for s in sorted(found)]


async def _series_in_mirror(
    mirror: Storage, market: Market, data_type: DataType, periods: Iterable[Period]
) -> set[Series]:
    series: set[Series] = set()
    for period in periods:
        async for obj in mirror.list(f"data/{market.value}/{period.value}/{data_type.value}/"):
            file = _file_of(obj.key)
            if file is not None:
                series.add(Series(file.market, file.data_type, file.symbol, file.interval))
    return series


async def _stored(mirror: Storage, series: Series) -> list[ArchiveFile]:
    """The series' stored files, daily and monthly: those whose zip and sidecar are both in the mirror."""
    stored: list[ArchiveFile] = []
    for period in (Period.MONTHLY, Period.DAILY):
        zips: set[str] = set()
        sidecars: set[str] = set()
        async for obj in mirror.list(series.folder(period)):
            if obj.key.endswith(CHECKSUM_SUFFIX):
                sidecars.add(obj.key[: -len(CHECKSUM_SUFFIX)])
            elif obj.size > 0:
                zips.add(obj.key)
        for key in sorted(zips & sidecars):
            file = _file_of(key)
            if file is not None and Series(file.market, file.data_type, file.symbol, file.interval) == series:
                stored.append(file)
    return stored


def _file_of(key: str) -> ArchiveFile | None:
    if key.endswith(CHECKSUM_SUFFIX):
        return None
    try:
        return ArchiveFile.from_key(key)
    except InvalidKeyError:
        log.debug("not a file of the archive, left out of the tables: %s", key)
        return None
