"""The scenario the engine tests share: a small selection, the date to plan for, a fast retry policy."""

from __future__ import annotations

import datetime as dt

from binance_archive import ArchiveFile, RetryPolicy, Selection, plan

TODAY = dt.date(2026, 11, 22)

# Two symbols of 1h klines across a whole month and some days (auto: monthly + daily files), and a
# monthly-only type: 2 x (1 monthly + 10 daily) + 2 monthly = 24 files.
SELECTION = Selection(
    markets="spot",
    data_types="klines",
    symbols=("BTCUSDT", "ETHUSDT"),
    intervals="1h",
    start="2024-01-01",
    end="2024-02-10",
)
FUNDING = Selection(markets="um", data_types="fundingRate", symbols="BTCUSDT", start="2024-01-01", end="2024-02-10")

FAST_RETRY = RetryPolicy(attempts=8, backoff=0.01, max_backoff=0.05, max_retry_after=0.05)


def planned(*selections: Selection) -> list[ArchiveFile]:
    return [f for s in selections for f in plan(s, today=TODAY)]
