"""Selection: string conversion, dates, periods, and the errors raised on construction."""

from __future__ import annotations

import datetime as dt

import pytest

from binance_archive.core import AUTO, DataType, Interval, Market, Period, Selection, parse_date
from binance_archive.errors import ConfigurationError

ALL_INTERVALS = ["1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1mo"]


def sel(**kw: object) -> Selection:
    base: dict[str, object] = {"markets": "spot", "data_types": "trades", "symbols": "BTCUSDT", "start": "2024-01-01"}
    base.update(kw)
    return Selection(**base)  # type: ignore[arg-type]


def test_strings_are_converted() -> None:
    s = Selection(
        markets=["um", "futures_cm"],
        data_types=["klines", "aggtrades"],
        symbols=[" btcusdt", "ETHUSDT", "btcusdt"],
        intervals=["1h", "1M"],
        start="2024-01-15",
        end="2024-03-31",
    )
    assert s.markets == (Market.FUTURES_UM, Market.FUTURES_CM)
    assert s.data_types == (DataType.KLINES, DataType.AGG_TRADES)
    assert s.symbols == ("BTCUSDT", "ETHUSDT")  # upper-cased, stripped, de-duplicated, order kept
    assert s.intervals == (Interval.H1, Interval.MO1)
    assert s.start == dt.date(2024, 1, 15)
    assert s.end == dt.date(2024, 3, 31)
    assert s.periods == AUTO


def test_single_values_and_members() -> None:
    s = Selection(markets=Market.SPOT, data_types=DataType.KLINES, symbols="btcusdt", intervals=Interval.M1)
    assert (s.markets, s.data_types, s.symbols, s.intervals) == (
        (Market.SPOT,),
        (DataType.KLINES,),
        ("BTCUSDT",),
        (Interval.M1,),
    )
    assert s.start is None
    assert s.end is None


def test_month_dates() -> None:
    s = sel(start="2024-02", end="2024-02")
    assert s.start == dt.date(2024, 2, 1)
    assert s.end == dt.date(2024, 2, 29)  # a month as the end means its last day (leap year)
    assert sel(start="2023-02", end="2023-02").end == dt.date(2023, 2, 28)
    assert sel(end="2024-12").end == dt.date(2024, 12, 31)


def test_dates_and_datetimes() -> None:
    s = sel(start=dt.datetime(2024, 1, 2, 23, 59), end=dt.date(2024, 1, 3))
    assert s.start == dt.date(2024, 1, 2)
    assert type(s.start) is dt.date
    assert s.end == dt.date(2024, 1, 3)
    assert parse_date(None) is None
    assert parse_date("") is None
    assert parse_date(" 2024-05-06 ") == dt.date(2024, 5, 6)


@pytest.mark.parametrize("bad", ["2024-02-30", "2024-1-1", "20240101", "2024/01/01", "yesterday", "2024-13", 20240101])
def test_bad_dates_name_the_accepted_forms(bad: object) -> None:
    with pytest.raises(ConfigurationError) as info:
        sel(start=bad)
    message = str(info.value)
    assert "start date" in message
    assert repr(bad) in message
    assert "YYYY-MM-DD" in message
    assert "YYYY-MM" in message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, AUTO),
        ("auto", AUTO),
        (" AUTO ", AUTO),
        ([], AUTO),
        ("daily", (Period.DAILY,)),
        (["monthly"], (Period.MONTHLY,)),
        (["monthly", "daily", "monthly"], (Period.DAILY, Period.MONTHLY)),
        (Period.MONTHLY, (Period.MONTHLY,)),
        ((Period.DAILY,), (Period.DAILY,)),
    ],
)
def test_periods(value: object, expected: object) -> None:
    assert sel(periods=value).periods == expected


def test_bad_period_names_the_valid_ones() -> None:
    with pytest.raises(ConfigurationError, match="unknown period 'weekly'; valid choices: daily, monthly"):
        sel(periods="weekly")


def test_no_market_names_the_valid_markets() -> None:
    with pytest.raises(ConfigurationError) as info:
        sel(markets=[])
    assert "no market" in str(info.value)
    for path in ["spot", "futures/um", "futures/cm", "option"]:
        assert path in str(info.value)


def test_no_data_type_names_the_valid_types() -> None:
    with pytest.raises(ConfigurationError) as info:
        sel(data_types=None)
    assert "no data type" in str(info.value)
    for name in ["klines", "aggTrades", "fundingRate", "bookDepth", "BVOLIndex", "EOHSummary"]:
        assert name in str(info.value)


def test_unknown_market_and_data_type() -> None:
    with pytest.raises(ConfigurationError, match=r"unknown market 'usdm-perp'.*futures/um"):
        sel(markets="usdm-perp")
    with pytest.raises(ConfigurationError, match=r"unknown data type 'candles'.*klines"):
        sel(data_types="candles")


def test_unknown_interval_names_the_valid_intervals() -> None:
    with pytest.raises(ConfigurationError) as info:
        sel(data_types="klines", intervals=["1h", "7m"])
    message = str(info.value)
    assert "'7m'" in message
    for name in ALL_INTERVALS:
        assert name in message


def test_kline_types_need_an_interval() -> None:
    with pytest.raises(ConfigurationError) as info:
        sel(data_types=["klines", "trades"])
    message = str(info.value)
    assert "klines need at least one interval" in message
    for name in ALL_INTERVALS:
        assert name in message


def test_intervals_without_a_kline_type_are_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"intervals 1h were given.*\(trades, aggTrades\)"):
        sel(data_types=["trades", "aggTrades"], intervals="1h")


def test_end_before_start() -> None:
    with pytest.raises(ConfigurationError, match="end date 2024-01-01 is before the start date 2024-01-02"):
        sel(start="2024-01-02", end="2024-01-01")
    assert sel(start="2024-01-02", end="2024-01-02").end == dt.date(2024, 1, 2)


def test_bad_symbol_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="path separator"):
        sel(symbols=["BTCUSDT", "eth/usdt"])


def test_intervals_for() -> None:
    s = sel(data_types=["klines", "trades"], intervals=["1h", "1d"])
    assert s.intervals_for(DataType.KLINES) == (Interval.H1, Interval.D1)
    assert s.intervals_for(DataType.TRADES) == (None,)


def test_with_converts_and_validates() -> None:
    s = sel()
    changed = s.with_(symbols=["ethusdt"], end="2024-02")
    assert changed.symbols == ("ETHUSDT",)
    assert changed.end == dt.date(2024, 2, 29)
    assert s.symbols == ("BTCUSDT",)  # the original is unchanged
    with pytest.raises(ConfigurationError):
        s.with_(end="2023-12-31")
