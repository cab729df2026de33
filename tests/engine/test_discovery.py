"""Discovery through the S3 listing: symbols, first dates, selections without symbols or start."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from binance_archive import Archive, Selection
from binance_archive.testing import FakeArchiveServer, build_archive

from .scenario import TODAY, planned

SYMBOLS = ["ADAUSDT", "BNBUSDT", "BTCUSDT", "DOGEUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT"]


async def test_symbols_across_several_listing_pages(tmp_path: Path) -> None:
    build_archive(
        tmp_path,
        planned(
            Selection(markets="spot", data_types="aggTrades", symbols=SYMBOLS, start="2024-03-01", end="2024-03-02")
        ),
        max_rows=3,
    )
    async with FakeArchiveServer(tmp_path, page_size=2) as server:
        archive = Archive(tmp_path / "mirror", base_url=server.base_url, listing_url=server.listing_url)
        assert await archive.symbols("spot", "aggTrades", "daily") == SYMBOLS
        assert server.stats.listing_requests >= 4  # 7 prefixes at 2 a page
        assert await archive.symbols("spot", "aggTrades", "monthly") == []
        listed = [obj async for obj in archive.list_files("data/spot/daily/aggTrades/BTCUSDT/")]
    assert [o.key.rsplit("/", 1)[1] for o in listed] == [
        "BTCUSDT-aggTrades-2024-03-01.zip",
        "BTCUSDT-aggTrades-2024-03-01.zip.CHECKSUM",
        "BTCUSDT-aggTrades-2024-03-02.zip",
        "BTCUSDT-aggTrades-2024-03-02.zip.CHECKSUM",
    ]
    assert all(o.size > 0 and len(o.etag) == 32 and o.last_modified for o in listed)


async def test_selection_without_symbols_or_start_uses_the_listing(tmp_path: Path) -> None:
    upstream = tmp_path / "upstream"
    early = Selection(markets="um", data_types="metrics", symbols="BTCUSDT", start="2024-05-28", end="2024-06-03")
    late = Selection(markets="um", data_types="metrics", symbols="ETHUSDT", start="2024-06-01", end="2024-06-03")
    build_archive(upstream, planned(early, late), max_rows=3)
    async with FakeArchiveServer(upstream, page_size=3) as server:
        archive = Archive(tmp_path / "mirror", base_url=server.base_url, listing_url=server.listing_url)
        report = await archive.download(Selection(markets="um", data_types="metrics", end="2024-06-03"), today=TODAY)
    assert report.ok and report.downloaded == 7 + 3 and report.missing == 0
    stored = sorted(p.name for p in (tmp_path / "mirror").rglob("*.zip"))
    assert stored[0] == "BTCUSDT-metrics-2024-05-28.zip" and "ETHUSDT-metrics-2024-06-01.zip" in stored


async def test_first_date_prefers_monthly_then_daily(tmp_path: Path) -> None:
    upstream = tmp_path / "upstream"
    sel = Selection(
        markets="spot", data_types="klines", symbols="BTCUSDT", intervals="1d", start="2024-01-15", end="2024-03-05"
    )
    build_archive(upstream, planned(sel), max_rows=2)
    async with FakeArchiveServer(upstream) as server:
        archive = Archive(tmp_path / "mirror", base_url=server.base_url, listing_url=server.listing_url)
        report = await archive.download(sel.with_(start=None), today=TODAY)
    # The series begins with the daily file of 2024-01-15; nothing earlier is asked for.
    assert report.downloaded == len(planned(sel)) and report.missing == 0
    assert min(dt.date.fromisoformat(p.name[-14:-4]) for p in (tmp_path / "mirror").rglob("*-??-??.zip")) == dt.date(
        2024, 1, 15
    )
