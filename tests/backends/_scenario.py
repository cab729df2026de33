"""The small archive the end-to-end backend tests mirror, and helpers to look at the result."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

from binance_archive import ArchiveFile, RetryPolicy, Selection, plan
from binance_archive.report import Outcome, Report
from binance_archive.testing import build_archive, key_path

TODAY = dt.date(2024, 3, 1)
SPOT = Selection(
    markets="spot", data_types="klines", symbols="BTCUSDT", intervals="1h", start="2024-01-01", end="2024-01-06"
)
UM = Selection(
    markets="um", data_types="klines", symbols="币安人生USDT", intervals="1h", start="2024-01-01", end="2024-01-02"
)
FAST_RETRY = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.05, max_retry_after=0.05, verify_attempts=2)

FILES: list[ArchiveFile] = [f for s in (SPOT, UM) for f in plan(s, today=TODAY)]
MISSING = FILES[2]
"""A date the upstream lacks (neither zip nor sidecar) in the tests of missing files."""
CORRUPT = FILES[3]
"""A file whose upstream zip does not match its sidecar in the tests of corruption."""


def build_upstream(root: Path) -> Path:
    build_archive(root, FILES, max_rows=30)
    return root


def damage(root: Path) -> None:
    """Remove MISSING and corrupt CORRUPT (one byte flipped, its sidecar unchanged) under ``root``."""
    key_path(root, MISSING.key).unlink()
    key_path(root, MISSING.checksum_key).unlink()
    path = key_path(root, CORRUPT.key)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def outcomes(report: Report, outcome: Outcome) -> set[str]:
    return {o.key for o in report.outcomes if o.outcome is outcome}


def assert_mirrored(upstream: Path, mirror: Path, files: list[ArchiveFile]) -> None:
    """Each file's zip and sidecar are in ``mirror`` with the upstream's exact bytes."""
    for file in files:
        for key in (file.key, file.checksum_key):
            assert key_path(mirror, key).read_bytes() == key_path(upstream, key).read_bytes(), key


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
