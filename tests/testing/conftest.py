"""Fixtures for the fake archive's tests: a small tree on disk and a server over it."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from binance_archive.core import ArchiveFile, DataType, Interval, Market, Period
from binance_archive.testing import FakeArchiveServer, build_archive

UM_SYMBOLS = ("BNBUSDT", "BTCUSDT", "ETHUSDT", "SOLUSDT", "币安人生USDT")
DAYS = (dt.date(2026, 5, 1), dt.date(2026, 5, 2), dt.date(2026, 5, 3))


def small_tree_files() -> list[ArchiveFile]:
    """Five USD-M symbols (one non-ASCII) x three days of 1h klines, two spot 1m days, one monthly file."""
    files = [
        ArchiveFile(Market.FUTURES_UM, DataType.KLINES, symbol, Period.DAILY, day, Interval.H1)
        for symbol in UM_SYMBOLS
        for day in DAYS
    ]
    files += [ArchiveFile(Market.SPOT, DataType.KLINES, "BTCUSDT", Period.DAILY, d, Interval.M1) for d in DAYS[:2]]
    files.append(ArchiveFile(Market.FUTURES_UM, DataType.FUNDING_RATE, "BTCUSDT", Period.MONTHLY, dt.date(2026, 4, 1)))
    return files


@pytest.fixture
def tree_files() -> list[ArchiveFile]:
    """The files of :func:`tree`."""
    return small_tree_files()


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small archive tree, built once per module (tests that change it use their own)."""
    root = tmp_path_factory.mktemp("archive")
    build_archive(root, small_tree_files(), max_rows=200)
    return root


@pytest.fixture
async def server(tree: Path) -> AsyncIterator[FakeArchiveServer]:
    async with FakeArchiveServer(tree, page_size=3) as fake:
        yield fake


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client
