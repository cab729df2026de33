"""Plausible numbers for the rows: a price level per symbol and day, traded notional, and tick decimals."""

from __future__ import annotations

import datetime as dt
import math
import zlib

from binance_archive.core import Market

__all__ = ["base_price", "decimals", "notional_per_second"]


_LEVELS = (("BTC", 60_000.0), ("ETH", 3_000.0), ("BNB", 600.0), ("SOL", 150.0))


def base_price(symbol: str, day: dt.date) -> float:
    """A plausible price level for the symbol on that day, drifting slowly with the date."""
    s = symbol.upper()
    level = next((price for prefix, price in _LEVELS if s.startswith(prefix)), None)
    if level is None:
        level = 0.05 + (zlib.crc32(symbol.encode("utf-8")) % 20_000) / 1_000
    if "BVOL" in s:
        level = 55.0
    return level * (1 + 0.2 * math.sin(day.toordinal() / 37))


def notional_per_second(symbol: str) -> float:
    return 25_000.0 if symbol.upper().startswith(("BTC", "ETH")) else 1_500.0


def decimals(price: float, market: Market) -> int:
    """Futures tick decimals by price level (USD-M BTCUSDT ticks 0.10 but is written with 2 decimals,
    COIN-M BTCUSD_PERP with 1; cheap contracts get more)."""
    if price >= 10_000 and market is Market.FUTURES_CM:
        return 1
    if price >= 100:
        return 2
    if price >= 1:
        return 4
    return 6
