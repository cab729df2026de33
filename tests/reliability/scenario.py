"""The selections and trees the reliability tests share."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from binance_archive import ArchiveFile, Selection, plan
from binance_archive.testing import build_archive

TODAY = dt.date(2026, 11, 22)

# 3 symbols x 50 daily files of 1h klines: enough requests for every fault knob to fire at the rates of
# the issue (10% 5xx, 2% resets, 2% truncations, 1% corruptions, 429s), small enough to run in seconds.
MATRIX_SELECTION = Selection(
    markets="spot",
    data_types="klines",
    symbols=("BTCUSDT", "ETHUSDT", "BNBUSDT"),
    intervals="1h",
    start="2024-01-01",
    end="2024-02-19",
    periods="daily",
)

# A small mixed selection: monthly and daily files, and a futures type.
SMALL = Selection(
    markets="spot", data_types="klines", symbols=("BTCUSDT", "ETHUSDT"), intervals="1h", start="2024-01-01",
    end="2024-02-10",
)  # fmt: skip
FUNDING = Selection(markets="um", data_types="fundingRate", symbols="BTCUSDT", start="2024-01-01", end="2024-03-31")


def planned(*selections: Selection) -> list[ArchiveFile]:
    return [f for s in selections for f in plan(s, today=TODAY)]


def build(root: Path, *selections: Selection, max_rows: int | None = 24) -> list[ArchiveFile]:
    files = planned(*selections)
    build_archive(root, files, max_rows=max_rows)
    return files
