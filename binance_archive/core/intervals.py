"""Kline intervals, as the archive writes them in folder and file names."""

from __future__ import annotations

import enum

from binance_archive.core._choice import parse_choice

__all__ = ["Interval"]


class Interval(enum.Enum):
    """A kline interval. The month is written ``1mo`` (never ``1M``, which clashes with ``1m`` on
    case-insensitive file systems); ``1M`` is accepted on input as an alias."""

    S1 = "1s"
    M1 = "1m"
    M3 = "3m"
    M5 = "5m"
    M15 = "15m"
    M30 = "30m"
    H1 = "1h"
    H2 = "2h"
    H4 = "4h"
    H6 = "6h"
    H8 = "8h"
    H12 = "12h"
    D1 = "1d"
    D3 = "3d"
    W1 = "1w"
    MO1 = "1mo"

    @property
    def seconds(self) -> int:
        """Nominal length in seconds (a month counts as 30 days)."""
        return _SECONDS[self]

    @property
    def longer_than_a_day(self) -> bool:
        """3d, 1w and 1mo: a daily file of these holds at most a partial candle, so plans prefer monthly files."""
        return _SECONDS[self] > 86_400

    @classmethod
    def parse(cls, value: object) -> Interval:
        """Accept a member or its name; ``1M`` means ``1mo``. Case matters: ``1m`` is a minute.

        Raises:
            ConfigurationError: for anything else, naming the valid intervals.
        """
        return parse_choice(cls, value, what="interval", aliases={"1M": "1mo"}, case_sensitive=True)

    def __str__(self) -> str:
        return self.value


_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400, "mo": 30 * 86_400}
_SECONDS = {i: int(i.value.rstrip("smhdwo")) * _UNIT[i.value.lstrip("0123456789")] for i in Interval}
