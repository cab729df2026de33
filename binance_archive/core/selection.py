"""What a user asks for: markets, data types, symbols, intervals, a date range and the periods to use."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from typing import Literal, TypeVar

import attrs

from binance_archive.core.datatypes import DataType
from binance_archive.core.intervals import Interval
from binance_archive.core.markets import Market
from binance_archive.core.periods import Period, month_end
from binance_archive.core.symbols import normalize_symbol
from binance_archive.errors import ConfigurationError

__all__ = ["AUTO", "PeriodsSpec", "Selection", "parse_date", "split_list"]

AUTO: Literal["auto"] = "auto"
PeriodsSpec = Literal["auto"] | tuple[Period, ...]
_T = TypeVar("_T")
_MONTH = re.compile(r"\d{4}-\d{2}")


def split_list(values: Iterable[str] | None) -> list[str]:
    """The items of options that repeat and also take comma-separated lists: ``["BTCUSDT,ETHUSDT", "BNBUSDT"]``
    gives three; empty items are dropped."""
    return [part.strip() for value in values or () for part in value.split(",") if part.strip()]


def parse_date(value: object, *, what: str = "date", end_of_month: bool = False) -> dt.date | None:
    """Parse ``YYYY-MM-DD`` (or ``YYYY-MM``: its first day, or its last with ``end_of_month``).

    Raises:
        ConfigurationError: naming the bad value and the accepted forms.
    """
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            if _MONTH.fullmatch(text):
                first = dt.date.fromisoformat(text + "-01")
                return month_end(first) if end_of_month else first
            if len(text) == 10:
                return dt.date.fromisoformat(text)
        except ValueError:
            pass
    raise ConfigurationError(f"invalid {what} {value!r}; write YYYY-MM-DD (or YYYY-MM for a whole month)")


def _items(value: object) -> list[object]:
    if value is None:
        return []
    if isinstance(value, str | Market | DataType | Interval | Period):
        return [value]
    if isinstance(value, Iterable):
        return list(value)
    return [value]


def _unique(parse: Callable[[object], _T], value: object) -> tuple[_T, ...]:
    out: list[_T] = []
    for item in _items(value):
        parsed = parse(item)
        if parsed not in out:
            out.append(parsed)
    return tuple(out)


def _markets(value: object) -> tuple[Market, ...]:
    return _unique(Market.parse, value)


def _data_types(value: object) -> tuple[DataType, ...]:
    return _unique(DataType.parse, value)


def _symbols(value: object) -> tuple[str, ...]:
    return _unique(normalize_symbol, value)  # type: ignore[arg-type]


def _intervals(value: object) -> tuple[Interval, ...]:
    return _unique(Interval.parse, value)


def _start(value: object) -> dt.date | None:
    return parse_date(value, what="start date")


def _end(value: object) -> dt.date | None:
    return parse_date(value, what="end date", end_of_month=True)


def _periods(value: object) -> PeriodsSpec:
    if value is None or (isinstance(value, str) and value.strip().lower() == AUTO):
        return AUTO
    items = _items(value)
    if any(isinstance(i, str) and i.strip().lower() == AUTO for i in items):
        if len(items) > 1:
            raise ConfigurationError("the period 'auto' cannot be combined with daily or monthly")
        return AUTO
    periods = _unique(Period.parse, items)
    if not periods:
        return AUTO
    return tuple(p for p in Period if p in periods)


@attrs.frozen
class Selection:
    """A user's selection of the archive, validated as far as it can be without the catalog.

    Strings are accepted everywhere and converted (``Selection(markets="um", data_types="klines", ...)``).

    Attributes:
        markets: markets to take (``spot``, ``futures/um``, ``futures/cm``, ``option``, or aliases).
        data_types: data types, by the archive's names.
        symbols: symbols, upper-cased; empty means every symbol the listing shows (resolved by the engine).
        intervals: kline intervals, for the kline types; ignored by the others.
        start: first day, inclusive; ``None`` means the first file the listing shows (resolved by the engine).
        end: last day, inclusive; ``None`` means yesterday (UTC).
        periods: ``"auto"`` (whole months as monthly files, the rest as daily files), or daily and/or monthly.
    """

    markets: tuple[Market, ...] = attrs.field(converter=_markets)
    data_types: tuple[DataType, ...] = attrs.field(converter=_data_types)
    symbols: tuple[str, ...] = attrs.field(default=(), converter=_symbols)
    intervals: tuple[Interval, ...] = attrs.field(default=(), converter=_intervals)
    start: dt.date | None = attrs.field(default=None, converter=_start)
    end: dt.date | None = attrs.field(default=None, converter=_end)
    periods: PeriodsSpec = attrs.field(default=AUTO, converter=_periods)

    def __attrs_post_init__(self) -> None:
        if not self.markets:
            raise ConfigurationError(f"no market selected; valid markets: {', '.join(m.value for m in Market)}")
        if not self.data_types:
            raise ConfigurationError(f"no data type selected; valid data types: {', '.join(t.value for t in DataType)}")
        if self.start and self.end and self.end < self.start:
            raise ConfigurationError(f"the end date {self.end} is before the start date {self.start}")
        kline_types = [t for t in self.data_types if t.has_interval]
        if kline_types and not self.intervals:
            raise ConfigurationError(
                f"{', '.join(t.value for t in kline_types)} need at least one interval; "
                f"valid intervals: {', '.join(i.value for i in Interval)}"
            )
        if self.intervals and not kline_types:
            raise ConfigurationError(
                f"intervals {', '.join(i.value for i in self.intervals)} were given, but none of the data types "
                f"({', '.join(t.value for t in self.data_types)}) has intervals"
            )

    def intervals_for(self, data_type: DataType) -> tuple[Interval | None, ...]:
        """The intervals that apply to ``data_type``: the selection's for kline types, ``(None,)`` otherwise."""
        return self.intervals if data_type.has_interval else (None,)

    def with_(self, **changes: object) -> Selection:
        """A copy with some fields changed (and converted)."""
        return attrs.evolve(self, **changes)
