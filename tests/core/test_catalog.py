"""The built-in catalog against ARCHIVE.md's availability matrix, and the catalog's JSON round trip."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from binance_archive.core import DEFAULT_CATALOG, Availability, Catalog, DataType, Interval, Market, Period
from binance_archive.errors import ConfigurationError

# ARCHIVE.md, written out by hand.
SPOT_DAILY_KLINES = ["1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d"]
SPOT_MONTHLY_KLINES = [*SPOT_DAILY_KLINES, "3d", "1w", "1mo"]
FUTURES_KLINES = ["1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1mo"]
FUTURES_KLINE_TYPES = ["klines", "indexPriceKlines", "markPriceKlines", "premiumIndexKlines"]
FUTURES_TYPES = {
    *FUTURES_KLINE_TYPES,
    "trades",
    "aggTrades",
    "bookDepth",
    "metrics",
    "fundingRate",
    "bookTicker",
    "liquidationSnapshot",
}
FUTURES = ["futures/um", "futures/cm"]


def entry(market: str, data_type: str) -> Availability:
    return DEFAULT_CATALOG.lookup(market, data_type)


def periods(e: Availability) -> set[str]:
    return {p.value for p in e.periods}


def names(intervals: tuple[Interval, ...]) -> list[str]:
    return [i.value for i in intervals]


# -- the built-in matrix -----------------------------------------------------------------------------------


def test_markets() -> None:
    assert [m.value for m in DEFAULT_CATALOG.markets()] == ["spot", "futures/um", "futures/cm", "option"]


def test_spot_has_klines_trades_and_aggtrades_only() -> None:
    assert {t.value for t in DEFAULT_CATALOG.data_types(Market.SPOT)} == {"klines", "trades", "aggTrades"}
    for missing in ["bookDepth", "bookTicker", "fundingRate", "metrics"]:
        assert DEFAULT_CATALOG.get(Market.SPOT, DataType.parse(missing)) is None


def test_spot_kline_intervals() -> None:
    klines = entry("spot", "klines")
    assert periods(klines) == {"daily", "monthly"}
    assert names(klines.intervals[Period.DAILY]) == SPOT_DAILY_KLINES
    assert names(klines.intervals[Period.MONTHLY]) == SPOT_MONTHLY_KLINES
    assert not klines.has(Period.DAILY, Interval.parse("3d"))
    assert klines.has(Period.MONTHLY, Interval.parse("1w"))
    assert names(klines.all_intervals()) == SPOT_MONTHLY_KLINES


@pytest.mark.parametrize("name", ["trades", "aggTrades"])
def test_spot_trades_daily_and_monthly_without_interval(name: str) -> None:
    e = entry("spot", name)
    assert periods(e) == {"daily", "monthly"}
    assert all(ivs == () for ivs in e.intervals.values())
    assert not e.retired


@pytest.mark.parametrize("market", FUTURES)
def test_futures_data_types(market: str) -> None:
    assert {t.value for t in DEFAULT_CATALOG.data_types(Market.parse(market))} == FUTURES_TYPES


@pytest.mark.parametrize("market", FUTURES)
@pytest.mark.parametrize("name", FUTURES_KLINE_TYPES)
def test_futures_kline_types_have_no_1s(market: str, name: str) -> None:
    e = entry(market, name)
    assert periods(e) == {"daily", "monthly"}
    for period in Period:
        assert names(e.intervals[period]) == FUTURES_KLINES
        assert not e.has(period, Interval.S1)


@pytest.mark.parametrize("market", FUTURES)
def test_futures_trades_and_aggtrades(market: str) -> None:
    for name in ["trades", "aggTrades"]:
        assert periods(entry(market, name)) == {"daily", "monthly"}


def test_um_book_depth_daily_only_from_2023() -> None:
    e = entry("futures/um", "bookDepth")
    assert periods(e) == {"daily"}
    assert e.first_date == dt.date(2023, 1, 1)
    assert not e.retired


@pytest.mark.parametrize("market", FUTURES)
def test_metrics_daily_only_from_september_2020(market: str) -> None:
    e = entry(market, "metrics")
    assert periods(e) == {"daily"}
    assert e.first_date == dt.date(2020, 9, 1)


@pytest.mark.parametrize("market", FUTURES)
def test_funding_rate_monthly_only(market: str) -> None:
    e = entry(market, "fundingRate")
    assert periods(e) == {"monthly"}
    assert not e.has(Period.DAILY)


@pytest.mark.parametrize(
    ("market", "last"), [("futures/um", dt.date(2024, 3, 30)), ("futures/cm", dt.date(2024, 10, 15))]
)
def test_book_ticker_retired_with_last_date(market: str, last: dt.date) -> None:
    e = entry(market, "bookTicker")
    assert e.retired
    assert e.last_date == last
    assert periods(e) == {"daily", "monthly"}


@pytest.mark.parametrize("market", FUTURES)
def test_liquidation_snapshot_retired(market: str) -> None:
    e = entry(market, "liquidationSnapshot")
    assert e.retired
    assert periods(e) == {"daily"}


def test_only_book_ticker_and_liquidation_snapshot_are_retired() -> None:
    retired = {(e.market.value, e.data_type.value) for e in DEFAULT_CATALOG if e.retired}
    assert retired == {(m, t) for m in FUTURES for t in ["bookTicker", "liquidationSnapshot"]}


def test_option_bvol_index_and_eoh_summary_daily_only() -> None:
    assert {t.value for t in DEFAULT_CATALOG.data_types(Market.OPTION)} == {"BVOLIndex", "EOHSummary"}
    for name in ["BVOLIndex", "EOHSummary"]:
        assert periods(entry("option", name)) == {"daily"}


def test_every_entry_is_consistent() -> None:
    for e in DEFAULT_CATALOG:
        for period, intervals in e.intervals.items():
            assert bool(intervals) == e.data_type.has_interval, (e.market, e.data_type, period)
        if e.first_date and e.last_date:
            assert e.first_date <= e.last_date


def test_lookup_accepts_strings_and_aliases() -> None:
    assert DEFAULT_CATALOG.lookup("um", "FUNDINGRATE") is DEFAULT_CATALOG.get(Market.FUTURES_UM, DataType.FUNDING_RATE)


def test_lookup_error_names_the_valid_data_types() -> None:
    with pytest.raises(ConfigurationError) as info:
        DEFAULT_CATALOG.lookup("spot", "fundingRate")
    message = str(info.value)
    assert "spot has no fundingRate" in message
    valid = message.split("valid data types for spot:")[1]
    assert {s.strip() for s in valid.split(",")} == {"klines", "trades", "aggTrades"}


def test_lookup_error_for_option_klines() -> None:
    with pytest.raises(ConfigurationError, match="valid data types for option: BVOLIndex, EOHSummary"):
        DEFAULT_CATALOG.lookup("option", "klines")


# -- JSON round trip ---------------------------------------------------------------------------------------


def test_json_round_trip_of_the_default_catalog() -> None:
    text = DEFAULT_CATALOG.to_json()
    loaded = Catalog.from_json(text)
    assert loaded == DEFAULT_CATALOG
    assert loaded.to_json() == text
    assert Catalog.from_json(text.encode("utf-8")) == DEFAULT_CATALOG
    assert Catalog.from_json(DEFAULT_CATALOG.to_json(indent=None)) == DEFAULT_CATALOG


def test_json_content_is_readable() -> None:
    data = json.loads(DEFAULT_CATALOG.to_json())
    assert data["format"] == "binance_archive.catalog/1"
    by_pair = {(e["market"], e["data_type"]): e for e in data["entries"]}
    assert by_pair[("futures/um", "fundingRate")]["periods"] == {"monthly": []}
    assert by_pair[("futures/um", "bookTicker")]["last_date"] == "2024-03-30"
    assert by_pair[("futures/um", "bookTicker")]["retired"] is True
    assert by_pair[("spot", "klines")]["periods"]["monthly"][-1] == "1mo"
    assert '"1M"' not in DEFAULT_CATALOG.to_json()


def test_json_round_trip_keeps_edits() -> None:
    custom = DEFAULT_CATALOG.replace(
        [
            Availability(Market.SPOT, DataType.KLINES, {Period.DAILY: (Interval.H1,)}, note="only 1h — 币安"),
            Availability(Market.SPOT, DataType.BOOK_TICKER, {Period.DAILY: ()}, first_date=dt.date(2021, 1, 1)),
        ]
    )
    assert len(custom) == len(DEFAULT_CATALOG) + 1
    assert custom.lookup("spot", "klines").intervals == {Period.DAILY: (Interval.H1,)}
    assert custom.data_types(Market.SPOT)[0] is DataType.KLINES  # replaced in place
    assert custom.data_types(Market.SPOT)[-1] is DataType.BOOK_TICKER  # added at the end
    loaded = Catalog.from_json(custom.to_json())
    assert loaded == custom
    assert loaded != DEFAULT_CATALOG
    assert loaded.lookup("spot", "klines").note == "only 1h — 币安"


def test_hand_written_catalog_json_loads() -> None:
    text = """
    {"format": "binance_archive.catalog/1", "entries": [
      {"market": "um", "data_type": "klines", "periods": {"daily": ["1h", "1M"], "monthly": ["1d"]},
       "first_date": "2019-12-31"},
      {"market": "futures/um", "data_type": "bookTicker", "periods": {"daily": []},
       "last_date": "2024-03-30", "retired": true, "note": "gone"}
    ]}
    """
    catalog = Catalog.from_json(text)
    klines = catalog.lookup("futures/um", "klines")
    assert names(klines.intervals[Period.DAILY]) == ["1h", "1mo"]
    assert klines.first_date == dt.date(2019, 12, 31)
    ticker = catalog.lookup("futures/um", "bookTicker")
    assert ticker.retired
    assert ticker.last_date == dt.date(2024, 3, 30)
    assert ticker.note == "gone"


def _one(**entry: object) -> str:
    base: dict[str, object] = {"market": "spot", "data_type": "trades", "periods": {"daily": []}}
    base.update(entry)
    return json.dumps({"entries": [base]})


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "JSON object with 'entries'"),
        ('"spot"', "JSON object with 'entries'"),
        ("{}", "no entries"),
        ('{"entries": []}', "no entries"),
        ('{"format": "other/2", "entries": []}', "unknown catalog format 'other/2'"),
        (_one(colour="red"), "unknown catalog field(s) ['colour']"),
        (json.dumps({"entries": [{"market": "spot", "data_type": "trades"}]}), "lacks 'periods'"),
        (json.dumps({"entries": [{"data_type": "trades", "periods": {}}]}), "lacks 'market'"),
        (_one(market="margin"), "unknown market 'margin'"),
        (_one(data_type="candles"), "unknown data type 'candles'"),
        (_one(periods={"weekly": []}), "unknown period 'weekly'"),
        (_one(periods={}), "no period given"),
        (_one(periods=["daily"]), "'periods' must map daily/monthly"),
        (_one(periods={"daily": ["1m"]}), "trades daily: takes no intervals"),
        (_one(data_type="klines", periods={"daily": []}), "klines daily: needs intervals"),
        (_one(data_type="klines", periods={"daily": ["7m"]}), "unknown interval '7m'"),
        (_one(first_date="2024-13-01"), "invalid date '2024-13-01'"),
        (_one(last_date=20240101), "invalid date 20240101"),
        (_one(retired="false"), "must be true or false"),
        (json.dumps({"entries": [json.loads(_one())["entries"][0]] * 2}), "lists spot trades twice"),
    ],
)
def test_bad_catalog_json_raises_naming_the_problem(text: str, why: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Catalog.from_json(text)
    assert why in str(info.value)


def test_catalog_refuses_duplicate_entries_directly() -> None:
    e = DEFAULT_CATALOG.lookup("spot", "trades")
    with pytest.raises(ConfigurationError, match="twice"):
        Catalog([e, e])


def test_a_catalog_travels_to_other_processes_by_pickle() -> None:
    """A run's settings (a custom catalog among them) go to the processes of ``--processes`` and to cluster workers."""
    import pickle

    custom = Catalog.from_json(DEFAULT_CATALOG.to_json())
    for catalog in (DEFAULT_CATALOG, custom):
        copy = pickle.loads(pickle.dumps(catalog))
        assert copy == catalog and hash(copy) == hash(catalog)
        spot = copy.lookup(Market.SPOT, DataType.KLINES)
        assert spot.has(Period.DAILY, Interval.M1)
        with pytest.raises(TypeError):
            spot.intervals[Period.DAILY] = ()  # type: ignore[index]  # still read-only
