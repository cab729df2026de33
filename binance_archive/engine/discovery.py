"""Discovery through the archive's listing: which symbols exist, and where a series' files begin.

Binance's own scripts take symbols from the exchangeInfo API, which knows only live symbols and is blocked
in some countries; the listing of the bucket itself knows every symbol and date that has files.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator, Iterable

from binance_archive.backends import Transport
from binance_archive.core.catalog import Catalog
from binance_archive.core.datatypes import DataType
from binance_archive.core.files import CHECKSUM_SUFFIX, ArchiveFile
from binance_archive.core.intervals import Interval
from binance_archive.core.listing import ListedObject
from binance_archive.core.markets import Market
from binance_archive.core.periods import Period
from binance_archive.errors import InvalidKeyError

__all__ = ["first_date", "list_objects", "list_symbols", "unlisted_symbols"]

log = logging.getLogger(__name__)


def type_prefix(market: Market, period: Period, data_type: DataType) -> str:
    """``data/{market}/{period}/{data_type}/``: the folder whose sub-folders are symbols."""
    return f"data/{market.value}/{period.value}/{data_type.value}/"


async def list_objects(transport: Transport, prefix: str) -> AsyncIterator[ListedObject]:
    """Every object under ``prefix``, across all pages."""
    async for page in transport.list(prefix, delimiter=None):
        for obj in page.objects:
            yield obj


async def list_symbols(
    transport: Transport, catalog: Catalog, market: Market, data_type: DataType, period: Period | None = None
) -> list[str]:
    """The symbols that have files of ``data_type`` in ``market`` (in ``period``, or in any period), sorted."""
    entry = catalog.lookup(market, data_type)
    periods = [period] if period else list(entry.periods)
    found: set[str] = set()
    for p in periods:
        prefix = type_prefix(market, p, data_type)
        async for page in transport.list(prefix, delimiter="/"):
            for sub in page.prefixes:
                symbol = sub[len(prefix) :].strip("/")
                if symbol:
                    found.add(symbol)
    return sorted(found)


async def unlisted_symbols(
    transport: Transport, catalog: Catalog, market: Market, data_type: DataType, symbols: Iterable[str]
) -> tuple[list[str], list[str]]:
    """Which of ``symbols`` have no folder of ``data_type`` in ``market`` (in any period), from the listing; and,
    when some have none, every symbol listed there (for suggestions), else nothing.

    Monthly folders are listed first and the daily ones only for symbols not found there: symbols listed in both
    are found with the shorter listing (a new symbol, with no whole month yet, only in the daily one).
    """
    wanted = set(symbols)
    listed: set[str] = set()
    entry = catalog.lookup(market, data_type)
    for period in sorted(entry.periods, key=lambda p: p is not Period.MONTHLY):
        prefix = type_prefix(market, period, data_type)
        async for page in transport.list(prefix, delimiter="/"):
            listed.update(sub[len(prefix) :].strip("/") for sub in page.prefixes)
            if wanted <= listed:  # the rest of the listing cannot change the answer
                return [], []
    listed.discard("")
    return sorted(wanted - listed), sorted(listed)


async def first_date(
    transport: Transport,
    catalog: Catalog,
    market: Market,
    data_type: DataType,
    symbol: str,
    interval: Interval | None,
) -> dt.date | None:
    """The first day covered by any file of one series, from the listing; ``None`` when it has no file."""
    entry = catalog.lookup(market, data_type)
    earliest: dt.date | None = None
    # Monthly folders are short (one file a month), so look there first; daily ones can only be earlier
    # by less than a month, but they are where daily-only types live.
    for period in sorted(entry.periods, key=lambda p: p is not Period.MONTHLY):
        if interval is not None and not entry.has(period, interval):
            continue
        probe = ArchiveFile(market, data_type, symbol, period, dt.date(2000, 1, 1), interval)
        async for page in transport.list(probe.folder + "/", delimiter="/"):
            for obj in page.objects:
                if obj.key.endswith(CHECKSUM_SUFFIX):
                    continue
                try:
                    day = ArchiveFile.from_key(obj.key).date
                except InvalidKeyError:
                    log.debug("ignoring %s in the listing: not a key of the archive", obj.key)
                    continue
                if earliest is None or day < earliest:
                    earliest = day
            # Keys are listed in order and dates sort as text, so the first page holds the earliest file.
            break
    return earliest
