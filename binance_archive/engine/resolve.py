"""Resolving a user's selections into what a run downloads: a stream of lazy plans, and the rule that puts daily
files in place of a missing monthly one.

A selection that names its symbols and start date is planned as it is (core's :func:`plan`, no I/O). One that
leaves them out is filled in from the archive's listing (:mod:`.discovery`), one series at a time: every symbol
the listing shows, from each series' first file.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from typing import TypeVar

import attrs

from binance_archive.backends import Transport
from binance_archive.core.catalog import Catalog
from binance_archive.core.datatypes import DataType
from binance_archive.core.files import ArchiveFile
from binance_archive.core.periods import Period
from binance_archive.core.planning import Shard, files_of_month, in_shard, plan
from binance_archive.core.selection import Selection
from binance_archive.core.symbols import validate_symbol
from binance_archive.engine.discovery import first_date, list_symbols
from binance_archive.engine.retry import Retrying, RetryPolicy
from binance_archive.errors import ConfigurationError

__all__ = ["Plan"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")


@attrs.frozen(kw_only=True)
class Plan:
    """What one run downloads: the files of ``selections`` (only shard ``shard`` of them), as of ``today``.

    Attributes:
        selections: validated selections.
        files: files to fetch as they are, before the selections' (a repair: exactly the files a verify found
            wrong).
        transport: where the listing comes from, for selections that leave out symbols or a start date.
        catalog: the availability matrix planned against.
        retry: how a listing read that fails transiently is retried.
        fallback: when a monthly file is missing, download the daily files of its month instead.
    """

    selections: tuple[Selection, ...]
    today: dt.date
    shard: Shard | None
    transport: Transport
    catalog: Catalog
    retry: RetryPolicy
    fallback: bool
    files: tuple[ArchiveFile, ...] = ()

    async def batches(self) -> AsyncIterator[Iterator[ArchiveFile]]:
        """The plan, as a stream of lazy plans: one per selection, or, where a selection leaves out symbols or
        its start date, one per series once the listing has filled them in.

        Plain iterators inside, awaited only between them: a resumed run walks millions of files, and an async
        generator step per file would cost more than everything else done for a stored file.
        """
        if self.files:
            shard = self.shard
            yield iter(self.files) if shard is None else (f for f in self.files if in_shard(f.key, shard))
        for selection in self.selections:
            async for files in self._batches_of(selection):
                yield files

    def instead_of_missing(self, file: ArchiveFile) -> list[ArchiveFile]:
        """The files to fetch in place of ``file``, which the archive does not have: the daily files of a monthly
        file's month (fallback on; funding rates have no daily files), else none."""
        if self.fallback and file.period is Period.MONTHLY and file.data_type is not DataType.FUNDING_RATE:
            return list(files_of_month(file, today=self.today))
        return []

    async def _batches_of(self, selection: Selection) -> AsyncIterator[Iterator[ArchiveFile]]:
        today, shard, catalog = self.today, self.shard, self.catalog
        if selection.symbols and selection.start is not None:
            yield plan(selection, today=today, catalog=catalog, shard=shard)
            return
        transport = self.transport
        for market in selection.markets:
            for data_type in selection.data_types:
                symbols = selection.symbols or _safe_symbols(
                    await self._listing(
                        f"the symbols of {market.value} {data_type.value}",
                        functools.partial(list_symbols, transport, catalog, market, data_type),
                    )
                )
                log.info("%s %s: %d symbols", market.value, data_type.value, len(symbols))
                for symbol in symbols:
                    for interval in selection.intervals_for(data_type):
                        start = selection.start
                        if start is None:
                            start = await self._listing(
                                f"the first date of {symbol}",
                                functools.partial(first_date, transport, catalog, market, data_type, symbol, interval),
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
                        yield plan(one, today=today, catalog=catalog, shard=shard)

    async def _listing(self, what: str, read: Callable[[], Awaitable[_T]]) -> _T:
        """Read the listing with the retry policy: a 503 or a reset on one listing page must not end the run."""
        return await Retrying(self.retry, what=what)(lambda _attempt: read())


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
