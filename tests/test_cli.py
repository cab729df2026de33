"""The command line, run in process through ``main`` (and once as a real subprocess)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from binance_archive import DEFAULT_CATALOG, Selection, plan
from binance_archive.cli import main
from binance_archive.testing import FakeArchiveServer, build_archive

from .engine.scenario import TODAY, planned

PLAN_ARGS = ["--market", "spot", "--data-type", "klines", "--symbol", "BTCUSDT", "--interval", "1m"]


def run(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    status = main(argv, out=out)
    return status, out.getvalue()


def test_plan_prints_one_key_a_line() -> None:
    status, out = run(["plan", *PLAN_ARGS, "--start", "2024-01-01", "--end", "2024-03-15", "--today", "2026-11-22"])
    expected = [
        f.key
        for f in plan(
            Selection(
                markets="spot",
                data_types="klines",
                symbols="BTCUSDT",
                intervals="1m",
                start="2024-01-01",
                end="2024-03-15",
            ),
            today=TODAY,
        )
    ]
    assert status == 0 and out.splitlines() == expected
    assert expected[0] == "data/spot/monthly/klines/BTCUSDT/1m/BTCUSDT-1m-2024-01.zip" and len(expected) == 2 + 15


def test_plan_repeatable_and_comma_separated_options() -> None:
    status, out = run(
        ["plan", "--market", "spot", "--data-type", "klines", "--symbol", "BTCUSDT,ETHUSDT", "--interval", "1h",
         "--interval", "1d", "--start", "2024-01-01", "--end", "2024-01-02", "--period", "daily", "--today", "2026-11-22"]
    )  # fmt: skip
    assert status == 0 and len(out.splitlines()) == 2 * 2 * 2


def test_plan_shards_split_the_plan() -> None:
    base = [
        "plan",
        *PLAN_ARGS,
        "--start",
        "2024-01-01",
        "--end",
        "2024-02-20",
        "--period",
        "daily",
        "--today",
        "2026-11-22",
    ]
    whole = run(base)[1].splitlines()
    parts = [run([*base, "--shard", f"{k}/3"])[1].splitlines() for k in range(3)]
    assert sorted(key for part in parts for key in part) == sorted(whole)
    assert all(parts)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--market", "spot", "--data-type", "fundingRate", "--symbol", "BTCUSDT", "--start", "2024-01-01"], "valid data types for spot"),
        (["--market", "mars", "--data-type", "klines", "--symbol", "BTCUSDT", "--start", "2024-01-01"], "valid choices: spot, futures/um"),
        ([*PLAN_ARGS[:6], "--interval", "7m", "--start", "2024-01-01"], "valid choices: 1s, 1m"),
        ([*PLAN_ARGS, "--start", "2024-13-01"], "YYYY-MM-DD"),
        ([*PLAN_ARGS, "--start", "2024-02-01", "--end", "2024-01-01"], "before the start date"),
        ([*PLAN_ARGS, "--start", "2024-01-01", "--shard", "3/3"], "K must be in 0..2"),
        (["--market", "spot", "--data-type", "klines", "--symbol", "../etc", "--interval", "1m", "--start", "2024-01-01"], "escape"),
    ],
)  # fmt: skip
def test_bad_options_exit_2_with_the_reason(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, out = run(["plan", *argv])
    assert status == 2 and out == ""
    assert message in capsys.readouterr().err


def test_catalog_command_round_trips(tmp_path: Path) -> None:
    status, out = run(["catalog", "--format", "json"])
    assert status == 0
    path = tmp_path / "catalog.json"
    path.write_text(out)
    status, again = run(["catalog", "--format", "json", "--catalog", str(path)])
    assert again == out and json.loads(out)["entries"][0]["market"] == DEFAULT_CATALOG.entries[0].market.value


def test_docs_catalog_table_is_generated_from_the_code() -> None:
    doc = (Path(__file__).parent.parent / "docs" / "catalog.md").read_text()
    marker = "<!-- generated: binance-archive catalog -->\n"
    assert marker in doc, "docs/catalog.md lost its generated marker"
    assert doc.split(marker, 1)[1] == DEFAULT_CATALOG.to_markdown(), (
        "docs/catalog.md is out of date: regenerate the table with `binance-archive catalog`"
    )


async def test_download_and_symbols_commands(tmp_path: Path) -> None:
    upstream = tmp_path / "upstream"
    sel = Selection(
        markets="spot",
        data_types="klines",
        symbols=("BTCUSDT", "ETHUSDT"),
        intervals="1h",
        start="2024-01-30",
        end="2024-02-02",
    )
    files = planned(sel)
    build_archive(upstream, files, max_rows=5)
    async with FakeArchiveServer(upstream, corrupt_keys={files[0].key}) as server:
        urls = ["--base-url", server.base_url, "--listing-url", server.listing_url]
        args = ["download", "--market", "spot", "--data-type", "klines", "--symbol", "BTCUSDT,ETHUSDT", "--interval", "1h",
                "--start", "2024-01-30", "--end", "2024-02-02", "--today", "2026-11-22", "--to", str(tmp_path / "m"), *urls]  # fmt: skip
        # The CLI runs its own event loop: run it in a thread so this test's loop keeps serving.
        import asyncio

        status, out = await asyncio.to_thread(run, [*args, "--json", "--transport-option", "read_timeout=5"])
        report = json.loads(out)
        assert status == 1 and report["failed"] == 1 and report["downloaded"] == len(files) - 1
        server.faults.corrupt_keys = set()
        status, out = await asyncio.to_thread(run, args)
        assert status == 0
        counts = {line[:28].strip(): line[28:].strip() for line in out.splitlines()[:4]}
        assert counts == {
            "downloaded": "1",
            "skipped (already stored)": str(len(files) - 1),
            "missing upstream": "0",
            "failed": "0",
        }
        status, out = await asyncio.to_thread(run, ["symbols", "--market", "spot", "--data-type", "klines", *urls])
        assert status == 0 and out.splitlines() == ["BTCUSDT", "ETHUSDT"]
        status, _ = await asyncio.to_thread(run, [*args, "--transport-option", "no_such_option=1"])
        assert status == 2


async def test_download_keeps_every_file_s_outcome_only_for_a_json_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The summary needs counts and problems; an outcome kept for each of millions of files would cost gigabytes."""
    import asyncio

    from binance_archive.config import RunConfig
    from binance_archive.report import Outcome

    sel = Selection(markets="spot", data_types="klines", symbols="BTCUSDT", intervals="1h", start="2024-01-30",
                    end="2024-02-02")  # fmt: skip
    files = planned(sel)
    build_archive(tmp_path / "upstream", files, max_rows=5)
    reports = []
    real_run = RunConfig.run

    async def run_and_keep(self: RunConfig, *args: object, **kwargs: object) -> object:
        report = await real_run(self, *args, **kwargs)  # type: ignore[arg-type]
        reports.append(report)
        return report

    monkeypatch.setattr(RunConfig, "run", run_and_keep)
    async with FakeArchiveServer(tmp_path / "upstream", missing_keys={files[1].key}) as server:
        args = ["download", "--market", "spot", "--data-type", "klines", "--symbol", "BTCUSDT", "--interval", "1h",
                "--start", "2024-01-30", "--end", "2024-02-02", "--today", "2026-11-22", "--base-url", server.base_url]  # fmt: skip
        for to, extra in (("summary", []), ("json", ["--json"])):
            status, out = await asyncio.to_thread(run, [*args, "--to", str(tmp_path / to), *extra])
            assert status == 0, out
    summary, full = reports
    assert summary.downloaded == full.downloaded == len(files) - 1 and summary.missing == full.missing == 1
    assert [o.outcome for o in summary.outcomes] == [Outcome.MISSING], "without --json: the problems only"
    assert sorted(o.key for o in full.outcomes) == sorted(f.key for f in files), "--json lists every file"


def test_console_script_runs_as_a_process() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "binance_archive", "plan", *PLAN_ARGS, "--start", "2024-01-01", "--end", "2024-01-01"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-01-01.zip\n"


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--retries", "0"], "--retries must be at least 1 (1 tries each request once), not 0"),
        (["--dead-after", "-1"], "--dead-after must be 0 (never stop) or more seconds, not -1"),
        (["--dead-after", "nan"], "--dead-after must be 0 (never stop) or more seconds, not nan"),
        (["--retries", "two"], "argument --retries: invalid int value: 'two'"),
    ],
)
def test_bad_retry_options_exit_2_before_any_request(
    option: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["download", *PLAN_ARGS, "--start", "2024-01-01", "--to", str(tmp_path / "m"), *option]
    try:
        status, _ = run(argv)
    except SystemExit as exc:  # argparse's own type errors
        status = exc.code  # type: ignore[assignment]
    assert status == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "m").exists()
