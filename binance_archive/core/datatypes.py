"""The archive's data types, by the names the archive itself uses in its paths."""

from __future__ import annotations

import enum

from binance_archive.core._choice import parse_choice

__all__ = ["DataType"]


class DataType(enum.Enum):
    """A data type; the value is its folder name in the archive (``aggTrades``, ``fundingRate``, ...)."""

    KLINES = "klines"
    TRADES = "trades"
    AGG_TRADES = "aggTrades"
    BOOK_DEPTH = "bookDepth"
    BOOK_TICKER = "bookTicker"
    FUNDING_RATE = "fundingRate"
    METRICS = "metrics"
    INDEX_PRICE_KLINES = "indexPriceKlines"
    MARK_PRICE_KLINES = "markPriceKlines"
    PREMIUM_INDEX_KLINES = "premiumIndexKlines"
    LIQUIDATION_SNAPSHOT = "liquidationSnapshot"
    BVOL_INDEX = "BVOLIndex"
    EOH_SUMMARY = "EOHSummary"

    @property
    def has_interval(self) -> bool:
        """Whether files live in an interval folder and name the interval instead of the data type."""
        return self in _KLINE_TYPES

    @classmethod
    def parse(cls, value: object) -> DataType:
        """Accept a member or the archive's name (case-insensitive: ``aggtrades`` works too).

        Raises:
            ConfigurationError: for anything else, naming the valid data types.
        """
        return parse_choice(cls, value, what="data type")

    def __str__(self) -> str:
        return self.value


_KLINE_TYPES = frozenset(
    {
        DataType.KLINES,
        DataType.INDEX_PRICE_KLINES,
        DataType.MARK_PRICE_KLINES,
        DataType.PREMIUM_INDEX_KLINES,
    }
)
