"""Helpers shared by the core tests: hypothesis settings, strategies and date arithmetic written independently
of the code under test (calendar/timedelta only, never binance_archive.core.periods)."""

from __future__ import annotations

import calendar
import datetime as dt
import string
from collections.abc import Iterable, Iterator
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from binance_archive.core import DEFAULT_CATALOG, ArchiveFile, Interval, Market, Period

REPO_ROOT = Path(__file__).resolve().parents[2]
VECTORS = REPO_ROOT.parent / "shared" / "vectors"
VECTORS_MISSING = f"{VECTORS} not found: tests that read real archive files need ../shared/vectors"

# No example database: it would write .hypothesis/ outside tests/core. No deadline: wall-clock is not asserted.
FAST = settings(database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ONE_DAY = dt.timedelta(days=1)

# Symbols as the archive has them (upper-case ASCII, digits, "_") plus some non-ASCII letters (币安人生USDT).
SYMBOL_ALPHABET = string.ascii_uppercase + string.digits + "_" + "币安人生ÉÜÇØÑΩЖЯ"
symbols = st.text(alphabet=SYMBOL_ALPHABET, min_size=1, max_size=24)

# Kline intervals longer than a day, written out by hand from ARCHIVE.md (spot: "M adds 3d 1w 1mo").
LONGER_THAN_A_DAY = {"3d", "1w", "1mo"}


def days(first: dt.date, last: dt.date) -> list[dt.date]:
    """Every day from ``first`` to ``last``, inclusive (empty when last < first)."""
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def month_first(day: dt.date) -> dt.date:
    return day.replace(day=1)


def month_last(day: dt.date) -> dt.date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def months(first: dt.date, last: dt.date) -> Iterator[dt.date]:
    """The first day of every month overlapping ``first``..``last``."""
    month = month_first(first)
    while month <= last:
        yield month
        month = month_last(month) + ONE_DAY


def covered_days(f: ArchiveFile) -> list[dt.date]:
    """The days one file covers: its day, or every day of its month."""
    if f.period is Period.DAILY:
        return [f.date]
    return days(month_first(f.date), month_last(f.date))


def catalog_combinations() -> list[tuple[Market, object, Period, Interval | None]]:
    """Every (market, data type, period, interval) the built-in catalog lists."""
    combos = []
    for entry in DEFAULT_CATALOG:
        for period, intervals in entry.intervals.items():
            for interval in intervals or (None,):
                combos.append((entry.market, entry.data_type, period, interval))
    return combos


def keys(files: Iterable[ArchiveFile]) -> list[str]:
    return [f.key for f in files]
