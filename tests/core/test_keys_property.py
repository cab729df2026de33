"""Property: key -> from_key -> key round trips for every combination of the built-in catalog."""

from __future__ import annotations

import datetime as dt
from urllib.parse import unquote, urlsplit

from hypothesis import given, settings
from hypothesis import strategies as st

from binance_archive.core import ArchiveFile, Market, Period

from ._support import FAST, catalog_combinations, symbols

COMBOS = catalog_combinations()


def expected_key(market: Market, data_type: object, period: Period, interval: object, symbol: str, day: dt.date) -> str:
    """The key as ARCHIVE.md describes it, assembled by hand."""
    date_text = f"{day:%Y-%m-%d}" if period is Period.DAILY else f"{day:%Y-%m}"
    market_path = {"SPOT": "spot", "FUTURES_UM": "futures/um", "FUTURES_CM": "futures/cm", "OPTION": "option"}[
        market.name
    ]
    type_name = str(data_type)
    if interval is None:
        return f"data/{market_path}/{period.value}/{type_name}/{symbol}/{symbol}-{type_name}-{date_text}.zip"
    return f"data/{market_path}/{period.value}/{type_name}/{symbol}/{interval}/{symbol}-{interval}-{date_text}.zip"


def test_the_catalog_yields_combinations_of_every_market_and_period() -> None:
    assert {m for m, *_ in COMBOS} == set(Market)
    assert {p for _, _, p, _ in COMBOS} == set(Period)
    assert len(COMBOS) == len(set(COMBOS))
    # spot klines alone: 13 daily + 16 monthly intervals (ARCHIVE.md)
    assert sum(1 for m, t, _, _ in COMBOS if m is Market.SPOT and str(t) == "klines") == 29


@settings(FAST, max_examples=40)  # each example checks all ~300 combinations
@given(symbol=symbols, day=st.dates(dt.date(2000, 1, 1), dt.date(2099, 12, 31)))
def test_key_round_trips_for_every_catalog_combination(symbol: str, day: dt.date) -> None:
    for market, data_type, period, interval in COMBOS:
        date = day if period is Period.DAILY else day.replace(day=1)
        f = ArchiveFile(market, data_type, symbol, period, date, interval)  # type: ignore[arg-type]
        key = f.key
        assert key == expected_key(market, data_type, period, interval, symbol, date)
        parsed = ArchiveFile.from_key(key)
        assert parsed == f
        assert parsed.key == key
        assert ArchiveFile.from_key(f.checksum_key) == f
        url = f.url()
        assert url.isascii()
        assert unquote(urlsplit(url).path) == "/" + key
