"""Files in flight found by measuring, end to end against the fake archive on loopback: the level grows where the
server is latency bound, backs off where it sheds load, is pinned by ``concurrency`` alone, and is said in the
report; levels no run can take are refused before any request."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path

import pytest

from binance_archive import Archive, ConfigurationError, Selection, download
from binance_archive.config import RunConfig
from binance_archive.report import Report
from binance_archive.testing import FakeArchiveServer, Faults, build_archive
from tests.reliability.support import run_main

from .scenario import FAST_RETRY, TODAY, planned

# 3 symbols x 70 days: 210 daily files, enough rounds for the level to move.
MANY = Selection(
    markets="spot",
    data_types="klines",
    symbols=("BTCUSDT", "ETHUSDT", "BNBUSDT"),
    intervals="1h",
    start="2024-01-01",
    end="2024-03-10",
    periods="daily",
)


@pytest.fixture(scope="module")
def many_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("adaptive") / "upstream"
    build_archive(root, planned(MANY), max_rows=5)
    return root


async def test_the_level_grows_where_the_server_is_latency_bound(many_tree: Path, tmp_path: Path) -> None:
    files = planned(MANY)
    async with FakeArchiveServer(many_tree, faults=Faults(latency=0.05)) as server:
        archive = Archive(tmp_path / "m", base_url=server.base_url, concurrency=4, max_concurrency=64, retry=FAST_RETRY)
        report = await archive.download(MANY, today=TODAY)
        verified = await archive.verify()
    assert report.ok and report.downloaded == len(files) == 210
    level = report.concurrency
    assert level is not None and level.adaptive and level.start == 4 and level.ceiling == 64
    assert level.high > 4 * 2 and level.high <= 64 and level.backoffs == 0, level
    assert verified.ok and verified.checked == len(files)
    assert server.stats.max_in_flight <= 2 * 64, "a file in flight holds two requests at most: its zip's and sidecar's"


async def test_under_load_shedding_it_backs_off_and_is_refused_less_than_a_fixed_level(
    many_tree: Path, tmp_path: Path
) -> None:
    """The server takes 16 requests at once (8 files: a zip and its sidecar each) and answers 429 beyond: a fixed
    64 files in flight is turned away over and over; the level found by measuring settles near what is taken."""
    files = planned(MANY)
    shedding = Faults(latency=0.05, max_in_flight=16)
    async with FakeArchiveServer(many_tree, faults=shedding) as server:
        found = Archive(tmp_path / "a", base_url=server.base_url, concurrency=4, max_concurrency=64, retry=FAST_RETRY)
        adaptive = await found.download(MANY, today=TODAY)
        refused_adaptive = server.stats.faults["shed"]
        server.stats.reset()
        fixed = await Archive(tmp_path / "f", base_url=server.base_url, concurrency=64, retry=FAST_RETRY).download(
            MANY, today=TODAY
        )
        refused_fixed = server.stats.faults["shed"]
    assert adaptive.ok and adaptive.downloaded == len(files)
    level = adaptive.concurrency
    assert level is not None and level.adaptive and level.backoffs > 0, level
    assert level.settled <= 16, level
    assert fixed.concurrency is not None and not fixed.concurrency.adaptive and fixed.concurrency.settled == 64
    assert 0 < refused_adaptive < refused_fixed / 2, (refused_adaptive, refused_fixed)


async def test_concurrency_alone_pins_the_level(many_tree: Path, tmp_path: Path) -> None:
    async with FakeArchiveServer(many_tree, faults=Faults(latency=0.02)) as server:
        archive = Archive(tmp_path / "m", base_url=server.base_url, concurrency=3, retry=FAST_RETRY)
        report = await archive.download(MANY, today=TODAY)
    assert archive.max_concurrency is None and report.ok
    assert report.concurrency is not None and report.concurrency.describe() == "3 (fixed)"
    assert "; files in flight: 3 (fixed)" in report.summary()
    assert Report.from_dict(json.loads(report.to_json())).concurrency == report.concurrency, "--processes reads it back"
    assert server.stats.max_in_flight <= 2 * 3


def test_the_defaults_find_the_level_over_http_and_pin_it_elsewhere(tmp_path: Path) -> None:
    http = Archive(tmp_path / "a", entry_points=False)
    assert (http.concurrency, http.max_concurrency) == (128, 256)
    assert http.transport._limit == 2 * 256, "the connection pool holds the ceiling's files"  # type: ignore[attr-defined]
    assert Archive(tmp_path / "b", max_concurrency=40, entry_points=False).concurrency == 40, (
        "start at most the ceiling"
    )
    assert Archive(tmp_path / "c", concurrency=8, max_concurrency=40, entry_points=False).concurrency == 8
    pinned = Archive(tmp_path / "d", concurrency=120, entry_points=False)
    assert (pinned.concurrency, pinned.max_concurrency) == (120, None)
    (tmp_path / "upstream").mkdir()
    mirror = Archive(tmp_path / "e", transport="mirror", base_url=str(tmp_path / "upstream"), entry_points=False)
    assert mirror.max_concurrency is None, "a local mirror's speed does not follow the files in flight"


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"max_concurrency": 0}, "max_concurrency must be a whole number of files of at least 1, got 0"),
        ({"max_concurrency": 10_001}, "max_concurrency must be at most 10000, got 10001"),
        ({"max_concurrency": 2.5}, "max_concurrency must be a whole number of files of at least 1, got 2.5"),
        (
            {"concurrency": 100, "max_concurrency": 50},
            "concurrency (the level to start from, 100) must not be above max_concurrency (50)",
        ),
    ],
)
async def test_levels_no_run_can_take_are_refused_by_the_library_and_the_configuration(
    given: dict[str, object], message: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigurationError) as refused:
        Archive(tmp_path / "m", **given)  # type: ignore[arg-type]
    assert message in str(refused.value)
    with pytest.raises(ConfigurationError) as refused:
        await download(MANY, tmp_path / "m", today=TODAY, **given)  # type: ignore[arg-type]
    assert message in str(refused.value)
    if not isinstance(given.get("max_concurrency"), float):  # a TOML file's float is refused as not a whole number
        with pytest.raises(ConfigurationError) as refused:
            RunConfig.from_mapping({"selection": {"markets": "spot", "data_types": "trades"}, **given})
        assert message in str(refused.value)
    assert not (tmp_path / "m").exists()


def test_the_configuration_file_key_sets_the_ceiling() -> None:
    config = RunConfig.from_mapping(
        {"selection": {"markets": "spot", "data_types": "trades"}, "max_concurrency": 64, "concurrency": 8}
    )
    assert (config.concurrency, config.max_concurrency) == (8, 64)
    assert config.archive().max_concurrency == 64


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--max-concurrency", "0"], "--max-concurrency must be a whole number of files of at least 1, got 0"),
        (["--max-concurrency", "20000"], "--max-concurrency must be at most 10000, got 20000"),
        (
            ["--concurrency", "10", "--max-concurrency", "5"],
            "--concurrency (the level to start from, 10) must not be above --max-concurrency (5): lower --concurrency, "
            "raise --max-concurrency, or give --concurrency alone to pin the level",
        ),
    ],
)
async def test_the_command_refuses_levels_no_run_can_take_before_any_request(
    many_tree: Path, tmp_path: Path, option: list[str], message: str
) -> None:
    async with FakeArchiveServer(many_tree) as server:
        argv = ["download", "--market", "spot", "--data-type", "klines", "--symbol", "BTCUSDT", "--interval", "1h",
                "--start", "2024-01-01", "--end", "2024-01-03", "--today", TODAY.isoformat(), "--base-url",
                server.base_url, "--listing-url", server.listing_url, "--to", str(tmp_path / "m"), *option]  # fmt: skip
        status, _, err = run_main(argv)  # refused before the loop starts: the server's loop is not needed
        assert status == 2 and message in err and "Traceback" not in err, err
        assert server.stats.requests == 0
    assert not (tmp_path / "m").exists()


async def test_the_command_says_the_level_in_its_summary_and_json_and_concurrency_alone_pins_it(
    many_tree: Path, tmp_path: Path
) -> None:
    config = tmp_path / "run.toml"
    config.write_text(
        f'today = "{TODAY}"\nmax_concurrency = 64\n[[selection]]\nmarkets = "spot"\ndata_types = "klines"\n'
        'symbols = ["BTCUSDT"]\nintervals = ["1h"]\nstart = "2024-01-01"\nend = "2024-01-20"\nperiods = "daily"\n'
    )
    async with FakeArchiveServer(many_tree, faults=Faults(latency=0.01)) as server:
        common = ["download", "--config", str(config), "--base-url", server.base_url, "--listing-url",
                  server.listing_url]  # fmt: skip
        # The command runs its own loop: in a thread, so that this test's loop keeps serving.
        status, out, _ = await asyncio.to_thread(
            run_main, [*common, "--to", str(tmp_path / "a"), "--concurrency", "4", "--max-concurrency", "8"]
        )
        assert status == 0 and re.search(r"\n  files in flight +\d+ \(found from 4: .*at most 8\)\n", out), out
        status, out, _ = await asyncio.to_thread(run_main, [*common, "--to", str(tmp_path / "b"), "--json"])
        document = json.loads(out)
        assert status == 0 and document["concurrency"]["adaptive"] is True
        assert document["concurrency"]["ceiling"] == 64 and document["concurrency"]["start"] == 64, (
            "the configuration file's ceiling, started at the default's 128 or the ceiling, whichever is lower"
        )
        assert {"settled", "low", "high", "backoffs"} <= document["concurrency"].keys()
        # --concurrency alone pins the level, whatever ceiling the configuration file gave.
        status, out, _ = await asyncio.to_thread(
            run_main, [*common, "--to", str(tmp_path / "c"), "--concurrency", "3", "--json"]
        )
        assert status == 0 and json.loads(out)["concurrency"] == {
            "adaptive": False, "start": 3, "settled": 3, "low": 3, "high": 3, "ceiling": 3, "backoffs": 0,
        }  # fmt: skip
        status, out, _ = await asyncio.to_thread(run_main, [*common, "--to", str(tmp_path / "d"), "--concurrency", "3"])
        assert status == 0 and re.search(r"\n  files in flight +3 \(fixed\)\n", out), out


async def test_each_process_finds_its_own_level_and_the_report_adds_them_up(many_tree: Path, tmp_path: Path) -> None:
    async with FakeArchiveServer(many_tree, faults=Faults(latency=0.01)) as server:
        # A process of its own, single-threaded, so that it may fork.
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "binance_archive", "download", "--market", "spot", "--data-type", "klines",
            "--symbol", "BTCUSDT", "--interval", "1h", "--start", "2024-01-01", "--end", "2024-01-20", "--period",
            "daily", "--today", TODAY.isoformat(), "--base-url", server.base_url, "--listing-url", server.listing_url,
            "--to", str(tmp_path / "m"), "--processes", "2", "--concurrency", "4", "--max-concurrency", "16", "--json",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()
    level = json.loads(out)["concurrency"]
    assert level["adaptive"] is True and level["start"] == 4 and level["ceiling"] == 16, level
