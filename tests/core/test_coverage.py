"""What a selection can plan at all: the parts that plan nothing are named, in one line each, from the catalog."""

from __future__ import annotations

import datetime as dt

import pytest

from binance_archive.core import DEFAULT_CATALOG, DataType, Market, Selection, empty_reason, narrow, plan
from binance_archive.errors import ConfigurationError

TODAY = dt.date(2026, 11, 22)


def test_a_selection_that_plans_files_comes_back_as_it_was() -> None:
    sel = Selection(markets=("spot", "um"), data_types=("klines", "aggTrades"), symbols="BTCUSDT", intervals="1h",
                    start="2024-01-01", end="2024-02-10")  # fmt: skip
    narrowed = narrow([sel], today=TODAY)
    assert narrowed.selections == (sel,) and narrowed.reasons == () and not narrowed.empty
    assert narrowed.check() is narrowed


def test_the_parts_that_plan_nothing_are_cut_out_and_named_once() -> None:
    sel = Selection(markets=("um", "cm"), data_types=("bookTicker", "aggTrades"), symbols="BTCUSDT",
                    start="2024-06-01", end="2024-06-02")  # fmt: skip
    narrowed = narrow([sel, sel], today=TODAY)
    # cm book tickers went on until 2024-10-15: only um's are cut.
    assert narrowed.reasons == ("bookTicker on futures/um ended 2024-03-30 (retired)",)
    kept = [(s.markets, s.data_types) for s in narrowed.selections]
    assert kept == [((Market.FUTURES_UM,), (DataType.AGG_TRADES,)), ((Market.FUTURES_CM,), (DataType.BOOK_TICKER,)),
                    ((Market.FUTURES_CM,), (DataType.AGG_TRADES,))] * 2  # fmt: skip
    # What is kept plans exactly the files the whole selection planned.
    assert [f for s in narrowed.selections[:3] for f in plan(s, today=TODAY)] == list(plan(sel, today=TODAY))


def test_intervals_that_plan_nothing_are_cut_from_their_data_type() -> None:
    sel = Selection(markets="spot", data_types="klines", symbols="BTCUSDT", intervals=("1h", "1w", "1mo"),
                    start="2026-11-03")  # fmt: skip
    narrowed = narrow([sel], today=TODAY)
    assert [i.value for s in narrowed.selections for i in s.intervals] == ["1h"]
    assert len(narrowed.reasons) == 2 and all("not over yet (today is 2026-11-22, UTC)" in r for r in narrowed.reasons)


@pytest.mark.parametrize(
    ("selection", "reason"),
    [
        (Selection(markets="um", data_types="bookTicker", start="2024-03-31"), "bookTicker on futures/um ended 2024-03-30 (retired)"),
        (Selection(markets="um", data_types="bookDepth", end="2022-12-31"), "bookDepth on futures/um starts 2023-01-01"),
        (Selection(markets="spot", data_types="trades", start="2026-11-22"), "the start 2026-11-22 is in the future: the newest daily files are yesterday's (2026-11-21, UTC)"),
        (Selection(markets="cm", data_types="fundingRate", start="2026-11-01"), "there are only monthly files of fundingRate on futures/cm, and the month 2026-11 is not over yet (today is 2026-11-22, UTC)"),
    ],
)  # fmt: skip
def test_each_reason_in_one_line(selection: Selection, reason: str) -> None:
    market, data_type = selection.markets[0], selection.data_types[0]
    assert empty_reason(selection, market, data_type, today=TODAY) == reason
    with pytest.raises(ConfigurationError, match="nothing to download: ") as caught:
        narrow([selection], today=TODAY).check()
    assert reason in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "selection",
    [
        Selection(markets="um", data_types="bookTicker", start="2024-03-30"),  # its last day
        Selection(markets="um", data_types="bookTicker"),  # no start: from each series' first file
        Selection(markets="um", data_types="bookDepth", end="2023-01-01"),  # its first day
        Selection(markets="spot", data_types="trades", start="2026-11-21"),  # yesterday
        Selection(markets="um", data_types="fundingRate", start="2026-10-31"),  # October is over
        Selection(markets="spot", data_types="klines", intervals="1s"),
    ],
)
def test_edges_that_still_plan_files_are_not_reasons(selection: Selection) -> None:
    narrowed = narrow([selection], today=TODAY)
    assert narrowed.selections == (selection,) and not narrowed.reasons
    if selection.start is not None:
        assert next(plan(selection.with_(symbols="BTCUSDT"), today=TODAY, catalog=DEFAULT_CATALOG), None) is not None
