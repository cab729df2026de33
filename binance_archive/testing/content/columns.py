"""The columns of every market and data type, which files start with a header row, and their time unit."""

from __future__ import annotations

import datetime as dt

from binance_archive.core import ArchiveFile, DataType, Market

__all__ = ["HEADER_SINCE", "MICROSECONDS_SINCE", "columns", "has_header", "time_unit"]

# Futures klines/trades/aggTrades gained a header somewhere between 2022-05 and 2022-08-11 (#246, #177, #278);
# the fake switches on the last of those dates for every symbol.
HEADER_SINCE = dt.date(2022, 8, 11)
# Every spot timestamp is in microseconds from this date on (#386, #387).
MICROSECONDS_SINCE = dt.date(2025, 1, 1)

_KLINE_COLUMNS = (
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "count",
    "taker_buy_volume",
    "taker_buy_quote_volume",
    "ignore",
)
_SPOT_TRADES = ("id", "price", "qty", "quote_qty", "time", "is_buyer_maker", "is_best_match")
_SPOT_AGG_TRADES = (
    "agg_trade_id",
    "price",
    "qty",
    "first_trade_id",
    "last_trade_id",
    "time",
    "is_buyer_maker",
    "is_best_match",
)
_UM_TRADES = ("id", "price", "qty", "quote_qty", "time", "is_buyer_maker")
_CM_TRADES = ("id", "price", "qty", "base_qty", "time", "is_buyer_maker")
_FUTURES_AGG_TRADES = (
    "agg_trade_id",
    "price",
    "quantity",
    "first_trade_id",
    "last_trade_id",
    "transact_time",
    "is_buyer_maker",
)
_COLUMNS: dict[DataType, tuple[str, ...]] = {
    DataType.FUNDING_RATE: ("calc_time", "funding_interval_hours", "last_funding_rate"),
    DataType.METRICS: (
        "create_time",
        "symbol",
        "sum_open_interest",
        "sum_open_interest_value",
        "count_toptrader_long_short_ratio",
        "sum_toptrader_long_short_ratio",
        "count_long_short_ratio",
        "sum_taker_long_short_vol_ratio",
    ),
    DataType.BOOK_DEPTH: ("timestamp", "percentage", "depth", "notional"),
    DataType.BOOK_TICKER: (
        "update_id",
        "best_bid_price",
        "best_bid_qty",
        "best_ask_price",
        "best_ask_qty",
        "transaction_time",
        "event_time",
    ),
    DataType.BVOL_INDEX: ("calc_time", "symbol", "base_asset", "quote_asset", "index_value"),
    # Not documented in the ARCHIVE notes: the columns of Binance's liquidation snapshot stream, as other
    # readers of the retired files describe them.
    DataType.LIQUIDATION_SNAPSHOT: (
        "time",
        "side",
        "order_type",
        "time_in_force",
        "original_quantity",
        "price",
        "average_price",
        "order_status",
        "last_fill_quantity",
        "accumulated_fill_quantity",
    ),
    # Not documented in the ARCHIVE notes either: a plausible hourly summary per option contract (the kind
    # of columns an end-of-hour summary of options carries). Treat these names as invented.
    DataType.EOH_SUMMARY: (
        "date",
        "hour",
        "symbol",
        "underlying",
        "type",
        "strike",
        "open",
        "high",
        "low",
        "close",
        "volume_contracts",
        "volume_usdt",
        "best_bid_price",
        "best_ask_price",
        "best_bid_qty",
        "best_ask_qty",
        "best_buy_iv",
        "best_sell_iv",
        "mark_price",
        "mark_iv",
        "delta",
        "gamma",
        "vega",
        "theta",
        "openinterest_contracts",
        "openinterest_usdt",
    ),
}
_TRADE_LIKE = frozenset({DataType.TRADES, DataType.AGG_TRADES, *(t for t in DataType if t.has_interval)})


def has_header(file: ArchiveFile) -> bool:
    """Whether the real file starts with a header row."""
    if file.market is Market.SPOT:
        return False
    if file.market.is_futures and file.data_type in _TRADE_LIKE:
        return file.date >= HEADER_SINCE
    return True


def time_unit(file: ArchiveFile) -> int:
    """Timestamp ticks per second in the file: 1,000 (milliseconds) or 1,000,000 (microseconds)."""
    if file.market is Market.SPOT and file.date >= MICROSECONDS_SINCE:
        return 1_000_000
    return 1_000


def columns(file: ArchiveFile) -> tuple[str, ...]:
    """The file's column names (written as a header row only where :func:`has_header` says so)."""
    t = file.data_type
    if t.has_interval:
        return _KLINE_COLUMNS
    if t is DataType.TRADES:
        if file.market is Market.SPOT:
            return _SPOT_TRADES
        return _CM_TRADES if file.market is Market.FUTURES_CM else _UM_TRADES
    if t is DataType.AGG_TRADES:
        return _SPOT_AGG_TRADES if file.market is Market.SPOT else _FUTURES_AGG_TRADES
    return _COLUMNS[t]
