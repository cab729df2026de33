"""Plans stream: a plan of ten million files is a generator whose memory does not grow with its length."""

from __future__ import annotations

import collections.abc
import datetime as dt
import gc
import inspect
import itertools
import tracemalloc
from collections.abc import Iterator

import pytest

from binance_archive.core import ArchiveFile, Period, Selection, plan

from ._support import days

SYMBOLS = [f"S{i:04d}USDT" for i in range(1000)]
INTERVALS = ["1m", "5m", "1h"]
START, END = dt.date(2017, 1, 1), dt.date(2026, 12, 31)
TODAY = dt.date(2027, 1, 1)
N_DAYS = (END - START).days + 1
HUGE_COUNT = len(SYMBOLS) * len(INTERVALS) * N_DAYS  # daily files only: 1000 x 3 x 3652

MB = 1024 * 1024


def huge_plan(**kw: object) -> Iterator[ArchiveFile]:
    selection = Selection(
        markets="spot", data_types="klines", symbols=SYMBOLS, intervals=INTERVALS, start=START, end=END, periods="daily"
    )
    return plan(selection, today=TODAY, **kw)  # type: ignore[arg-type]


def test_the_huge_plan_really_is_ten_million_files() -> None:
    assert HUGE_COUNT > 10_000_000


def traced_peak(work: collections.abc.Callable[[], object]) -> int:
    """Peak traced memory (bytes above the start) while running ``work``."""
    gc.collect()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        work()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - base


def test_a_plan_is_a_generator() -> None:
    p = huge_plan()
    assert inspect.isgenerator(p)
    assert not isinstance(p, collections.abc.Sized)  # no len(): nothing was counted or collected


def test_the_first_files_of_a_huge_plan_come_without_materialising_it() -> None:
    taken: list[ArchiveFile] = []
    peak = traced_peak(lambda: taken.extend(itertools.islice(huge_plan(), 1000)))
    assert len(taken) == 1000
    assert [f.date for f in taken] == days(START, START + dt.timedelta(days=999))
    assert {(f.symbol, f.interval.value, f.period) for f in taken} == {("S0000USDT", "1m", Period.DAILY)}  # type: ignore[union-attr]
    assert taken[0].key == "data/spot/daily/klines/S0000USDT/1m/S0000USDT-1m-2017-01-01.zip"
    # 1000 files are kept by the test itself (well under 1 MB); ten million would be gigabytes
    assert peak < 1 * MB, f"peak {peak / MB:.1f} MB"


def test_the_first_files_of_a_huge_sharded_plan_come_lazily_too() -> None:
    taken: list[ArchiveFile] = []
    peak = traced_peak(lambda: taken.extend(itertools.islice(huge_plan(shard=(3, 7)), 500)))
    assert len(taken) == 500
    assert peak < 1 * MB


def test_iterating_200k_files_keeps_memory_flat() -> None:
    count = 0
    last: list[ArchiveFile] = []

    def consume() -> None:
        nonlocal count
        for f in itertools.islice(huge_plan(), 200_000):
            count += 1
            if count % 50_000 == 0:
                last.append(f)

    peak = traced_peak(consume)
    assert count == 200_000
    # the 200,000th file: days run symbol by symbol, interval by interval
    index = 199_999
    symbol_index, rest = divmod(index, len(INTERVALS) * N_DAYS)
    interval_index, day_index = divmod(rest, N_DAYS)
    expected = START + dt.timedelta(days=day_index)
    assert (last[-1].symbol, last[-1].interval.value, last[-1].date) == (  # type: ignore[union-attr]
        SYMBOLS[symbol_index],
        INTERVALS[interval_index],
        expected,
    )
    assert peak < 2 * MB, f"peak {peak / MB:.1f} MB while streaming 200,000 files"


def test_the_memory_bound_would_catch_a_materialised_plan() -> None:
    """Control: holding 20,000 files (a tenth of what the test above streams) breaks the same bound."""
    held: list[ArchiveFile] = []
    peak = traced_peak(lambda: held.extend(itertools.islice(huge_plan(), 20_000)))
    assert len(held) == 20_000
    assert peak > 2 * MB


@pytest.mark.parametrize("shard", [None, (0, 2)])
def test_errors_come_before_the_first_file_even_for_huge_plans(shard: object) -> None:
    from binance_archive.errors import ConfigurationError

    selection = Selection(markets="um", data_types="klines", symbols=SYMBOLS, intervals=["1s"], start=START)
    with pytest.raises(ConfigurationError, match="no 1s interval"):
        plan(selection, today=TODAY, shard=shard)  # type: ignore[arg-type]
