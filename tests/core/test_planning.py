"""plan(): auto periods, clipping to yesterday / first and last dates, explicit periods, errors, shards."""

from __future__ import annotations

import collections.abc
import datetime as dt
import inspect
import itertools
import zlib

import pytest

import binance_archive.core.planning as planning
from binance_archive.core import (
    ArchiveFile,
    DataType,
    Interval,
    Market,
    Period,
    Selection,
    files_of_month,
    in_shard,
    parse_shard,
    plan,
    utc_today,
    validate_selection,
)
from binance_archive.errors import ConfigurationError

from ._support import days


def sel(market: str = "spot", data_type: str = "klines", **kw: object) -> Selection:
    base: dict[str, object] = {"markets": market, "data_types": data_type, "symbols": "BTCUSDT"}
    if DataType.parse(data_type).has_interval:
        base["intervals"] = "1h"
    base.update(kw)
    return Selection(**base)  # type: ignore[arg-type]


def spans(files: collections.abc.Iterable[ArchiveFile]) -> list[str]:
    """Files as 'D 2024-01-15' / 'M 2024-02', to compare with hand-written expectations; checks on the way
    that each file's key is the one its fields spell."""
    out = []
    for f in files:
        assert ArchiveFile.from_key(f.key) == f
        assert f.key.endswith(f"-{f.date_text}.zip")
        out.append(f"{f.period.value[0].upper()} {f.date_text}")
    return out


def daily(first: str, last: str) -> list[str]:
    return [f"D {d}" for d in days(dt.date.fromisoformat(first), dt.date.fromisoformat(last))]


# -- auto ------------------------------------------------------------------------------------------------


def test_auto_uses_monthly_files_for_whole_months_and_daily_files_for_the_rest() -> None:
    files = list(plan(sel(start="2024-01-15", end="2024-04-10"), today=dt.date(2024, 6, 1)))
    assert spans(files) == [
        *daily("2024-01-15", "2024-01-31"),
        "M 2024-02",
        "M 2024-03",
        *daily("2024-04-01", "2024-04-10"),
    ]
    assert files[0].key == "data/spot/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2024-01-15.zip"
    assert files[17].key == "data/spot/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2024-02.zip"


def test_auto_whole_range_of_months() -> None:
    files = plan(sel(data_type="trades", start="2023-11", end="2024-02"), today=dt.date(2024, 6, 1))
    assert spans(files) == ["M 2023-11", "M 2023-12", "M 2024-01", "M 2024-02"]


def test_nothing_after_yesterday() -> None:
    # end defaults to yesterday; a month that is not over gets daily files up to yesterday
    assert spans(plan(sel(start="2024-02-20"), today=dt.date(2024, 3, 5))) == daily("2024-02-20", "2024-03-04")
    # an end in the future is clipped too
    assert spans(plan(sel(start="2024-03-01", end="2024-12-31"), today=dt.date(2024, 3, 5))) == daily(
        "2024-03-01", "2024-03-04"
    )


def test_a_month_that_just_ended_is_monthly() -> None:
    assert spans(plan(sel(start="2024-02-01"), today=dt.date(2024, 3, 1))) == ["M 2024-02"]
    assert spans(plan(sel(start="2024-02-01"), today=dt.date(2024, 2, 29))) == daily("2024-02-01", "2024-02-28")


def test_a_range_starting_today_or_later_is_empty() -> None:
    today = dt.date(2024, 3, 5)
    assert list(plan(sel(start=today), today=today)) == []
    assert list(plan(sel(start="2025-01-01"), today=today)) == []


def test_default_today_is_utc_today(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(planning, "utc_today", lambda: dt.date(2024, 3, 5))
    assert spans(plan(sel(start="2024-03-01"))) == daily("2024-03-01", "2024-03-04")


def test_utc_today() -> None:
    now = dt.datetime.now(dt.UTC).date()
    assert utc_today() in {now, now + dt.timedelta(days=1)}


# -- types and intervals that exist in one period only --------------------------------------------------------


def test_funding_rate_is_monthly_only_and_only_for_months_that_are_over() -> None:
    s = sel("um", "fundingRate", start="2024-01-15", end="2024-03-10")
    assert spans(plan(s, today=dt.date(2024, 3, 20))) == ["M 2024-01", "M 2024-02"]
    assert spans(plan(s, today=dt.date(2024, 4, 1))) == ["M 2024-01", "M 2024-02", "M 2024-03"]
    first = next(plan(s, today=dt.date(2024, 4, 1)))
    assert first.key == "data/futures/um/monthly/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2024-01.zip"


@pytest.mark.parametrize("interval", ["3d", "1w", "1mo", "1M"])
def test_spot_intervals_only_monthly_get_monthly_files(interval: str) -> None:
    s = sel(intervals=interval, start="2024-01-10", end="2024-03-31")
    files = list(plan(s, today=dt.date(2024, 6, 1)))
    assert spans(files) == ["M 2024-01", "M 2024-02", "M 2024-03"]
    assert all(f.interval is Interval.parse(interval) for f in files)


def test_futures_weekly_klines_prefer_monthly_files_in_auto() -> None:
    # daily 1w files exist for some symbols only; a daily file of a weekly candle is a partial candle
    s = sel("um", intervals="1w", start="2024-01-10", end="2024-02-29")
    assert spans(plan(s, today=dt.date(2024, 6, 1))) == ["M 2024-01", "M 2024-02"]


def test_book_depth_starts_2023_01_01() -> None:
    s = sel("um", "bookDepth", start="2022-12-20", end="2023-01-03")
    assert spans(plan(s, today=dt.date(2024, 1, 1))) == daily("2023-01-01", "2023-01-03")
    before = sel("um", "bookDepth", start="2022-01-01", end="2022-12-31")
    assert list(plan(before, today=dt.date(2024, 1, 1))) == []


def test_book_depth_is_daily_only_even_for_whole_months() -> None:
    files = list(plan(sel("um", "bookDepth", start="2024-01", end="2024-02"), today=dt.date(2024, 6, 1)))
    assert spans(files) == daily("2024-01-01", "2024-02-29")


def test_metrics_start_2020_09_01() -> None:
    files = plan(sel("cm", "metrics", start="2020-08-30", end="2020-09-02"), today=dt.date(2024, 1, 1))
    assert spans(files) == daily("2020-09-01", "2020-09-02")


def test_option_types_are_daily() -> None:
    s = sel("option", "BVOLIndex", symbols="BTCBVOLUSDT", start="2023-07", end="2023-07")
    files = list(plan(s, today=dt.date(2024, 1, 1)))
    assert spans(files) == daily("2023-07-01", "2023-07-31")
    assert files[0].key == "data/option/daily/BVOLIndex/BTCBVOLUSDT/BTCBVOLUSDT-BVOLIndex-2023-07-01.zip"


# -- retired types ----------------------------------------------------------------------------------------


def test_um_book_ticker_stops_2024_03_30() -> None:
    s = sel("um", "bookTicker", start="2024-03-01", end="2024-05-31")
    assert spans(plan(s, today=dt.date(2025, 1, 1))) == daily("2024-03-01", "2024-03-30")
    whole_year = sel("um", "bookTicker", start="2024-01-01", end="2024-12-31")
    assert spans(plan(whole_year, today=dt.date(2025, 1, 1))) == [
        "M 2024-01",
        "M 2024-02",
        *daily("2024-03-01", "2024-03-30"),
    ]


def test_cm_book_ticker_stops_2024_10_15() -> None:
    s = sel("cm", "bookTicker", start="2024-10-01", end="2024-12-31")
    assert spans(plan(s, today=dt.date(2025, 1, 1))) == daily("2024-10-01", "2024-10-15")
    assert list(plan(sel("cm", "bookTicker", start="2024-10-16"), today=dt.date(2025, 1, 1))) == []


# -- explicit periods -------------------------------------------------------------------------------------


def test_explicit_daily() -> None:
    s = sel(data_type="trades", start="2024-01-30", end="2024-02-29", periods="daily")
    assert spans(plan(s, today=dt.date(2024, 6, 1))) == daily("2024-01-30", "2024-02-29")


def test_explicit_monthly_takes_months_overlapping_the_range_that_are_over() -> None:
    s = sel(data_type="trades", start="2024-01-30", end="2024-03-02", periods="monthly")
    assert spans(plan(s, today=dt.date(2024, 3, 20))) == ["M 2024-01", "M 2024-02"]


def test_explicit_daily_and_monthly_gives_both() -> None:
    s = sel(data_type="trades", start="2024-02-28", end="2024-03-01", periods=["daily", "monthly"])
    assert spans(plan(s, today=dt.date(2024, 6, 1))) == [
        "M 2024-02",
        "D 2024-02-28",
        "D 2024-02-29",
        "M 2024-03",
        "D 2024-03-01",
    ]


def test_explicit_daily_for_a_monthly_only_type_is_refused() -> None:
    with pytest.raises(
        ConfigurationError, match="futures/um fundingRate is not published daily; it is published monthly"
    ):
        plan(sel("um", "fundingRate", start="2024-01-01", periods="daily"))


def test_explicit_monthly_for_a_daily_only_type_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="bookDepth is not published monthly; it is published daily"):
        plan(sel("um", "bookDepth", start="2024-01-01", periods="monthly"))


def test_explicit_daily_3d_on_spot_names_the_daily_intervals() -> None:
    with pytest.raises(ConfigurationError) as info:
        plan(sel(intervals="3d", start="2024-01-01", periods="daily"))
    message = str(info.value)
    assert "spot klines has no 3d interval" in message
    valid = [v.strip() for v in message.split("valid intervals:")[1].split(",")]
    assert valid == ["1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d"]


# -- invalid combinations fail at once, naming the valid choices ----------------------------------------------


def test_spot_funding_rate_names_the_spot_data_types() -> None:
    s = sel(data_type="fundingRate", start="2024-01-01")
    with pytest.raises(ConfigurationError) as info:
        plan(s, today=dt.date(2024, 6, 1))  # raises on the call, before any iteration
    message = str(info.value)
    assert "spot has no fundingRate" in message
    assert {v.strip() for v in message.split("valid data types for spot:")[1].split(",")} == {
        "klines",
        "trades",
        "aggTrades",
    }


@pytest.mark.parametrize("market", ["um", "cm"])
@pytest.mark.parametrize("data_type", ["klines", "markPriceKlines"])
def test_1s_on_futures_names_the_valid_intervals(market: str, data_type: str) -> None:
    s = sel(market, data_type, intervals=["1m", "1s"], start="2024-01-01")
    with pytest.raises(ConfigurationError) as info:
        plan(s)
    message = str(info.value)
    assert f"{data_type} has no 1s interval" in message
    valid = [v.strip() for v in message.split("valid intervals:")[1].split(",")]
    assert valid == ["1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1mo"]


def test_catalog_errors_come_before_missing_symbols_or_start() -> None:
    s = Selection(markets="spot", data_types="fundingRate")
    with pytest.raises(ConfigurationError, match="valid data types for spot"):
        plan(s)


def test_one_bad_combination_among_good_ones_fails_the_whole_plan() -> None:
    s = Selection(markets=["um", "spot"], data_types=["trades", "metrics"], symbols="BTCUSDT", start="2024-01-01")
    with pytest.raises(ConfigurationError, match="spot has no metrics"):
        plan(s)
    with pytest.raises(ConfigurationError, match="spot has no metrics"):
        validate_selection(s)


def test_symbols_and_start_are_required() -> None:
    with pytest.raises(ConfigurationError, match="names no symbols"):
        plan(Selection(markets="spot", data_types="trades", start="2024-01-01"))
    with pytest.raises(ConfigurationError, match="no start date"):
        plan(Selection(markets="spot", data_types="trades", symbols="BTCUSDT"))


def test_plan_returns_an_iterator_not_a_list() -> None:
    result = plan(sel(start="2024-01-01"), today=dt.date(2024, 2, 1))
    assert isinstance(result, collections.abc.Iterator)
    assert not isinstance(result, list | tuple)
    assert iter(result) is result
    assert inspect.isgenerator(result)
    sharded = plan(sel(start="2024-01-01"), today=dt.date(2024, 2, 1), shard=(1, 3))
    assert isinstance(sharded, collections.abc.Iterator)
    assert not isinstance(sharded, list)


# -- order -------------------------------------------------------------------------------------------------


def test_order_market_type_symbol_interval_then_date() -> None:
    s = Selection(
        markets=["um", "cm"],
        data_types=["markPriceKlines", "klines"],
        symbols=["ETHUSDT", "BTCUSDT"],
        intervals=["1d", "1h"],
        start="2024-01-30",
        end="2024-02-02",
    )
    files = list(plan(s, today=dt.date(2024, 6, 1)))
    groups = [
        key
        for key, _ in itertools.groupby(
            files, lambda f: (f.market.value, f.data_type.value, f.symbol, f.interval.value)
        )
    ]  # type: ignore[union-attr]
    assert groups == list(
        itertools.product(
            ["futures/um", "futures/cm"], ["markPriceKlines", "klines"], ["ETHUSDT", "BTCUSDT"], ["1d", "1h"]
        )
    )
    for _, group in itertools.groupby(files, lambda f: (f.market, f.data_type, f.symbol, f.interval)):
        dates = [f.date for f in group]
        assert dates == sorted(dates) == days(dt.date(2024, 1, 30), dt.date(2024, 2, 2))


def test_plans_are_deterministic() -> None:
    s = Selection(
        markets=["spot"], data_types=["trades", "aggTrades"], symbols=["B", "A"], start="2023-10-20", end="2024-02-10"
    )
    assert list(plan(s, today=dt.date(2024, 6, 1))) == list(plan(s, today=dt.date(2024, 6, 1)))


# -- files_of_month ------------------------------------------------------------------------------------------


def test_files_of_month_gives_the_daily_fallback() -> None:
    monthly = ArchiveFile(Market.SPOT, DataType.KLINES, "BTCUSDT", Period.MONTHLY, dt.date(2024, 2, 1), Interval.H1)
    files = list(files_of_month(monthly, today=dt.date(2024, 6, 1)))
    assert spans(files) == daily("2024-02-01", "2024-02-29")
    assert all(
        (f.symbol, f.interval, f.market, f.data_type) == ("BTCUSDT", Interval.H1, Market.SPOT, DataType.KLINES)
        for f in files
    )
    assert spans(files_of_month(monthly, today=dt.date(2024, 2, 10))) == daily("2024-02-01", "2024-02-09")
    with pytest.raises(ConfigurationError, match="is not a monthly file"):
        next(files_of_month(files[0]))


# -- shards ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"), [(None, None), ("0/4", (0, 4)), ("3/4", (3, 4)), ((1, 2), (1, 2)), ([0, 1], (0, 1))]
)
def test_parse_shard(value: object, expected: object) -> None:
    assert parse_shard(value) == expected


@pytest.mark.parametrize("bad", ["4/4", "-1/4", "1/0", "0/0", "a/b", "1", "1/2/3", (2, 2), (1,), 5])
def test_parse_shard_refuses_bad_values(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="invalid shard"):
        parse_shard(bad)


def test_bad_shard_fails_plan_at_once() -> None:
    with pytest.raises(ConfigurationError, match="invalid shard"):
        plan(sel(start="2024-01-01"), shard="5/3")


def test_in_shard_is_crc32_of_the_key_modulo_n() -> None:
    key = "data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-01-01.zip"
    crc = zlib.crc32(key.encode("utf-8"))
    for n in range(1, 8):
        assert [k for k in range(n) if in_shard(key, (k, n))] == [crc % n]


def test_shard_string_and_tuple_agree_and_one_shard_is_everything() -> None:
    s = sel(data_type="trades", symbols=["BTCUSDT", "ETHUSDT"], start="2023-12-15", end="2024-02-10")
    today = dt.date(2024, 6, 1)
    full = list(plan(s, today=today))
    assert list(plan(s, today=today, shard=(0, 1))) == full
    assert list(plan(s, today=today, shard="0/1")) == full
    assert list(plan(s, today=today, shard="1/3")) == list(plan(s, today=today, shard=(1, 3)))
    assert 0 < len(list(plan(s, today=today, shard=(1, 3)))) < len(full)
