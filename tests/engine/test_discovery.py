"""Discovery through the S3 listing: symbols, first dates, selections without symbols or start."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import socket
import sys
from asyncio.subprocess import PIPE
from pathlib import Path

import pytest

from binance_archive import Archive, ConfigurationError, Selection
from binance_archive.testing import FakeArchiveServer, build_archive

from .scenario import FAST_RETRY, TODAY, planned

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


# -- named symbols the listing does not hold ----------------------------------------------------------------------

BVOL = Selection(
    markets="option",
    data_types="BVOLIndex",
    symbols=["BTCBVOLUSDT", "ETHBVOLUSDT"],
    start="2023-07-01",
    end="2023-07-03",
)


@pytest.fixture
def bvol_tree(tmp_path: Path) -> Path:
    upstream = tmp_path / "upstream"
    build_archive(upstream, planned(BVOL), max_rows=3)
    return upstream


async def test_an_unknown_symbol_fails_the_run_before_any_download_naming_the_closest(
    bvol_tree: Path, tmp_path: Path
) -> None:
    async with FakeArchiveServer(bvol_tree) as server:
        archive = Archive(tmp_path / "mirror", base_url=server.base_url, listing_url=server.listing_url)
        assert archive.transport.listing_is_authoritative
        # The options example of the collection workflow asks for BTC; the archive's name is BTCBVOLUSDT.
        selections = [BVOL.with_(symbols="ETHBVOLUSDT"), BVOL.with_(symbols=["BTC", "ETHBVOLUSDT"])]
        with pytest.raises(
            ConfigurationError,
            match=r"^unknown symbol 'BTC' for option BVOLIndex: the archive's listing has no files of it; "
            r"did you mean BTCBVOLUSDT\?$",
        ):
            await archive.download(selections, today=TODAY)
        assert server.stats.zip_requests == server.stats.checksum_requests == 0  # not even the good selection's
    assert not list((tmp_path / "mirror").rglob("*.zip"))


async def test_a_known_symbol_without_some_dates_counts_them_as_missing(bvol_tree: Path, tmp_path: Path) -> None:
    async with FakeArchiveServer(bvol_tree) as server:
        archive = Archive(tmp_path / "mirror", base_url=server.base_url, listing_url=server.listing_url)
        report = await archive.download(BVOL.with_(end="2023-07-05"), today=TODAY)
        assert report.ok and report.downloaded == 6 and report.missing == 4
        server.stats.reset()
        again = await archive.download(BVOL, today=TODAY)  # the mirror holds both: the listing is not asked
    assert again.skipped == 6 and server.stats.requests == 0


@pytest.mark.parametrize("processes", ["1", "2"])
async def test_unknown_symbols_of_a_plain_download_exit_2_with_the_closest(
    bvol_tree: Path, tmp_path: Path, processes: str
) -> None:
    async with FakeArchiveServer(bvol_tree) as server:
        argv = [
            "download", "--market", "option", "--data-type", "BVOLIndex", "--symbol", "BTCBVOLUSTD,XRP",
            "--start", "2023-07-01", "--end", "2023-07-03", "--to", str(tmp_path / "mirror"),
            "--base-url", server.base_url, "--listing-url", server.listing_url, "--processes", processes,
        ]  # fmt: skip
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "binance_archive", *argv, stdout=PIPE, stderr=PIPE
        )
        _out, err = await process.communicate()
        requests = server.stats.zip_requests
    assert process.returncode == 2 and requests == 0, err
    message = err.decode()
    assert "unknown symbol 'BTCBVOLUSTD' for option BVOLIndex" in message and "did you mean BTCBVOLUSDT?" in message
    # Nothing close to XRP: the few symbols listed there are named.
    assert "unknown symbol 'XRP' for option BVOLIndex: the archive's listing has no files of it; it lists " in message
    assert "BTCBVOLUSDT, ETHBVOLUSDT" in message
    # Every process meets the error; it is said once, and nothing else is.
    assert message.count("unknown symbol 'BTCBVOLUSTD'") == 1 and len(message.strip().splitlines()) == 1, message


async def test_symbols_are_not_checked_against_a_listing_of_another_archive(bvol_tree: Path, tmp_path: Path) -> None:
    async with FakeArchiveServer(bvol_tree) as server:
        # Files from a base URL of one's own, the listing the public bucket's: it cannot speak for these files.
        archive = Archive(tmp_path / "mirror", base_url=server.base_url)
        assert not archive.transport.listing_is_authoritative
        report = await archive.download(BVOL.with_(symbols="BTC"), today=TODAY)
    assert report.ok and report.missing == 3 and server.stats.listing_requests == 0


async def test_a_listing_that_does_not_answer_leaves_the_check_undone(
    bvol_tree: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as closed:  # a port nothing listens on: the listing is refused at once
        closed.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{closed.getsockname()[1]}/bucket"
    async with FakeArchiveServer(bvol_tree) as server:
        archive = Archive(tmp_path / "mirror", base_url=server.base_url, listing_url=dead, retry=FAST_RETRY)
        with caplog.at_level(logging.INFO, logger="binance_archive.engine"):
            report = await archive.download(BVOL, today=TODAY)
    assert report.ok and report.downloaded == 6
    assert "the symbols named were not checked against the listing (the symbols of option BVOLIndex: " in caplog.text
