"""The older tools' ``availability_matrix`` JSON (with url_pattern/filename_pattern) loads as a catalog."""

from __future__ import annotations

import copy
import datetime as dt
import json
from typing import Any

import pytest

from binance_archive.core import Catalog, DataType, Interval, Market, Period
from binance_archive.errors import ConfigurationError

BASE = "https://data.binance.vision/data"

# A realistic file of an older collection tool: market -> data type -> description, mixing the three ways of
# naming periods (a list, flags, per-period objects) and carrying the URL/file-name patterns it built keys with.
LEGACY = {
    "version": "2024.04",
    "source": "https://github.com/binance/binance-public-data",
    "availability_matrix": {
        "spot": {
            "klines": {
                "periods": ["daily", "monthly"],
                "intervals": {
                    "daily": ["1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d"],
                    "monthly": ["1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d",
                                "1w", "1M"],
                },
                "url_pattern": BASE + "/spot/{period}/klines/{symbol}/{interval}/{symbol}-{interval}-{date}.zip",
                "filename_pattern": "{symbol}-{interval}-{date}.zip",
                "start_date": "2017-08-17",
            },
            "trades": {
                "daily": True,
                "monthly": True,
                "url_pattern": BASE + "/spot/{period}/trades/{symbol}/{symbol}-trades-{date}.zip",
                "filename_pattern": "{symbol}-trades-{date}.zip",
            },
            "aggTrades": {
                "periods": "daily",
                "url_pattern": BASE + "/{market}/{period}/aggTrades/{symbol}/{symbol}-aggTrades-{date}.zip",
                "description": "aggregated trades",
            },
        },
        "futures_um": {
            "klines": {
                "daily": {"intervals": ["1m", "5m", "1h", "1d"]},
                "monthly": {"intervals": ["1m", "5m", "1h", "1d", "1M"]},
                "url_pattern": BASE + "/futures/um/{period}/klines/{SYMBOL}/{interval}/{SYMBOL}-{interval}-{date}.zip",
            },
            "fundingRate": {
                "periods": ["monthly"],
                "url_pattern": BASE + "/futures/um/monthly/fundingRate/{symbol}/{symbol}-fundingRate-{date}.zip",
                "filename_pattern": "{symbol}-fundingRate-{date}.zip",
            },
            "bookDepth": {"periods": ["daily"], "first_date": "2023-01-01"},
            "bookTicker": {
                "periods": ["daily", "monthly"],
                "end_date": "2024-03-30",
                "retired": True,
                "note": "retired (#334)",
            },
        },
        "cm": {
            "indexPriceKlines": {
                "periods": ["daily"],
                "intervals": ["1h", "1d"],
                # upper-case placeholders, as ARCHIVE.md writes {SYMBOL}
                "url_pattern": BASE + "/futures/cm/daily/indexPriceKlines/{SYMBOL}/{INTERVAL}/"
                               "{SYMBOL}-{INTERVAL}-{DATE}.zip",
            },
        },
        "options": {
            "BVOLIndex": {"daily": True, "monthly": False},
        },
    },
}  # fmt: skip


def load(data: Any) -> Catalog:
    return Catalog.from_json(json.dumps(data))


def test_legacy_matrix_loads() -> None:
    catalog = load(LEGACY)
    pairs = {(e.market.value, e.data_type.value) for e in catalog}
    assert pairs == {
        ("spot", "klines"),
        ("spot", "trades"),
        ("spot", "aggTrades"),
        ("futures/um", "klines"),
        ("futures/um", "fundingRate"),
        ("futures/um", "bookDepth"),
        ("futures/um", "bookTicker"),
        ("futures/cm", "indexPriceKlines"),
        ("option", "BVOLIndex"),
    }


def test_legacy_matrix_values() -> None:
    catalog = load(LEGACY)
    spot_klines = catalog.lookup("spot", "klines")
    assert [i.value for i in spot_klines.intervals[Period.MONTHLY]][-3:] == ["3d", "1w", "1mo"]  # 1M read as 1mo
    assert len(spot_klines.intervals[Period.DAILY]) == 13
    assert spot_klines.first_date == dt.date(2017, 8, 17)  # start_date accepted
    assert catalog.lookup("spot", "trades").periods == (Period.DAILY, Period.MONTHLY)
    aggs = catalog.lookup("spot", "aggTrades")
    assert aggs.periods == (Period.DAILY,)
    assert aggs.note == "aggregated trades"
    um_klines = catalog.lookup("um", "klines")
    assert um_klines.intervals[Period.DAILY] == tuple(Interval.parse(i) for i in ["1m", "5m", "1h", "1d"])
    assert um_klines.intervals[Period.MONTHLY][-1] is Interval.MO1
    assert catalog.lookup("um", "fundingRate").periods == (Period.MONTHLY,)
    assert catalog.lookup("um", "bookDepth").first_date == dt.date(2023, 1, 1)
    ticker = catalog.lookup("um", "bookTicker")
    assert ticker.retired
    assert ticker.last_date == dt.date(2024, 3, 30)
    assert ticker.note == "retired (#334)"
    cm = catalog.lookup("cm", "indexPriceKlines")
    assert cm.intervals == {Period.DAILY: (Interval.H1, Interval.D1)}
    assert catalog.lookup("option", "BVOLIndex").periods == (Period.DAILY,)


def test_legacy_matrix_without_wrapper_key() -> None:
    catalog = Catalog.from_dict(LEGACY["availability_matrix"])
    assert catalog.get(Market.FUTURES_UM, DataType.FUNDING_RATE) is not None
    assert len(catalog) == 9


def test_legacy_matrix_converts_to_the_native_format() -> None:
    catalog = load(LEGACY)
    assert Catalog.from_json(catalog.to_json()) == catalog
    assert '"1M"' not in catalog.to_json()


def _with(market: str, data_type: str, spec: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(LEGACY)
    data["availability_matrix"].setdefault(market, {})[data_type] = spec
    return data


@pytest.mark.parametrize(
    ("data", "why"),
    [
        ({"availability_matrix": ["spot"]}, "must map markets to data types"),
        ({"availability_matrix": {"margin": {}}}, "unknown market 'margin'"),
        ({"availability_matrix": {"spot": ["klines"]}}, "availability_matrix['spot'] must map data types"),
        ({"availability_matrix": {"spot": {"candles": {"daily": True}}}}, "unknown data type 'candles'"),
        ({"availability_matrix": {"spot": {"trades": "daily"}}}, "['trades'] must be an object"),
        (_with("spot", "trades", {"daily": True, "colour": "red"}), "unknown key(s) ['colour']"),
        (_with("spot", "trades", {"url_pattern": "x/{symbol}"}), "names no period"),
        (_with("spot", "trades", {"periods": ["weekly"]}), "unknown period 'weekly'"),
        (_with("spot", "klines", {"periods": ["daily"]}), "klines needs 'intervals' for daily"),
        (_with("spot", "klines", {"periods": ["daily"], "intervals": ["2m"]}), "unknown interval '2m'"),
        (_with("spot", "trades", {"periods": ["daily"], "intervals": ["1m"]}), "trades has no intervals"),
        (
            _with("spot", "trades", {"daily": True, "url_pattern": BASE + "/spot/daily/trades/{symbol}/{interval}/x"}),
            "disagrees with the archive, whose trades layout does not contain {interval}",
        ),
        (
            _with("spot", "klines", {"daily": True, "intervals": ["1m"], "filename_pattern": "{symbol}-{date}.zip"}),
            "disagrees with the archive, whose klines layout contains {interval}",
        ),
        (
            _with("spot", "trades", {"daily": True, "filename_pattern": "BTCUSDT-trades-{date}.zip"}),
            "must contain {symbol}",
        ),
        (_with("spot", "trades", {"daily": True, "url_pattern": 42}), "must contain {symbol}"),
        (
            _with("futures_cm", "trades", {"daily": True, "url_pattern": BASE + "/futures/um/daily/trades/{symbol}/x"}),
            "names neither 'futures/cm' nor {market}",
        ),
        (_with("spot", "trades", {"daily": True, "first_date": "yesterday"}), "invalid date 'yesterday'"),
        (_with("spot", "trades", {"daily": True, "retired": "no"}), "must be true or false"),
        (
            {"availability_matrix": {"um": {"trades": {"daily": True}}, "futures_um": {"trades": {"daily": True}}}},
            "twice",
        ),
        ({"availability_matrix": {}}, "no entries"),
    ],
)
def test_bad_legacy_matrices_raise_naming_the_problem(data: Any, why: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        load(data)
    assert why in str(info.value)
