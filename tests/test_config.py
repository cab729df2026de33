"""Run configuration files: the native schema, the collection workflow's schema, and their errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from binance_archive import ConfigurationError, Selection
from binance_archive.config import RunConfig, collection_result, format_size, load_config
from binance_archive.core import DataType, Interval, Market
from binance_archive.report import FileOutcome, Outcome, Report
from binance_archive.testing import FakeArchiveServer, build_archive

from .engine.scenario import TODAY, planned

NATIVE = """
to = "./mirror"
concurrency = 16
force = true
today = 2026-11-22

[[selection]]
markets = ["spot"]
data_types = ["klines"]
symbols = ["BTCUSDT", "ETHUSDT"]
intervals = ["1m", "1h"]
start = "2024-01-01"
end = "2024-03-15"

[[selection]]
markets = ["um"]
data_types = ["fundingRate"]
symbols = ["BTCUSDT"]
start = 2024-01-01

[transport_options]
read_timeout = 60
"""

LEGACY = {
    "markets": ["spot", "futures_um"],
    "symbols": {"spot": ["BTCUSDT"], "futures_um": ["ETHUSDT", "BTCUSDT"]},
    "data_types": ["klines", "fundingRate"],
    "intervals": {"klines": ["1h", "1d"]},
    "date_range": {"start": "2024-01-01", "end": "2024-02-15"},
    "output_directory": "/tmp/out",
    "max_parallel_downloads": 12,
    "batch_size": 500,
    "enable_batch_mode": False,
    "enable_resume": True,
    "download_checksum": True,
    "timeout_seconds": 45,
    "force_redownload": False,
    "s5cmd_extra_args": ["--log", "error"],
    "part_size_mb": 16,
}


def test_native_toml(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text(NATIVE)
    config = load_config(path)
    assert config.to == "./mirror" and config.concurrency == 16 and config.force is True
    assert config.today is not None and config.today.isoformat() == "2026-11-22"
    assert config.transport_options == {"read_timeout": 60}
    spot, funding = config.selections
    assert spot.intervals == (Interval.M1, Interval.H1) and spot.symbols == ("BTCUSDT", "ETHUSDT")
    assert (
        funding.markets == (Market.FUTURES_UM,)
        and funding.start is not None
        and funding.start.isoformat() == "2024-01-01"
    )


def test_native_json_single_selection(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"selection": {"markets": "spot", "data_types": "trades", "symbols": "BTCUSDT"}}))
    (selection,) = load_config(path).selections
    assert selection == Selection(markets="spot", data_types="trades", symbols="BTCUSDT")


def test_legacy_schema_maps_onto_the_settings() -> None:
    config = RunConfig.from_mapping(LEGACY)
    assert config.legacy and config.to == "/tmp/out" and config.concurrency == 12
    assert config.transport == "http" and config.transport_options == {"read_timeout": 45.0}
    # spot has no fundingRate: that combination is skipped, the others kept.
    pairs = [(s.markets[0], s.data_types[0], s.symbols) for s in config.selections]
    assert pairs == [
        (Market.SPOT, DataType.KLINES, ("BTCUSDT",)),
        (Market.FUTURES_UM, DataType.KLINES, ("ETHUSDT", "BTCUSDT")),
        (Market.FUTURES_UM, DataType.FUNDING_RATE, ("ETHUSDT", "BTCUSDT")),
    ]
    assert config.selections[0].intervals == (Interval.H1, Interval.D1) and config.selections[2].intervals == ()


def test_legacy_batch_mode_selects_s5cmd_and_its_options() -> None:
    config = RunConfig.from_mapping({**LEGACY, "enable_batch_mode": True, "output_directory": "s3://b/p"})
    assert config.transport == "s5cmd"
    assert config.transport_options == {"batch_size": 500, "extra_args": ["--log", "error"], "read_timeout": 45.0}
    assert config.storage_options == {"part_size": 16 * 1024 * 1024}
    assert RunConfig.from_mapping({**LEGACY, "enable_resume": False}).force is True


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"max_paralel_downloads": 3}, "unknown key 'max_paralel_downloads'.*valid keys: .*max_parallel_downloads"),
        ({"markets": ["moon"]}, "unknown market 'moon'; valid choices"),
        ({"max_parallel_downloads": 0}, "max_parallel_downloads must be at least 1"),
        ({"max_parallel_downloads": "many"}, "max_parallel_downloads must be a whole number"),
        ({"enable_batch_mode": "yes"}, "enable_batch_mode must be true or false"),
        ({"intervals": {"trades": ["1m"]}}, "intervals names data type 'trades'"),
        ({"intervals": {"klines": ["2m"]}}, "unknown interval '2m'"),
        ({"date_range": {"start": "2024-02-30"}}, "invalid start date '2024-02-30'"),
        ({"date_range": {"begin": "2024-01-01"}}, "unknown key 'begin' in date_range"),
        ({"symbols": {"option": ["X"]}}, "not in markets"),
        ({"symbols": ["../../etc"]}, "escape"),
    ],
)
def test_legacy_errors_name_the_key(change: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        RunConfig.from_mapping({**LEGACY, **change})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"selection": {"markets": "spot"}}, "lacks 'data_types'"),
        (
            {"selection": {"markets": "spot", "data_types": "klines", "symbol": "X"}},
            "unknown key 'symbol' in selection #1",
        ),
        ({"to": "x"}, r"no \[selection\]"),
        ({"selection": [], "to": "x"}, "array of tables"),
        (
            {"selection": {"markets": "spot", "data_types": "trades"}, "concurrency": True},
            "concurrency must be a whole number",
        ),
        ({"selection": {"markets": "spot", "data_types": "trades"}, "shard": "9/2"}, "invalid shard"),
    ],
)
def test_native_errors_name_the_key(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        RunConfig.from_mapping(data)


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_config(tmp_path / "absent.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("to = [unclosed")
    with pytest.raises(ConfigurationError, match="not valid TOML or JSON"):
        load_config(bad)


def test_collection_result_mapping() -> None:
    report = Report()
    for outcome in [Outcome.DOWNLOADED] * 3 + [Outcome.SKIPPED] * 4 + [Outcome.MISSING] * 2 + [Outcome.FAILED]:
        report.add(FileOutcome("k", outcome, 1024 if outcome is Outcome.DOWNLOADED else 0))
    result = collection_result(report, RunConfig.from_mapping(LEGACY))
    assert result["status"] == "partial" and result["output_directory"] == "/tmp/out"
    assert result["collection_stats"] == {
        "total_tasks": 10, "successful_tasks": 3, "failed_tasks": 1, "skipped_tasks": 4, "missing_tasks": 2,
        "total_bytes": 3072, "total_seconds": 0.0,
    }  # fmt: skip
    assert result["success_rate"] == 87.5 and result["total_size_formatted"] == "3.0 KB"
    assert format_size(5 * 1024**3) == "5.0 GB" and format_size(12) == "12 B"


async def test_legacy_config_runs_end_to_end_from_the_cli(tmp_path: Path) -> None:
    import asyncio
    import io

    from binance_archive.cli import main

    upstream = tmp_path / "upstream"
    sel = Selection(
        markets="um", data_types="klines", symbols="BTCUSDT", intervals="1d", start="2024-01-01", end="2024-02-03"
    )
    build_archive(upstream, planned(sel), max_rows=3)
    async with FakeArchiveServer(upstream) as server:
        path = tmp_path / "legacy.json"
        path.write_text(json.dumps({
            "markets": ["futures_um"], "symbols": ["BTCUSDT"], "data_types": ["klines"], "intervals": {"klines": ["1d"]},
            "date_range": {"start": "2024-01-01", "end": "2024-02-03"}, "output_directory": str(tmp_path / "out"),
        }))  # fmt: skip
        out = io.StringIO()
        argv = [
            "download",
            "--config",
            str(path),
            "--json",
            "--today",
            TODAY.isoformat(),
            "--base-url",
            server.base_url,
        ]
        status = await asyncio.to_thread(main, argv, out=out)
    result = json.loads(out.getvalue())
    assert status == 0 and result["status"] == "success"
    assert result["collection_stats"]["successful_tasks"] == len(planned(sel)) == 4
    assert result["output_directory"] == str(tmp_path / "out")


def test_config_and_selection_options_do_not_mix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from binance_archive.cli import main

    path = tmp_path / "run.toml"
    path.write_text(NATIVE)
    assert main(["download", "--config", str(path), "--symbol", "BTCUSDT"]) == 2
    assert "remove --symbol" in capsys.readouterr().err


def test_retries_and_dead_after_make_the_retry_policy(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text('retries = 3\ndead_after = 2.5\n[selection]\nmarkets = "spot"\ndata_types = "trades"\n')
    config = load_config(path)
    assert config.retries == 3 and config.dead_after == 2.5
    policy = config.archive(entry_points=False).retry
    assert policy.attempts == 3 and policy.dead_after == 2.5 and policy.final_pass
    assert config.archive(entry_points=False).retry == RunConfig(selections=()).archive(retry=policy).retry
    default = RunConfig(selections=()).archive(entry_points=False).retry
    assert default.attempts == 10 and default.dead_after == 15


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"retries": 0}, "retries must be at least 1, not 0"),
        ({"retries": "5"}, "retries must be a whole number"),
        ({"dead_after": -1}, r"dead_after must be a number of seconds \(0 never stops\), not -1"),
        ({"dead_after": True}, "dead_after must be a number of seconds"),
    ],
)
def test_bad_retry_settings_are_refused_naming_the_key(value: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        RunConfig.from_mapping({"selection": {"markets": "spot", "data_types": "trades"}, **value})
