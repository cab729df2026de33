"""Planning: turning a :class:`Selection` into a lazy, deterministic stream of :class:`ArchiveFile`.

The plan never holds more than one file in memory, so a plan of ten million files costs what one costs.
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Iterator

from binance_archive.core.catalog import DEFAULT_CATALOG, Availability, Catalog
from binance_archive.core.datatypes import DataType
from binance_archive.core.files import ArchiveFile, daily_files
from binance_archive.core.intervals import Interval
from binance_archive.core.markets import Market
from binance_archive.core.periods import Period, month_end, next_month
from binance_archive.core.selection import AUTO, Selection
from binance_archive.errors import ConfigurationError

__all__ = [
    "Shard",
    "files_of_month",
    "in_shard",
    "parse_shard",
    "plan",
    "split_shard",
    "utc_today",
    "validate_selection",
]

Shard = tuple[int, int]
_ONE_DAY = dt.timedelta(days=1)


def utc_today() -> dt.date:
    """Today's date in UTC, which is the archive's calendar."""
    return dt.datetime.now(dt.UTC).date()


def parse_shard(value: object) -> Shard | None:
    """Parse ``"K/N"`` or ``(K, N)``: shard K (0-based) of N.

    Raises:
        ConfigurationError: for anything but 0 <= K < N.
    """
    if value is None:
        return None
    try:
        if isinstance(value, str):
            k_text, n_text = value.split("/")
            k, n = int(k_text), int(n_text)
        else:
            k, n = value  # type: ignore[misc]
            if not all(type(x) is int for x in (k, n)):  # no floats or bools: (0.5, 2) is a mistake
                raise TypeError
    except (ValueError, TypeError):
        raise ConfigurationError(f"invalid shard {value!r}; write K/N with 0 <= K < N, e.g. 0/4") from None
    if n < 1:
        raise ConfigurationError(f"invalid shard {value!r}; N must be at least 1")
    if not 0 <= k < n:
        raise ConfigurationError(f"invalid shard {value!r}; K must be in 0..{n - 1} for N={n}")
    return k, n


def split_shard(shard: Shard | None, parts: int) -> list[Shard]:
    """Shard ``k/n`` (``None``: the whole plan) split into ``parts`` disjoint shards that together hold exactly its
    files: ``(k + n*i) / (n*parts)`` for ``i`` in ``0..parts-1``, since ``crc % (n*parts) == k + n*i`` for some
    ``i`` exactly when ``crc % n == k``.

    Raises:
        ConfigurationError: when ``parts`` is less than 1.
    """
    if parts < 1:
        raise ConfigurationError(f"a plan splits into at least 1 shard, not {parts}")
    k, n = shard or (0, 1)
    return [(k + n * index, n * parts) for index in range(parts)]


def in_shard(key: str, shard: Shard) -> bool:
    """Whether ``key`` belongs to ``shard``: CRC-32 of the key modulo N, stable across machines and runs."""
    k, n = shard
    return n == 1 or zlib.crc32(key.encode("utf-8")) % n == k


def validate_selection(selection: Selection, catalog: Catalog = DEFAULT_CATALOG) -> None:
    """Check every market, data type, interval and period of ``selection`` against ``catalog``.

    Raises:
        ConfigurationError: for the first combination the archive does not have, naming the valid choices.
    """
    for market in selection.markets:
        for data_type in selection.data_types:
            entry = catalog.lookup(market, data_type)
            if selection.periods != AUTO:
                for period in selection.periods:
                    if period not in entry.intervals:
                        have = " and ".join(p.value for p in entry.periods)
                        raise ConfigurationError(
                            f"{market.value} {data_type.value} is not published {period.value}; it is published {have}"
                        )
            for interval in selection.intervals_for(data_type):
                if interval is None:
                    continue
                periods = entry.periods if selection.periods == AUTO else selection.periods
                if not any(entry.has(p, interval) for p in periods):
                    valid = sorted({i for p in periods for i in entry.intervals.get(p, ())}, key=list(Interval).index)
                    raise ConfigurationError(
                        f"{market.value} {data_type.value} has no {interval.value} interval"
                        f" ({'/'.join(p.value for p in periods)}); valid intervals: {', '.join(i.value for i in valid)}"
                    )


def plan(
    selection: Selection,
    *,
    today: dt.date | None = None,
    catalog: Catalog = DEFAULT_CATALOG,
    shard: Shard | str | None = None,
) -> Iterator[ArchiveFile]:
    """Validate ``selection`` at once, then return a lazy iterator over its files.

    Files come market by market, data type by data type, symbol by symbol, interval by interval, each in
    date order. With ``shard=(k, n)`` only a stable 1/n of them comes, so n machines can split one plan.

    Args:
        selection: what to plan; it must name its symbols and start date (the engine fills them in from
            the listing when they are missing).
        today: the UTC date to plan for (default: today); daily files stop at yesterday, monthly files at the
            last month that is over.
        catalog: the availability matrix to plan against.
        shard: ``(k, n)`` or ``"k/n"`` to take shard k (0-based) of n.

    Raises:
        ConfigurationError: before anything is yielded, for any combination the archive does not have.
    """
    validate_selection(selection, catalog)
    if not selection.symbols:
        raise ConfigurationError("the selection names no symbols; name them, or let Archive.download discover them")
    if selection.start is None:
        raise ConfigurationError("the selection has no start date; give one, or let Archive.download find it")
    parsed_shard = parse_shard(shard)
    today = today or utc_today()
    files = _plan(selection, today, catalog)
    if parsed_shard is None or parsed_shard[1] == 1:
        return files
    return (f for f in files if in_shard(f.key, parsed_shard))


def _plan(selection: Selection, today: dt.date, catalog: Catalog) -> Iterator[ArchiveFile]:
    for market in selection.markets:
        for data_type in selection.data_types:
            entry = catalog.lookup(market, data_type)
            for symbol in selection.symbols:
                for interval in selection.intervals_for(data_type):
                    yield from _series(entry, market, data_type, symbol, interval, selection, today)


def _series(
    entry: Availability,
    market: Market,
    data_type: DataType,
    symbol: str,
    interval: Interval | None,
    selection: Selection,
    today: dt.date,
) -> Iterator[ArchiveFile]:
    """The files of one symbol and interval, in date order."""
    assert selection.start is not None
    yesterday = today - _ONE_DAY
    lo = max(selection.start, entry.first_date) if entry.first_date else selection.start
    hi = min(selection.end or yesterday, yesterday)
    if entry.last_date:
        hi = min(hi, entry.last_date)
    if hi < lo:
        return
    has_daily = entry.has(Period.DAILY, interval)
    has_monthly = entry.has(Period.MONTHLY, interval)
    if selection.periods == AUTO:
        if interval is not None and interval.longer_than_a_day and has_monthly:
            has_daily = False  # a daily file of a 3d/1w/1mo candle is at most a partial candle
        want_daily, want_monthly = has_daily, has_monthly
    else:
        want_daily = Period.DAILY in selection.periods and has_daily
        want_monthly = Period.MONTHLY in selection.periods and has_monthly
    auto_split = selection.periods == AUTO and want_daily and want_monthly

    month = lo.replace(day=1)
    while month <= hi:
        last = month_end(month)
        if auto_split:
            whole = month >= lo and last <= hi  # hi <= yesterday, so a whole month is also over
            if whole:
                yield ArchiveFile(market, data_type, symbol, Period.MONTHLY, month, interval)
            else:
                yield from daily_files(market, data_type, symbol, interval, max(lo, month), min(hi, last))
        else:
            if want_monthly and last < today:
                yield ArchiveFile(market, data_type, symbol, Period.MONTHLY, month, interval)
            if want_daily:
                yield from daily_files(market, data_type, symbol, interval, max(lo, month), min(hi, last))
        month = next_month(month)


def files_of_month(monthly: ArchiveFile, *, today: dt.date | None = None) -> Iterator[ArchiveFile]:
    """The daily files that cover a monthly file's month (up to yesterday): the fallback when it is missing."""
    if monthly.period is not Period.MONTHLY:
        raise ConfigurationError(f"{monthly.key} is not a monthly file")
    yesterday = (today or utc_today()) - _ONE_DAY
    yield from daily_files(
        monthly.market,
        monthly.data_type,
        monthly.symbol,
        monthly.interval,
        monthly.date,
        min(month_end(monthly.date), yesterday),
    )
