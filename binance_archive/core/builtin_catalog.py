"""The real archive's availability matrix, as documented in the project's ARCHIVE notes.

Sources are Binance's binance-public-data repository and its issue tracker (issue numbers in the notes).
"""

from __future__ import annotations

import datetime as dt

from binance_archive.core.catalog import Availability
from binance_archive.core.datatypes import DataType as T
from binance_archive.core.intervals import Interval as I
from binance_archive.core.markets import Market as M
from binance_archive.core.periods import Period as P

_SPOT_DAILY = (I.S1, I.M1, I.M3, I.M5, I.M15, I.M30, I.H1, I.H2, I.H4, I.H6, I.H8, I.H12, I.D1)
_SPOT_MONTHLY = (*_SPOT_DAILY, I.D3, I.W1, I.MO1)
_FUTURES = tuple(i for i in I if i is not I.S1)
_NONE: tuple[I, ...] = ()
_BOTH = {P.DAILY: _NONE, P.MONTHLY: _NONE}
_DAILY = {P.DAILY: _NONE}
_KLINE_NOTE = "daily 3d, 1w and 1mo files exist for some symbols only"


def _futures(market: M) -> list[Availability]:
    cm = market is M.FUTURES_CM
    kline_types = (T.KLINES, T.INDEX_PRICE_KLINES, T.MARK_PRICE_KLINES, T.PREMIUM_INDEX_KLINES)
    entries = [Availability(market, t, {P.DAILY: _FUTURES, P.MONTHLY: _FUTURES}, note=_KLINE_NOTE) for t in kline_types]
    entries += [
        Availability(market, T.TRADES, _BOTH),
        Availability(market, T.AGG_TRADES, _BOTH),
        Availability(market, T.BOOK_DEPTH, _DAILY, first_date=dt.date(2023, 1, 1)),
        Availability(market, T.METRICS, _DAILY, first_date=dt.date(2020, 9, 1), note="5-minute rows"),
        Availability(market, T.FUNDING_RATE, {P.MONTHLY: _NONE}, note="monthly only: the daily prefix is empty"),
        Availability(
            market,
            T.BOOK_TICKER,
            _BOTH,
            last_date=dt.date(2024, 10, 15) if cm else dt.date(2024, 3, 30),
            retired=True,
            note="cm daily files stopped 2024-10-15" if cm else "last daily file 2024-03-30 (#334, #380)",
        ),
        Availability(
            market,
            T.LIQUIDATION_SNAPSHOT,
            _DAILY,
            retired=True,
            note="no longer provided (#361)" if cm else "removed from the archive (#337, #420)",
        ),
    ]
    return entries


BUILTIN_ENTRIES: tuple[Availability, ...] = (
    Availability(M.SPOT, T.KLINES, {P.DAILY: _SPOT_DAILY, P.MONTHLY: _SPOT_MONTHLY}),
    Availability(M.SPOT, T.TRADES, _BOTH),
    Availability(M.SPOT, T.AGG_TRADES, _BOTH),
    *_futures(M.FUTURES_UM),
    *_futures(M.FUTURES_CM),
    Availability(M.OPTION, T.BVOL_INDEX, _DAILY, note="symbols BTCBVOLUSDT and ETHBVOLUSDT"),
    Availability(M.OPTION, T.EOH_SUMMARY, _DAILY, note="appears frozen since 2023-10"),
)
