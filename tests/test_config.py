"""Run configuration files: the native schema, the collection workflow's schema, and their errors."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import pickle
import re
import sys
import tomllib
from asyncio.subprocess import PIPE
from pathlib import Path
from typing import Any

import pytest

from binance_archive import ConfigurationError, Selection
from binance_archive.config import RunConfig, collection_result, format_size, load_config
from binance_archive.core import DEFAULT_CATALOG, DataType, Interval, Market, plan
from binance_archive.core.planning import validate_selection
from binance_archive.report import FileOutcome, Outcome, Report
from binance_archive.tables.report import ConvertReport
from binance_archive.testing import FakeArchiveServer, build_archive

from .engine.scenario import TODAY, planned
from .support.collection_examples import EXAMPLES, INVALID, MATRIX

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


def test_legacy_schema_takes_the_settings_it_lacks_as_native_keys() -> None:
    beside = {
        "base_url": "http://127.0.0.1:9/archive", "listing_url": "http://127.0.0.1:9/bucket", "refresh": True,
        "transport_options": {"read_timeout": 5.0, "limit": 64}, "storage_options": {"region": "eu-west-3"},
        "today": "2024-03-01", "output_directory": "s3://b/p", "part_size_mb": 16, "retries": 3, "dead_after": 0,
    }  # fmt: skip
    config = RunConfig.from_mapping({**LEGACY, **beside})
    assert config.legacy and (config.base_url, config.listing_url) == (beside["base_url"], beside["listing_url"])
    assert config.transport_options == {"read_timeout": 5.0, "limit": 64}, "the native table wins over timeout_seconds"
    assert config.storage_options == {"part_size": 16 * 1024 * 1024, "region": "eu-west-3"}
    assert config.refresh and config.today == dt.date(2024, 3, 1)
    assert (config.retries, config.dead_after) == (3, 0)
    with pytest.raises(ConfigurationError, match="storage_options must be a table"):
        RunConfig.from_mapping({**LEGACY, "storage_options": "region=x"})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"max_paralel_downloads": 3}, "unknown key 'max_paralel_downloads'.*valid keys: .*max_parallel_downloads"),
        ({"markets": ["moon"]}, "unknown market 'moon'; valid choices"),
        ({"max_parallel_downloads": 0}, "max_parallel_downloads must be at least 1"),
        ({"max_parallel_downloads": "many"}, "max_parallel_downloads must be a whole number"),
        ({"enable_batch_mode": "yes"}, "enable_batch_mode must be true or false"),
        ({"intervals": {"kline": ["1m"]}}, "intervals names 'kline', which is no data type"),
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


def test_a_run_that_stopped_early_is_not_a_success_of_the_collection_workflow() -> None:
    """A target that cannot be written stops the run before any file is fetched: nothing failed, nothing stored."""
    stopped = Report(skipped=2, stopped="cannot write to /m: permission denied; nothing was fetched")
    assert collection_result(stopped, RunConfig.from_mapping(LEGACY))["status"] == "partial"
    assert collection_result(Report(stopped="x"), RunConfig.from_mapping(LEGACY))["status"] == "failed"


def test_collection_result_mapping() -> None:
    report = Report(started_at=dt.datetime(2026, 5, 22, 10, 15, 0, 250000, tzinfo=dt.UTC), duration=2.5)
    outcomes = [Outcome.DOWNLOADED] * 3 + [Outcome.SKIPPED] * 4 + [Outcome.MISSING] * 2 + [Outcome.FAILED]
    for i, outcome in enumerate(outcomes):
        error = "HTTP 503" if outcome is Outcome.FAILED else None
        report.add(FileOutcome(f"data/k{i}.zip", outcome, 1024 if outcome is Outcome.DOWNLOADED else 0, error=error))
    result = collection_result(report, RunConfig.from_mapping(LEGACY))
    assert result["status"] == "partial" and result["output_directory"] == "/tmp/out"
    # The workflow's own names (its data-validation example reads total_size_bytes), and ours kept beside them.
    assert result["collection_stats"] == {
        "total_tasks": 10, "successful_tasks": 3, "failed_tasks": 1, "skipped_tasks": 4, "missing_tasks": 2,
        "total_size_bytes": 3072, "processing_time_seconds": 2.5, "total_bytes": 3072, "total_seconds": 2.5,
    }  # fmt: skip
    assert result["success_rate"] == 87.5 and result["total_size_formatted"] == "3.0 KB"
    assert result["storage_zones_used"] == ["bronze"]
    task_id = "archive_collection_20260522_101500_250000"
    assert result["ingestion_metadata_id"] == task_id
    assert result["metadata"] == {
        "task_id": task_id, "status": "completed",
        "created_at": "2026-05-22T10:15:00.250000+00:00", "updated_at": "2026-05-22T10:15:02.750000+00:00",
        "records_processed": 7, "bytes_processed": 3072, "errors": ["data/k9.zip: HTTP 503"],
        "source_files": ["data/k0.zip", "data/k1.zip", "data/k2.zip"],
        "output_files": ["/tmp/out/data/k0.zip", "/tmp/out/data/k1.zip", "/tmp/out/data/k2.zip"],
    }  # fmt: skip
    # As the workflow's metadata object: its examples read result['metadata'].output_files.
    assert result["metadata"].output_files == result["metadata"]["output_files"]
    with pytest.raises(AttributeError, match="no field 'outputs'"):
        _ = result["metadata"].outputs
    assert json.loads(json.dumps(result))["metadata"]["task_id"] == task_id
    assert pickle.loads(pickle.dumps(result)) == result  # it travels to other processes (a Prefect worker)
    assert format_size(5 * 1024**3) == "5.0 GB" and format_size(12) == "12 B"


def test_collection_result_names_silver_once_tables_are_written() -> None:
    report = Report()
    report.add(FileOutcome("data/k.zip", Outcome.DOWNLOADED, 10))
    config = RunConfig.from_mapping(LEGACY)
    assert collection_result(report, config)["storage_zones_used"] == ["bronze"]
    written = ConvertReport(tables="/tmp/tables", converted=1, rows=24, duration=0.5)
    result = collection_result(report, config, written)
    assert result["storage_zones_used"] == ["bronze", "silver"] and result["status"] == "success"
    assert result["tables"]["rows"] == 24 and result["collection_stats"]["processing_time_seconds"] == 0.5
    nothing = ConvertReport(tables="/tmp/tables")
    assert collection_result(report, config, nothing)["storage_zones_used"] == ["bronze"]
    failed = ConvertReport(tables="/tmp/tables", converted=1, failed=1)
    assert collection_result(report, config, failed)["status"] == "partial"


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
            "workflow_type": "archive_collection", "markets": ["futures_um"], "symbols": ["BTCUSDT"],
            "data_types": ["klines"], "intervals": {"klines": ["1d"]},
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
    # The workflow's data-validation example, and its metadata's files: every one stored where it says.
    assert result["collection_stats"]["total_size_bytes"] > 0 and result["storage_zones_used"] == ["bronze"]
    assert result["metadata"]["records_processed"] == 4 and result["metadata"]["errors"] == []
    assert sorted(result["metadata"]["source_files"]) == sorted(f.key for f in planned(sel))
    assert all(Path(p).is_file() for p in result["metadata"]["output_files"])
    assert result["ingestion_metadata_id"] == result["metadata"]["task_id"]


async def test_a_legacy_config_without_intervals_says_so_once_and_interval_narrows_it(tmp_path: Path) -> None:
    upstream = tmp_path / "upstream"
    every = Selection(
        markets="um", data_types="klines", symbols="BTCUSDT", intervals=[i.value for i in Interval if i.value != "1s"],
        start="2024-01-30", end="2024-02-01",
    )  # fmt: skip
    build_archive(upstream, planned(every), max_rows=2)
    async with FakeArchiveServer(upstream) as server:
        path = tmp_path / "legacy.json"
        path.write_text(json.dumps({
            "workflow_type": "archive_collection", "markets": ["futures_um"], "symbols": ["BTCUSDT"],
            "data_types": ["klines"], "date_range": {"start": "2024-01-30", "end": "2024-02-01"},
        }))  # fmt: skip

        async def download(*more: str) -> tuple[int | None, dict[str, Any], str]:
            argv = ["download", "--config", str(path), "--json", "--today", TODAY.isoformat(),
                    "--base-url", server.base_url, "--listing-url", server.listing_url, *more]  # fmt: skip
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "binance_archive", *argv, stdout=PIPE, stderr=PIPE
            )
            out, err = await process.communicate()
            return process.returncode, json.loads(out or b"{}"), err.decode()

        status, result, err = await download("--to", str(tmp_path / "all"))
        narrowed_status, narrowed, narrowed_err = await download("--to", str(tmp_path / "1d"), "--interval", "1d")
    assert status == 0 and result["collection_stats"]["total_tasks"] == len(planned(every))
    lines = [line for line in err.splitlines() if "every interval" in line]
    assert len(lines) == 1 and "15 on futures/um" in lines[0] and "--interval" in lines[0], err
    assert narrowed_status == 0 and "every interval" not in narrowed_err
    assert narrowed["collection_stats"]["total_tasks"] == len(planned(every.with_(intervals="1d")))


def test_config_and_selection_options_do_not_mix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from binance_archive.cli import main

    path = tmp_path / "run.toml"
    path.write_text(NATIVE)
    assert main(["download", "--config", str(path), "--symbol", "BTCUSDT"]) == 2
    assert "remove --symbol" in capsys.readouterr().err


# -- the collection workflow's own documents --------------------------------------------------------------------


def test_workflow_type_archive_collection_is_accepted_and_nothing_else() -> None:
    config = RunConfig.from_mapping({**LEGACY, "workflow_type": "archive_collection"})
    assert config.legacy and len(config.selections) == 3
    with pytest.raises(ConfigurationError, match=r"workflow_type must be 'archive_collection'.*not 'data_pipeline'"):
        RunConfig.from_mapping({**LEGACY, "workflow_type": "data_pipeline"})


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_example_of_the_collection_workflow_loads(name: str, tmp_path: Path) -> None:
    # The examples name their matrix file: a catalog is there, as the user's own would be.
    (tmp_path / MATRIX).write_text(DEFAULT_CATALOG.to_json())
    path = tmp_path / "config.json"
    path.write_text(json.dumps(EXAMPLES[name]))
    config = load_config(path)
    assert config.legacy and config.selections
    for selection in config.selections:
        validate_selection(selection, config.catalog)  # what a download checks first: it would run
    planned = [s for s in config.selections if s.symbols and s.start]
    if planned:  # (a retired type's selection may plan nothing on its own)
        assert any(next(iter(plan(s, today=TODAY, catalog=config.catalog)), None) for s in planned)


def _without_matrix(name: str) -> dict[str, object]:
    """An example planned against the built-in catalog (its matrix file is not there)."""
    return {k: v for k, v in EXAMPLES[name].items() if k != "matrix_path"}


def test_the_invalid_example_is_refused_naming_the_market() -> None:
    with pytest.raises(ConfigurationError, match="unknown market 'invalid_market'; valid choices"):
        RunConfig.from_mapping(INVALID)


def test_kline_types_without_intervals_plan_every_interval_of_the_catalog(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="binance_archive.config"):
        config = RunConfig.from_mapping(EXAMPLES["README: Multi-Market Collection"])
    klines = {s.markets[0]: s.intervals for s in config.selections if s.data_types == (DataType.KLINES,)}
    for market in (Market.SPOT, Market.FUTURES_UM, Market.FUTURES_CM):
        assert klines[market] == DEFAULT_CATALOG.lookup(market, DataType.KLINES).all_intervals()
    assert len(klines[Market.SPOT]) == 16 and Interval.S1 in klines[Market.SPOT]
    said = [r.getMessage() for r in caplog.records if "every interval" in r.getMessage()]
    assert said == [
        "the configuration gives no intervals for klines, so every interval the catalog has is planned "
        "(klines: 16 on spot, 15 on futures/um, 15 on futures/cm); "
        'narrow it with "intervals": {"klines": ["1h", "1d"]} in the configuration, or --interval'
    ]


def test_intervals_the_catalog_lacks_or_types_do_not_take_are_left_out(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="binance_archive.config"):
        config = RunConfig.from_mapping(_without_matrix("Comprehensive Klines Collection"))
    um = next(s for s in config.selections if s.markets == (Market.FUTURES_UM,) and s.data_types[0].value == "klines")
    assert Interval.S1 not in um.intervals and Interval.MO1 in um.intervals and len(um.intervals) == 15
    assert "futures/um klines has no 1s interval: left out" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="binance_archive.config"):
        config = RunConfig.from_mapping(_without_matrix("Futures UM - Trading Analysis Dataset"))
    # premiumIndex is that workflow's name of premiumIndexKlines; intervals for types not asked for are said.
    assert [s.data_types[0].value for s in config.selections] == [
        "klines",
        "fundingRate",
        "premiumIndexKlines",
        "liquidationSnapshot",
        "metrics",
    ]
    assert "intervals of indexPriceKlines are left out: indexPriceKlines is not in data_types" in caplog.text
    config = RunConfig.from_mapping(_without_matrix("Guide: Market-Specific Collection"))
    assert [s.intervals for s in config.selections if s.data_types[0].value == "bookDepth"] == []  # spot has none


def test_interval_option_fills_in_kline_types_a_legacy_config_leaves_without(caplog: pytest.LogCaptureFixture) -> None:
    data = {**LEGACY, "data_types": ["klines", "markPriceKlines"], "intervals": {"klines": ["1h"]}}
    with caplog.at_level(logging.WARNING, logger="binance_archive.config"):
        config = RunConfig.from_mapping(data, intervals=["1d"])
    assert {(s.markets[0].value, s.data_types[0].value): s.intervals for s in config.selections} == {
        ("spot", "klines"): (Interval.H1,),
        ("futures/um", "klines"): (Interval.H1,),
        ("futures/um", "markPriceKlines"): (Interval.D1,),
    }
    assert "every interval" not in caplog.text
    with pytest.raises(ConfigurationError, match="apply to the collection workflow's schema only"):
        RunConfig.from_mapping(tomllib.loads(NATIVE), intervals=["1d"])


def test_the_workflow_s_runtime_settings_are_accepted(caplog: pytest.LogCaptureFixture) -> None:
    data = _without_matrix("API: Workflow Configuration Schema")
    with caplog.at_level(logging.INFO, logger="binance_archive.config"):
        config = RunConfig.from_mapping({**data, "output_directory": None})
    assert config.to == "output/data"  # local_data_dir, where output_directory is not given
    assert "environment, enable_monitoring, logging: settings of the collection workflow's own runtime" in caplog.text


def test_every_configuration_in_the_docs_loads(tmp_path: Path) -> None:
    (tmp_path / MATRIX).write_text(DEFAULT_CATALOG.to_json())
    docs = Path(__file__).parent.parent / "docs"
    loaded = 0
    for page in ("config.md", "quickstart.md"):
        for kind, block in re.findall(r"```(toml|json)\n(.*?)```", (docs / page).read_text(), re.DOTALL):
            data = tomllib.loads(block) if kind == "toml" else json.loads(block)
            if "selection" not in data and "markets" not in data:
                continue  # a result mapping, not a configuration
            config = RunConfig.from_mapping(data, base_dir=str(tmp_path))
            assert config.selections and config.legacy == ("markets" in data), page
            loaded += 1
    assert loaded >= 3  # config.md: one of each schema; quickstart.md: one (at least)


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
