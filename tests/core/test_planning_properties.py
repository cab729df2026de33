"""Properties of plan(): auto plans cover every day exactly once; shards partition the plan and are stable."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import zlib
from collections import Counter

import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from binance_archive.core import DEFAULT_CATALOG, ArchiveFile, Availability, Market, Period, Selection, in_shard, plan

from ._support import FAST, LONGER_THAN_A_DAY, ONE_DAY, REPO_ROOT, covered_days, days, month_last, months

# Every (entry, interval) an auto plan accepts: each interval of any period, or None for types without one.
SERIES = [(e, i) for e in DEFAULT_CATALOG for i in (e.all_intervals() or (None,))]
SERIES_IDS = {(e.market.value, e.data_type.value, None if i is None else i.value): (e, i) for e, i in SERIES}

# Dates where the catalog changes: metrics and bookDepth start, bookTicker stops.
EDGES = [dt.date(2020, 9, 1), dt.date(2023, 1, 1), dt.date(2024, 3, 30), dt.date(2024, 10, 15)]

starts = st.one_of(
    st.dates(dt.date(2017, 1, 1), dt.date(2026, 12, 31)),
    st.builds(lambda edge, shift: edge + dt.timedelta(days=shift), st.sampled_from(EDGES), st.integers(-120, 120)),
)


def expected_coverage(
    entry: Availability, interval: object, start: dt.date, end: dt.date | None, today: dt.date
) -> tuple[set[dt.date], bool]:
    """The days an auto plan must cover, worked out from the rules (not from the planner), and whether they
    come at day precision (False: whole months)."""
    yesterday = today - ONE_DAY
    lo = max(start, entry.first_date) if entry.first_date else start
    hi = min(end or yesterday, yesterday)
    if entry.last_date:
        hi = min(hi, entry.last_date)
    has_daily = entry.has(Period.DAILY, interval)  # type: ignore[arg-type]
    has_monthly = entry.has(Period.MONTHLY, interval)  # type: ignore[arg-type]
    long_candle = interval is not None and str(interval) in LONGER_THAN_A_DAY
    if hi < lo:
        return set(), True
    if has_daily and not (long_candle and has_monthly):
        return set(days(lo, hi)), True
    # monthly only: whole months overlapping the range that are over
    covered: set[dt.date] = set()
    for month in months(lo, hi):
        if month_last(month) < today:
            covered.update(days(month, month_last(month)))
    return covered, False


def assert_well_formed(f: ArchiveFile) -> None:
    """A planned file is the same as one built (and validated) the ordinary way, key included."""
    built = ArchiveFile(f.market, f.data_type, f.symbol, f.period, f.date, f.interval)
    assert f == built
    assert hash(f) == hash(built)
    assert f.key == built.key
    assert ArchiveFile.from_key(f.key) == f
    date_text = f"{f.date:%Y-%m-%d}" if f.period is Period.DAILY else f"{f.date:%Y-%m}"
    assert f.key.endswith(f"-{date_text}.zip")


def check_auto_plan(
    entry: Availability, interval: object, start: dt.date, span: int, today: dt.date, open_end: bool
) -> None:
    end = None if open_end else start + dt.timedelta(days=span)
    symbol = "BVOLTEST" if entry.market is Market.OPTION else "币安人生USDT" if start.day % 2 else "BTCUSDT"
    selection = Selection(
        markets=entry.market,
        data_types=entry.data_type,
        symbols=symbol,
        intervals=() if interval is None else interval,
        start=start,
        end=end,
    )
    files = list(plan(selection, today=today))
    event(
        "empty plan"
        if not files
        else "monthly files"
        if any(f.period is Period.MONTHLY for f in files)
        else "daily only"
    )
    for f in files:
        assert (f.market, f.data_type, f.symbol, f.interval) == (entry.market, entry.data_type, symbol, interval)
        assert entry.has(f.period, f.interval), f"{f.key}: the catalog has no such period"
        assert_well_formed(f)
    counts = Counter(day for f in files for day in covered_days(f))
    twice = sorted(day for day, n in counts.items() if n > 1)
    assert not twice, f"days covered twice: {twice[:5]}"
    expected, day_precise = expected_coverage(entry, interval, start, end, today)
    assert set(counts) == expected, (
        f"missing {sorted(expected - set(counts))[:5]}, extra {sorted(set(counts) - expected)[:5]}"
    )
    yesterday = today - ONE_DAY
    for f in files:
        if f.period is Period.DAILY:
            assert f.date <= yesterday
        else:
            assert month_last(f.date) < today, f"{f.key}: its month is not over"
    if day_precise and entry.has(Period.MONTHLY, interval) and entry.has(Period.DAILY, interval):  # type: ignore[arg-type]
        # whole calendar months inside the range come as monthly files, and only those
        lo, hi = (min(expected), max(expected)) if expected else (None, None)
        monthly = {f.date for f in files if f.period is Period.MONTHLY}
        whole = {m for m in months(lo, hi) if m >= lo and month_last(m) <= hi} if lo and hi else set()
        assert monthly == whole
    # in date order
    assert [f.date for f in files] == sorted(f.date for f in files)


@settings(FAST, max_examples=250)
@given(
    series=st.sampled_from(SERIES),
    start=starts,
    span=st.integers(0, 800),
    today_shift=st.integers(-40, 1000),
    open_end=st.booleans(),
)
@example(
    series=SERIES_IDS[("futures/um", "fundingRate", None)],
    start=dt.date(2024, 1, 15),
    span=60,
    today_shift=65,
    open_end=False,
)
@example(
    series=SERIES_IDS[("futures/um", "bookDepth", None)],
    start=dt.date(2022, 11, 3),
    span=120,
    today_shift=500,
    open_end=False,
)
@example(
    series=SERIES_IDS[("futures/um", "bookTicker", None)],
    start=dt.date(2024, 1, 1),
    span=400,
    today_shift=500,
    open_end=False,
)
@example(
    series=SERIES_IDS[("futures/cm", "bookTicker", None)],
    start=dt.date(2024, 9, 1),
    span=100,
    today_shift=500,
    open_end=True,
)
@example(
    series=SERIES_IDS[("spot", "klines", "1w")], start=dt.date(2024, 1, 31), span=31, today_shift=31, open_end=False
)
@example(
    series=SERIES_IDS[("futures/um", "metrics", None)],
    start=dt.date(2020, 8, 1),
    span=90,
    today_shift=100,
    open_end=False,
)
@example(
    series=SERIES_IDS[("option", "EOHSummary", None)], start=dt.date(2023, 9, 30), span=3, today_shift=2, open_end=False
)
@example(
    series=SERIES_IDS[("spot", "trades", None)], start=dt.date(2024, 2, 1), span=28, today_shift=29, open_end=False
)
def test_auto_plans_cover_every_day_exactly_once(
    series: tuple[Availability, object], start: dt.date, span: int, today_shift: int, open_end: bool
) -> None:
    entry, interval = series
    check_auto_plan(entry, interval, start, span, start + dt.timedelta(days=today_shift), open_end)


def test_the_property_runs_over_every_kind_of_series() -> None:
    kinds = {(e.has(Period.DAILY), e.has(Period.MONTHLY)) for e, _ in SERIES}
    assert kinds == {(True, True), (True, False), (False, True)}
    assert any(e.last_date for e, _ in SERIES)
    assert any(e.first_date for e, _ in SERIES)


# -- shards ------------------------------------------------------------------------------------------------


SHARD_SYMBOLS = ["BTCUSDT", "ETHUSDT", "币安人生USDT", "BTCUSD_PERP"]


@st.composite
def selections(draw: st.DrawFn) -> Selection:
    market = draw(st.sampled_from(DEFAULT_CATALOG.markets()))
    types = draw(st.lists(st.sampled_from(DEFAULT_CATALOG.data_types(market)), min_size=1, max_size=3, unique=True))
    entries = [DEFAULT_CATALOG.lookup(market, t) for t in types]
    kline_entries = [e for e in entries if e.data_type.has_interval]
    intervals: list[object] = []
    if kline_entries:
        common = [i for i in kline_entries[0].all_intervals() if all(i in e.all_intervals() for e in kline_entries)]
        intervals = draw(st.lists(st.sampled_from(common), min_size=1, max_size=2, unique=True))
    daily_ok = all(e.has(Period.DAILY) for e in entries) and not any(str(i) in LONGER_THAN_A_DAY for i in intervals)
    start = draw(starts)
    return Selection(
        markets=market,
        data_types=types,
        symbols=draw(st.lists(st.sampled_from(SHARD_SYMBOLS), min_size=1, max_size=2, unique=True)),
        intervals=intervals,
        start=start,
        end=start + dt.timedelta(days=draw(st.integers(0, 200))),
        periods=draw(st.sampled_from(["auto", "daily"])) if daily_ok else "auto",
    )


TODAY = dt.date(2027, 1, 1)


@pytest.mark.parametrize("n", range(1, 8))
@settings(FAST, max_examples=15)
@given(selection=selections())
def test_shards_are_disjoint_cover_the_plan_and_are_stable(n: int, selection: Selection) -> None:
    full = list(plan(selection, today=TODAY))
    shards = [list(plan(selection, today=TODAY, shard=(k, n))) for k in range(n)]
    seen: dict[ArchiveFile, int] = {}
    for k, shard in enumerate(shards):
        for f in shard:
            assert f not in seen, f"{f.key} is in shards {seen[f]} and {k}"
            seen[f] = k
    assert sum(len(s) for s in shards) == len(full)
    assert set(seen) == set(full)
    for k, shard in enumerate(shards):
        assert shard == [f for f in full if seen[f] == k]  # a shard keeps the plan's order
        for f in shard:
            assert [j for j in range(n) if in_shard(f.key, (j, n))] == [k]
            assert zlib.crc32(f.key.encode("utf-8")) % n == k
    k = n // 2
    assert list(plan(selection, today=TODAY, shard=(k, n))) == shards[k]  # same result twice
    assert list(plan(selection, today=TODAY, shard=f"{k}/{n}")) == shards[k]


def test_shards_are_stable_across_processes() -> None:
    """The shard of a key must not depend on the interpreter's hash seed (Python's hash() would)."""
    code = (
        "import datetime as dt, json\n"
        "from binance_archive.core import Selection, plan\n"
        "s = Selection(markets='spot', data_types=['trades', 'klines'], symbols=['BTCUSDT', '币安人生USDT'],"
        " intervals=['1h'], start='2023-11-11', end='2024-03-03')\n"
        "print(json.dumps([f.key for f in plan(s, today=dt.date(2025, 1, 1), shard=(2, 5))]))\n"
    )
    outputs = []
    for seed in ["1", "12345"]:
        env = {**os.environ, "PYTHONHASHSEED": seed}
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True, cwd=REPO_ROOT
        )
        outputs.append(result.stdout)
    assert outputs[0] == outputs[1]
    assert outputs[0].count(".zip") > 5
