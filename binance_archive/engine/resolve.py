"""Resolving a user's selections into what a run downloads: a stream of lazy plans, and the rule that puts daily
files in place of a missing monthly one.

A selection that names its symbols and start date is planned as it is (core's :func:`plan`, no I/O). One that
leaves them out is filled in from the archive's listing (:mod:`.discovery`), one series at a time: every symbol
the listing shows, from each series' first file.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from typing import TypeVar

import attrs

from binance_archive.backends import Storage, Transport
from binance_archive.core.catalog import Catalog
from binance_archive.core.datatypes import DataType
from binance_archive.core.files import ArchiveFile
from binance_archive.core.markets import Market
from binance_archive.core.periods import Period
from binance_archive.core.planning import Shard, files_of_month, in_shard, plan
from binance_archive.core.selection import Selection
from binance_archive.core.symbols import closest_symbols, validate_symbol
from binance_archive.engine.discovery import first_date, list_symbols, unlisted_symbols
from binance_archive.engine.retry import Retrying, RetryPolicy
from binance_archive.engine.stored import stores_symbol
from binance_archive.errors import ConfigurationError, TransportError

__all__ = ["Plan"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_LISTINGS_AT_ONCE = 8
_PROBES_AT_ONCE = 16


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
        storage: the mirror; a symbol it holds files of is known to exist without asking the listing.
        check: check the symbols named against the listing (:meth:`check_symbols`); off where that was done
            already, by whoever resolved the selections.
    """

    selections: tuple[Selection, ...]
    today: dt.date
    shard: Shard | None
    transport: Transport
    catalog: Catalog
    retry: RetryPolicy
    fallback: bool
    files: tuple[ArchiveFile, ...] = ()
    storage: Storage | None = None
    check: bool = True

    async def batches(self) -> AsyncIterator[Iterator[ArchiveFile]]:
        """The plan, as a stream of lazy plans: one per selection, or, where a selection leaves out symbols or
        its start date, one per series once the listing has filled them in.

        Plain iterators inside, awaited only between them: a resumed run walks millions of files, and an async
        generator step per file would cost more than everything else done for a stored file.
        """
        if self.check:
            await self.check_symbols()
        if self.files:
            shard = self.shard
            yield iter(self.files) if shard is None else (f for f in self.files if in_shard(f.key, shard))
        for selection in self.selections:
            async for files in self._batches_of(selection):
                yield files

    async def check_symbols(self) -> None:
        """Refuse a named symbol that has no files at all in its market and data type, before any download, naming
        the closest symbols the listing shows ("did you mean BTCBVOLUSDT?").

        Only where the transport's listing is authoritative (it lists the archive the files come from), and only
        when it answers: a listing that cannot be read leaves the check undone (said in the log), never the run.
        A symbol that has files, but not on every planned date, passes: those dates count as missing. A symbol the
        mirror holds files of passes without a look at the listing, so a resumed run asks the archive nothing.

        Raises:
            ConfigurationError: naming each unknown symbol, its market and data type, and the closest listed names.
        """
        if not self.transport.listing_is_authoritative:
            return
        named: dict[tuple[Market, DataType], set[str]] = {}
        for selection in self.selections:
            for market in selection.markets if selection.symbols else ():
                for data_type in selection.data_types:
                    named.setdefault((market, data_type), set()).update(selection.symbols)
        # A few tries at most: the check is a courtesy, and a listing that does not answer must not delay the run.
        policy = attrs.evolve(self.retry, attempts=min(self.retry.attempts, 3))
        gate = asyncio.Semaphore(_LISTINGS_AT_ONCE)  # a run naming many types waits for one listing, not for each
        unreadable: list[str] = []  # once one listing could not be read, the others are not tried
        found = await asyncio.gather(
            *(
                self._unknown(market, data_type, symbols, policy, gate, unreadable)
                for (market, data_type), symbols in named.items()
            )
        )
        problems = [problem for problems in found for problem in problems]
        if problems:
            more = f"; and {len(problems) - 5} more unknown symbols" if len(problems) > 5 else ""
            raise ConfigurationError("; ".join(problems[:5]) + more)

    async def _unknown(
        self,
        market: Market,
        data_type: DataType,
        named: set[str],
        policy: RetryPolicy,
        gate: asyncio.Semaphore,
        unreadable: list[str],
    ) -> list[str]:
        """What to say of each of ``named`` that has no files of ``data_type`` in ``market`` (nothing where the
        listing cannot be read: that is added to ``unreadable``)."""
        async with gate:
            # Many symbols of an S3 mirror: a request each, so several at once.
            probes = asyncio.Semaphore(_PROBES_AT_ONCE)
            stored = await asyncio.gather(*(self._stored(market, data_type, s, probes) for s in sorted(named)))
            symbols = [s for s, known in zip(sorted(named), stored, strict=True) if not known]
            if not symbols or unreadable:
                return []
            what = f"the symbols of {market.value} {data_type.value}"
            read = functools.partial(unlisted_symbols, self.transport, self.catalog, market, data_type, symbols)
            try:
                unknown, listed = await Retrying(policy, what=what)(lambda _attempt: read())
            except TransportError as exc:
                if not unreadable:
                    log.info("the symbols named were not checked against the listing (%s: %s); files of a symbol "
                             "it lacks count as missing", what, exc)  # fmt: skip
                unreadable.append(what)
                return []
        return [_unknown_symbol(symbol, market, data_type, listed) for symbol in unknown]

    async def _stored(self, market: Market, data_type: DataType, symbol: str, probes: asyncio.Semaphore) -> bool:
        """Whether the mirror holds files of this symbol already (a resumed run then asks the archive nothing)."""
        if self.storage is None:
            return False
        periods = self.catalog.lookup(market, data_type).periods
        async with probes:
            return await stores_symbol(self.storage, market, data_type, symbol, periods)

    def instead_of_missing(self, file: ArchiveFile) -> list[ArchiveFile]:
        """The files to fetch in place of ``file``, which the archive does not have: the daily files of a monthly
        file's month (fallback on; funding rates have no daily files), else none."""
        if self.fallback and file.period is Period.MONTHLY and file.data_type is not DataType.FUNDING_RATE:
            return list(files_of_month(file, today=self.today))
        return []

    async def _batches_of(self, selection: Selection) -> AsyncIterator[Iterator[ArchiveFile]]:
        today, shard, catalog = self.today, self.shard, self.catalog
        async for one in self.series(selection):
            yield plan(one, today=today, catalog=catalog, shard=shard)

    async def series(self, selection: Selection) -> AsyncIterator[Selection]:
        """``selection`` with its symbols and start date: as it is where it names them, else one selection per
        series (market, data type, symbol, interval) once the listing has filled them in."""
        if selection.symbols and selection.start is not None:
            yield selection
            return
        transport, catalog = self.transport, self.catalog
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
                        yield selection.with_(
                            markets=(market,),
                            data_types=(data_type,),
                            symbols=(symbol,),
                            intervals=(interval,) if interval else (),
                            start=start,
                        )

    async def resolved(self) -> tuple[Selection, ...]:
        """The selections with every symbol and start date filled in from the listing, series that share their
        market, data type, interval and dates merged into one selection (so that a plan of the whole archive
        stays a few thousand selections, not a selection per series). Planning them needs no listing."""
        await self.check_symbols()
        merged: dict[tuple[object, ...], dict[str, None]] = {}  # an ordered set of symbols per group
        models: dict[tuple[object, ...], Selection] = {}
        for selection in self.selections:
            async for one in self.series(selection):
                group = (one.markets, one.data_types, one.intervals, one.start, one.end, one.periods)
                models.setdefault(group, one)
                merged.setdefault(group, {}).update(dict.fromkeys(one.symbols))
        return tuple(models[group].with_(symbols=tuple(symbols)) for group, symbols in merged.items())

    async def _listing(self, what: str, read: Callable[[], Awaitable[_T]]) -> _T:
        """Read the listing with the retry policy: a 503 or a reset on one listing page must not end the run."""
        return await Retrying(self.retry, what=what)(lambda _attempt: read())


def _unknown_symbol(symbol: str, market: Market, data_type: DataType, listed: list[str]) -> str:
    """What to tell a user of a ``symbol`` the listing of ``market`` ``data_type`` (``listed``) does not hold."""
    text = f"unknown symbol {symbol!r} for {market.value} {data_type.value}: the archive's listing has no files of it"
    close = closest_symbols(symbol, listed)
    if close:
        either = close[0] if len(close) == 1 else f"{', '.join(close[:-1])} or {close[-1]}"
        return f"{text}; did you mean {either}?"
    if not listed:
        return f"{text}, nor of any symbol"
    if len(listed) <= 8:
        return f"{text}; it lists {', '.join(listed)}"
    return (
        f"{text}; `binance-archive symbols --market {market.value} --data-type {data_type.value}` "
        f"shows the {len(listed)} it lists"
    )


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
