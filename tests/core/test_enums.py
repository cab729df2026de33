"""Market, DataType, Interval and Period: names, aliases and errors that list the valid choices."""

from __future__ import annotations

import datetime as dt

import pytest

from binance_archive.core import DataType, Interval, Market, Period
from binance_archive.errors import BinanceArchiveError, ConfigurationError

# Written out from ARCHIVE.md, not taken from the code.
MARKET_PATHS = ["spot", "futures/um", "futures/cm", "option"]
DATA_TYPE_NAMES = [
    "klines",
    "trades",
    "aggTrades",
    "bookDepth",
    "bookTicker",
    "fundingRate",
    "metrics",
    "indexPriceKlines",
    "markPriceKlines",
    "premiumIndexKlines",
    "liquidationSnapshot",
    "BVOLIndex",
    "EOHSummary",
]
KLINE_TYPES = {"klines", "indexPriceKlines", "markPriceKlines", "premiumIndexKlines"}
INTERVAL_NAMES = ["1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1mo"]


# -- Market ------------------------------------------------------------------------------------------------


def test_market_values_are_the_archive_paths() -> None:
    assert [m.value for m in Market] == MARKET_PATHS
    assert [str(m) for m in Market] == MARKET_PATHS
    assert [m.path for m in Market] == MARKET_PATHS


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("spot", "spot"),
        ("futures/um", "futures/um"),
        ("futures/cm", "futures/cm"),
        ("option", "option"),
        ("futures_um", "futures/um"),
        ("um", "futures/um"),
        ("futures_cm", "futures/cm"),
        ("cm", "futures/cm"),
        ("options", "option"),
        ("SPOT", "spot"),
        ("  UM ", "futures/um"),
        ("Futures_CM", "futures/cm"),
    ],
)
def test_market_parse_accepts_paths_and_aliases(text: str, expected: str) -> None:
    assert Market.parse(text).value == expected


def test_market_parse_returns_members_unchanged() -> None:
    for market in Market:
        assert Market.parse(market) is market


@pytest.mark.parametrize("bad", ["futures", "usd-m", "margin", "", "spot/", 3, None])
def test_market_parse_error_names_valid_markets(bad: object) -> None:
    with pytest.raises(ConfigurationError) as info:
        Market.parse(bad)
    message = str(info.value)
    assert repr(bad) in message
    for path in MARKET_PATHS:
        assert path in message


def test_market_is_futures() -> None:
    assert {m.value for m in Market if m.is_futures} == {"futures/um", "futures/cm"}


# -- DataType ----------------------------------------------------------------------------------------------


def test_data_type_values_are_the_archive_names() -> None:
    assert sorted(t.value for t in DataType) == sorted(DATA_TYPE_NAMES)
    assert all(str(t) == t.value for t in DataType)


@pytest.mark.parametrize("name", DATA_TYPE_NAMES)
def test_data_type_parse_exact_and_case_insensitive(name: str) -> None:
    assert DataType.parse(name).value == name
    assert DataType.parse(name.lower()).value == name
    assert DataType.parse(name.upper()).value == name


def test_only_kline_types_have_an_interval() -> None:
    assert {t.value for t in DataType if t.has_interval} == KLINE_TYPES


@pytest.mark.parametrize("bad", ["kline", "agg_trades", "funding", "depth", ""])
def test_data_type_parse_error_names_valid_types(bad: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        DataType.parse(bad)
    message = str(info.value)
    assert "data type" in message
    assert repr(bad) in message
    for name in DATA_TYPE_NAMES:
        assert name in message


# -- Interval ----------------------------------------------------------------------------------------------


def test_interval_values_in_order() -> None:
    assert [i.value for i in Interval] == INTERVAL_NAMES
    assert [str(i) for i in Interval] == INTERVAL_NAMES


@pytest.mark.parametrize("name", INTERVAL_NAMES)
def test_interval_parse_each_name(name: str) -> None:
    assert Interval.parse(name).value == name


def test_1M_is_an_input_alias_of_1mo_and_never_written() -> None:
    month = Interval.parse("1M")
    assert month.value == "1mo"
    assert str(month) == "1mo"
    assert Interval.parse(" 1M ") is month
    assert all(i.value != "1M" for i in Interval)
    # case matters: 1m is a minute, 1M a month
    assert Interval.parse("1m").value == "1m"
    assert Interval.parse("1m") is not month


@pytest.mark.parametrize("bad", ["2m", "1H", "1D", "1y", "60", "", "1 m"])
def test_interval_parse_error_names_valid_intervals(bad: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Interval.parse(bad)
    message = str(info.value)
    assert "interval" in message
    assert repr(bad) in message
    for name in INTERVAL_NAMES:
        assert name in message
    assert "1M," not in message  # the alias is not offered as a spelling


def test_interval_seconds() -> None:
    expected = {"1s": 1, "1m": 60, "15m": 900, "1h": 3600, "12h": 43_200, "1d": 86_400, "3d": 259_200}
    expected |= {"1w": 604_800, "1mo": 30 * 86_400}
    for name, seconds in expected.items():
        assert Interval.parse(name).seconds == seconds
    ordered = [i.seconds for i in Interval]
    assert ordered == sorted(ordered)


def test_longer_than_a_day() -> None:
    assert {i.value for i in Interval if i.longer_than_a_day} == {"3d", "1w", "1mo"}


# -- Period ------------------------------------------------------------------------------------------------


def test_period_values_and_parse() -> None:
    assert [p.value for p in Period] == ["daily", "monthly"]
    assert Period.parse("daily") is Period.DAILY
    assert Period.parse("Monthly") is Period.MONTHLY
    assert Period.parse(Period.MONTHLY) is Period.MONTHLY


def test_period_format_date() -> None:
    day = dt.date(2024, 2, 9)
    assert Period.DAILY.format_date(day) == "2024-02-09"
    assert Period.MONTHLY.format_date(day) == "2024-02"


@pytest.mark.parametrize("bad", ["weekly", "day", "auto", "D"])
def test_period_parse_error_names_valid_periods(bad: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Period.parse(bad)
    assert "daily" in str(info.value)
    assert "monthly" in str(info.value)


def test_configuration_error_is_a_value_error_and_library_error() -> None:
    with pytest.raises(ValueError, match="valid choices"):
        Market.parse("nope")
    assert issubclass(ConfigurationError, BinanceArchiveError)
