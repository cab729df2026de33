"""The command line, run in process through ``main`` (and once as a real subprocess)."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from binance_archive import DEFAULT_CATALOG, Selection, plan
from binance_archive.cli import main
from binance_archive.testing import FakeArchiveServer, build_archive

from .engine.scenario import TODAY, planned
from .support.mounts import mounted_tmpfs

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


ENDS_AT_ONCE = """
import atexit, os, sys, threading, time
from binance_archive.cli import console_script

def outlive():
    time.sleep(5)
    os.write(2, b"waited for\\n")

# A thread still running at the end: the interpreter's finalization would wait for it, os._exit does not.
threading.Thread(target=outlive).start()
atexit.register(lambda: sys.stderr.write("exit handler\\n"))
sys.argv = ["binance-archive", *sys.argv[1:]]
console_script()
"""


EVERY_DAY_OF_2024 = ["plan", *PLAN_ARGS, "--start", "2024-01-01", "--end", "2024-12-31", "--period", "daily"]


@pytest.mark.parametrize(("argv", "status"), [(EVERY_DAY_OF_2024, 0), (["plan"], 2)])
def test_the_script_ends_its_process_at_once_with_the_status_and_everything_said(argv: list[str], status: int) -> None:
    """``binance-archive`` skips the interpreter's finalization (where a Rust client's thread has aborted it) but not
    the exit handlers, and every line it wrote reaches the reader: stdout to a pipe is block-buffered."""
    result = subprocess.run(
        [sys.executable, "-c", ENDS_AT_ONCE, *argv, "--today", "2025-01-01"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == status, result.stderr
    assert "exit handler" in result.stderr and "waited for" not in result.stderr, result.stderr
    if status == 0:
        lines = result.stdout.splitlines()
        assert len(lines) == 366 and lines[-1].endswith("BTCUSDT-1m-2024-12-31.zip"), "every day of 2024, the last too"
    else:
        assert result.stdout == "" and "--market is required" in result.stderr, result.stderr


def test_the_script_stops_quietly_when_its_reader_goes_away() -> None:
    """``binance-archive plan ... | head -1``: the reader leaves after one line of ~2 MB (more than a pipe holds);
    the script still ends with 0 and nothing on standard error (its last flush goes nowhere, without a complaint)."""
    with subprocess.Popen(
        [sys.executable, "-m", "binance_archive", "plan", "--market", "spot", "--data-type", "klines", "--symbol",
         "BTCUSDT", "--interval", "1m,3m,5m,15m,30m,1h,2h,4h,6h,8h,12h,1d", "--start", "2017-08-17",
         "--end", "2024-12-31", "--period", "daily", "--today", "2025-01-01"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    ) as process:  # fmt: skip
        assert process.stdout is not None and process.stderr is not None
        first = process.stdout.readline()
        process.stdout.close()
        errors = process.stderr.read()
        assert process.wait(timeout=120) == 0, errors
    assert first.endswith(b"BTCUSDT-1m-2017-08-17.zip\n") and errors == b"", errors


# -- a selection that plans nothing ----------------------------------------------------------------------------

NOTHING = {
    "retired type after its last date": (
        ["--market", "um", "--data-type", "bookTicker", "--symbol", "BTCUSDT", "--start", "2024-06-01"],
        "bookTicker on futures/um ended 2024-03-30",
    ),
    "the same, symbols from the listing": (
        ["--market", "um", "--data-type", "bookTicker", "--start", "2024-06-01"],
        "bookTicker on futures/um ended 2024-03-30",
    ),
    "a start in the future": (
        [*PLAN_ARGS, "--start", "2030-01-01"],
        "the start 2030-01-01 is in the future",
    ),
    "an end before the type's first date": (
        ["--market", "um", "--data-type", "bookDepth", "--symbol", "BTCUSDT", "--start", "2022-01-01", "--end", "2022-06-30"],
        "bookDepth on futures/um starts 2023-01-01",
    ),
    "monthly files only, the month not over": (
        ["--market", "um", "--data-type", "fundingRate", "--symbol", "BTCUSDT", "--start", "2026-11-03"],
        "there are only monthly files of fundingRate on futures/um, and the month 2026-11 is not over yet",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(NOTHING))
async def test_a_selection_that_plans_nothing_says_why_and_exits_2(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio

    argv, reason = NOTHING[case]
    (tmp_path / "upstream").mkdir()
    async with FakeArchiveServer(tmp_path / "upstream") as server:
        urls = ["--base-url", server.base_url, "--listing-url", server.listing_url]
        for command in (["plan", *argv], ["download", *argv, "--to", str(tmp_path / "m"), *urls]):
            if command[0] == "plan" and "--symbol" not in argv:
                continue  # plan needs symbols
            status, out = await asyncio.to_thread(run, [*command, "--today", "2026-11-22"])
            err = capsys.readouterr().err
            assert status == 2 and out == "", (command, out)
            assert f"binance-archive: error: nothing to download: {reason}" in err, err
            assert len(err.strip().splitlines()) == 1, "one line says why"
        assert server.stats.requests == 0, "refused before any request, the listing's included"
    assert not (tmp_path / "m").exists()


def test_a_part_that_plans_nothing_is_named_and_the_rest_planned(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["plan", "--market", "um", "--data-type", "bookTicker,aggTrades", "--symbol", "BTCUSDT", "--start", "2024-06-01",
            "--end", "2024-06-02", "--today", "2026-11-22"]  # fmt: skip
    status, out = run(argv)
    assert status == 0
    assert out.splitlines() == [
        "data/futures/um/daily/aggTrades/BTCUSDT/BTCUSDT-aggTrades-2024-06-01.zip",
        "data/futures/um/daily/aggTrades/BTCUSDT/BTCUSDT-aggTrades-2024-06-02.zip",
    ]
    err = capsys.readouterr().err
    assert (
        err
        == "binance-archive: note: left out, as it plans no file: bookTicker on futures/um ended 2024-03-30 (retired)\n"
    )


async def test_the_library_refuses_an_impossible_download_and_warns_of_a_part_left_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import datetime as dt

    from binance_archive import Archive, ConfigurationError

    today = dt.date(2024, 1, 10)
    # 1h klines of three days, and 1w klines, which come in monthly files only while January is not over.
    sel = Selection(markets="spot", data_types="klines", symbols="BTCUSDT", intervals=("1h", "1w"), start="2024-01-03",
                    end="2024-01-05")  # fmt: skip
    files = [f for f in plan(sel, today=today)]
    assert [f.interval.value for f in files if f.interval] == ["1h"] * 3
    build_archive(tmp_path / "upstream", files, max_rows=5)
    async with FakeArchiveServer(tmp_path / "upstream") as server:
        archive = Archive(tmp_path / "m", base_url=server.base_url)
        report = await archive.download(sel, today=today)
        assert report.downloaded == 3 and report.ok
        assert "left out, as it plans no file: there are only monthly files of 1w klines on spot" in caplog.text
        with pytest.raises(ConfigurationError, match="nothing to download: bookTicker on futures/um ended 2024-03-30"):
            await archive.download(Selection(markets="um", data_types="bookTicker", start="2024-06-01"), today=TODAY)
        assert server.stats.listing_requests == 0


# -- the target: a file, or not writable ----------------------------------------------------------------------


async def test_a_target_that_is_a_file_is_refused_before_any_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio

    sel = Selection(markets="spot", data_types="klines", symbols="BTCUSDT", intervals="1h", start="2024-01-30",
                    end="2024-02-02")  # fmt: skip
    build_archive(tmp_path / "upstream", planned(sel), max_rows=5)
    (tmp_path / "a-file").write_text("not a folder")
    args = ["download", "--market", "spot", "--data-type", "klines", "--symbol", "BTCUSDT", "--interval", "1h",
            "--start", "2024-01-30", "--end", "2024-02-02", "--today", "2026-11-22"]  # fmt: skip
    async with FakeArchiveServer(tmp_path / "upstream") as server:
        for to, extra, message in (
            ("a-file", [], "is a file"),
            ("a-file/mirror", [], f"lies under {tmp_path / 'a-file'}, which is a file"),
            ("a-file", ["--processes", "2"], "is a file"),
        ):
            status, out = await asyncio.to_thread(
                run, [*args, "--to", str(tmp_path / to), "--base-url", server.base_url, *extra]
            )
            err = capsys.readouterr().err
            assert status == 2 and out == "", err
            assert err.count("binance-archive: error: the mirror folder") == 1 and message in err, err
        assert server.stats.requests == 0
    assert (tmp_path / "a-file").read_text() == "not a folder"


def _unprivileged() -> list[str]:
    """The command prefix that runs a process as an unprivileged user: none when this is one already; as root,
    ``setpriv`` to nobody (root writes into a folder of any mode, so a mode alone would prove nothing)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root, and there is no setpriv to drop to an unprivileged user (root ignores modes)")
    return [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A folder every user may read and traverse (pytest's own are private to their owner)."""
    folder = Path(tempfile.mkdtemp(prefix="binance-archive-target-", dir="/tmp"))
    folder.chmod(0o755)
    yield folder
    subprocess.run(["chmod", "-R", "u+w", str(folder)], check=False)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def read_only_mount(tmp_path: Path) -> Iterator[Path]:
    """A read-only tmpfs: writes fail with EROFS for every user, root included (mounting needs root)."""
    with mounted_tmpfs(tmp_path / "ro", "ro,size=1m") as target:
        yield target


@pytest.mark.parametrize(
    "how",
    [
        "a folder of mode 0555, as an unprivileged user",
        "a folder not made yet, in a folder of mode 0555, as an unprivileged user",
        "a read-only file system",
        "a folder not made yet, on a read-only file system",
    ],
)
async def test_a_target_that_cannot_be_written_stops_before_any_request(
    how: str, tmp_path: Path, shared_tmp: Path, request: pytest.FixtureRequest
) -> None:
    import asyncio

    sel = Selection(markets="spot", data_types="klines", symbols="BTCUSDT", intervals="1h", start="2024-01-01",
                    end="2024-02-02")  # fmt: skip
    files = planned(sel)
    build_archive(tmp_path / "upstream", files, max_rows=5)
    if "0555" in how:
        prefix, folder = _unprivileged(), shared_tmp / "mirror"
        folder.mkdir(mode=0o555)
        folder.chmod(0o555)
        reason = "permission denied"
    else:
        prefix, folder = [], request.getfixturevalue("read_only_mount")
        reason = "the file system is read-only"
    mirror = folder / "new" / "mirror" if "not made yet" in how else folder
    expected = f"cannot write to {mirror}: {reason}"
    argv = ["download", "--market", "spot", "--data-type", "klines", "--symbol", "BTCUSDT", "--interval", "1h",
            "--start", "2024-01-01", "--end", "2024-02-02", "--today", "2026-11-22", "--to", str(mirror)]  # fmt: skip
    async with FakeArchiveServer(tmp_path / "upstream") as server:
        process = await asyncio.create_subprocess_exec(
            *prefix, sys.executable, "-m", "binance_archive", *argv, "--base-url", server.base_url, cwd="/",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = (b.decode() for b in await asyncio.wait_for(process.communicate(), 120))
        assert process.returncode == 1, err
        # Not one file requested (before: every file was fetched, then failed to be stored).
        assert server.stats.zip_requests == 0 and server.stats.checksum_requests == 0, err
    assert "Traceback" not in err
    assert f"stopped early: {expected}; nothing was fetched" in out, out
    assert "failed                             0" in out
    assert not any(folder.iterdir()), "nothing may be left behind"


def test_the_failure_summary_adds_up_to_the_failed_count() -> None:
    from binance_archive.cli.output import write_summary
    from binance_archive.report import FileOutcome, Outcome, Report

    def failure(i: int) -> FileOutcome:
        return FileOutcome(
            f"data/spot/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2024-01-{i:02d}.zip", Outcome.FAILED, error="x"
        )

    for kept, failed in ((3, 343), (25, 25), (20, 20), (3, 3)):
        # A report may count more failures than it kept outcomes for (merged, or read back from JSON).
        report = Report(failed=failed, outcomes=[failure(i + 1) for i in range(kept)])
        out = io.StringIO()
        write_summary(report, "m", out)
        lines = out.getvalue().splitlines()
        listed = sum(line.startswith("failed: ") for line in lines)
        more = [int(line.split()[2]) for line in lines if line.startswith("... and ")]
        assert listed == min(kept, 20) and listed + sum(more) == failed, lines


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
