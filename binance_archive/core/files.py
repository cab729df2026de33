"""One file of the archive: its key, its sidecar's key and its URL."""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import attrs

from binance_archive.core.datatypes import DataType
from binance_archive.core.intervals import Interval
from binance_archive.core.markets import Market
from binance_archive.core.periods import Period, month_end
from binance_archive.core.symbols import validate_symbol
from binance_archive.errors import ConfigurationError, InvalidKeyError

__all__ = ["CHECKSUM_SUFFIX", "ArchiveFile", "daily_files", "url_for_key"]

CHECKSUM_SUFFIX = ".CHECKSUM"
_set = object.__setattr__
_DAILY_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_MONTHLY_DATE = re.compile(r"\d{4}-\d{2}")


def url_for_key(base_url: str, key: str) -> str:
    """Join a base URL and a key, percent-encoding the key (non-ASCII symbols become UTF-8 escapes)."""
    return f"{base_url.rstrip('/')}/{quote(key, safe='/')}"


def _check_symbol(_: object, __: attrs.Attribute[str], value: str) -> None:
    validate_symbol(value)


@attrs.frozen(slots=True, order=True)
class ArchiveFile:
    """One ``.zip`` of the archive. Monthly files carry the first day of their month as ``date``.

    >>> f = ArchiveFile(Market.SPOT, DataType.KLINES, "BTCUSDT", Period.DAILY, dt.date(2024, 1, 1), Interval.M1)
    >>> f.key
    'data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-01-01.zip'
    """

    market: Market = attrs.field(order=lambda m: m.value)
    data_type: DataType = attrs.field(order=lambda t: t.value)
    symbol: str = attrs.field(validator=_check_symbol)
    period: Period = attrs.field(order=lambda p: p.value)
    date: dt.date
    interval: Interval | None = attrs.field(default=None, order=lambda i: "" if i is None else i.value)
    # The key, derived once: plans of millions of files ask for it (sharding, storage, URLs) more than once.
    _key: str = attrs.field(init=False, eq=False, order=False, repr=False, hash=False)

    def __attrs_post_init__(self) -> None:
        if self.data_type.has_interval != (self.interval is not None):
            need = "needs an interval" if self.data_type.has_interval else "takes no interval"
            raise ConfigurationError(f"{self.data_type.value} {need} (got interval={self.interval})")
        if self.period is Period.MONTHLY and self.date.day != 1:
            raise ConfigurationError(f"a monthly file's date is the first of its month, not {self.date}")
        _set(self, "_key", f"{self.folder}/{self.filename}")

    @property
    def date_text(self) -> str:
        """The date as written in the file name: ``2024-01-01`` or ``2024-01``."""
        return self.period.format_date(self.date)

    @property
    def filename(self) -> str:
        """The zip's name, e.g. ``BTCUSDT-1m-2024-01-01.zip``."""
        middle = self.interval.value if self.interval is not None else self.data_type.value
        return f"{self.symbol}-{middle}-{self.date_text}.zip"

    @property
    def folder(self) -> str:
        """The key's folder, e.g. ``data/spot/daily/klines/BTCUSDT/1m``."""
        base = f"data/{self.market.value}/{self.period.value}/{self.data_type.value}/{self.symbol}"
        return base if self.interval is None else f"{base}/{self.interval.value}"

    @property
    def key(self) -> str:
        """The object key, e.g. ``data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-01-01.zip``."""
        return self._key

    @property
    def name_prefix(self) -> str:
        """The key up to the date: ``data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-``."""
        middle = self.interval.value if self.interval is not None else self.data_type.value
        return f"{self.folder}/{self.symbol}-{middle}-"

    @property
    def checksum_key(self) -> str:
        """The key of the ``.CHECKSUM`` sidecar."""
        return self.key + CHECKSUM_SUFFIX

    def url(self, base_url: str = "https://data.binance.vision") -> str:
        """The zip's URL under ``base_url``, percent-encoded."""
        return url_for_key(base_url, self.key)

    def checksum_url(self, base_url: str = "https://data.binance.vision") -> str:
        """The sidecar's URL under ``base_url``, percent-encoded."""
        return url_for_key(base_url, self.checksum_key)

    @classmethod
    def from_key(cls, key: str) -> ArchiveFile:
        """Parse a key of the archive back into an ``ArchiveFile``; ``from_key(f.key) == f`` always.

        A sidecar key (ending ``.CHECKSUM``) gives the file it belongs to.

        Raises:
            InvalidKeyError: naming what does not fit the layout.
        """
        if not isinstance(key, str):
            raise InvalidKeyError(f"a key must be a string, not {type(key).__name__}")
        text = key[: -len(CHECKSUM_SUFFIX)] if key.endswith(CHECKSUM_SUFFIX) else key
        parts = text.split("/")
        if len(parts) < 6 or parts[0] != "data":
            raise InvalidKeyError(f"{key!r} is not a key of the archive (data/{{market}}/{{period}}/...)")
        market_len = 2 if parts[1] == "futures" else 1
        try:
            market = Market.parse("/".join(parts[1 : 1 + market_len]))
            period = Period.parse(parts[1 + market_len])
            data_type = DataType.parse(parts[2 + market_len])
        except ConfigurationError as exc:
            raise InvalidKeyError(f"{key!r}: {exc}") from None
        rest = parts[3 + market_len :]
        expected_parts = 3 if data_type.has_interval else 2
        if len(rest) != expected_parts:
            raise InvalidKeyError(f"{key!r}: expected {expected_parts} parts after the data type, got {len(rest)}")
        symbol, filename = rest[0], rest[-1]
        interval: Interval | None = None
        fields: dict[str, Any] = {}
        try:
            if data_type.has_interval:
                interval = Interval.parse(rest[1])
            middle = interval.value if interval is not None else data_type.value
            prefix = f"{symbol}-{middle}-"
            if not (filename.startswith(prefix) and filename.endswith(".zip")):
                raise InvalidKeyError(f"{key!r}: the file name should be {prefix}<date>.zip")
            date_text = filename[len(prefix) : -len(".zip")]
            pattern = _DAILY_DATE if period is Period.DAILY else _MONTHLY_DATE
            if not pattern.fullmatch(date_text):
                raise InvalidKeyError(f"{key!r}: {date_text!r} is not a {period.value} date")
            day = dt.date.fromisoformat(date_text if period is Period.DAILY else date_text + "-01")
            fields = {"interval": interval}
            result = cls(market, data_type, symbol, period, day, **fields)
        except InvalidKeyError:
            raise
        except (ConfigurationError, ValueError) as exc:
            raise InvalidKeyError(f"{key!r}: {exc}") from None
        if result.key != text:  # e.g. "1M" folders or upper-case market names: not the archive's spelling
            raise InvalidKeyError(f"{key!r} is not spelled as the archive spells it ({result.key!r})")
        return result

    def __str__(self) -> str:
        return self.key


# The slots' own descriptors: setting through them skips the frozen class's __setattr__ guard, which is the
# cheapest way to fill a frozen object (see docs/performance.md, planning).
_SLOT_SETTERS = tuple(
    ArchiveFile.__dict__[name].__set__
    for name in ("market", "data_type", "symbol", "period", "date", "interval", "_key")
)


def daily_files(
    market: Market, data_type: DataType, symbol: str, interval: Interval | None, first: dt.date, last: dt.date
) -> Iterator[ArchiveFile]:
    """The daily files of one series from ``first`` to ``last`` (inclusive), in date order.

    The hot loop of planning, so the arguments are checked once (by the first file), not per file: the key's
    prefix is built once per run of days, each month's dates and their ISO texts come from a small cache (every
    symbol of a plan walks the same calendar), and files are filled through their slots directly.
    """
    prefix = ArchiveFile(market, data_type, symbol, Period.DAILY, first, interval).name_prefix
    new, cls = object.__new__, ArchiveFile
    set_market, set_type, set_symbol, set_period, set_date, set_interval, set_key = _SLOT_SETTERS
    daily = Period.DAILY
    year, month, day = first.year, first.month, first.day
    while (year, month) <= (last.year, last.month):
        dates = _month_days(year, month)
        stop = last.day if (year, month) == (last.year, last.month) else len(dates)
        for date, text in dates[day - 1 : stop]:
            file = new(cls)
            set_market(file, market)
            set_type(file, data_type)
            set_symbol(file, symbol)
            set_period(file, daily)
            set_date(file, date)
            set_interval(file, interval)
            set_key(file, f"{prefix}{text}.zip")
            yield file
        year, month, day = (year + 1, 1, 1) if month == 12 else (year, month + 1, 1)


@functools.lru_cache(maxsize=1024)  # 85 years of months; a month is ~5 KB
def _month_days(year: int, month: int) -> tuple[tuple[dt.date, str], ...]:
    """Every day of a month with its ISO text (``2024-01-31``), in order."""
    first = dt.date(year, month, 1)
    return tuple((day, day.isoformat()) for day in (first.replace(day=k) for k in range(1, month_end(first).day + 1)))
