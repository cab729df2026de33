"""``download --processes N``: one download as N processes, one shard of the plan each."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from binance_archive import Selection
from binance_archive.cli import main
from binance_archive.cli.processes import START_ENV, _lines, child_shard, start_method
from binance_archive.core import in_shard
from binance_archive.errors import ConfigurationError
from binance_archive.report import FileOutcome, Outcome, Report, merge_reports
from binance_archive.testing import FakeArchiveServer, build_archive
from binance_archive.verification import ProblemKind, VerifyReport, verify_storage

from .engine.scenario import TODAY, planned
from .reliability.support import wait_until

SELECTION = Selection(
    markets="spot", data_types="klines", symbols=["BTCUSDT", "ETHUSDT"], intervals="1h", start="2024-01-01",
    end="2024-01-20", periods="daily",
)  # fmt: skip
ARGS = ["--market", "spot", "--data-type", "klines", "--symbol", "BTCUSDT,ETHUSDT", "--interval", "1h",
        "--start", "2024-01-01", "--end", "2024-01-20", "--period", "daily", "--today", TODAY.isoformat()]  # fmt: skip


@pytest.fixture
def upstream(tmp_path: Path) -> Path:
    root = tmp_path / "upstream"
    build_archive(root, planned(SELECTION), max_rows=10)
    return root


async def cli(*argv: str) -> tuple[int, str]:
    """The command in a thread: the fake archive keeps serving on this loop meanwhile."""
    out = io.StringIO()
    status = await asyncio.to_thread(main, list(argv), out=out)
    return status, out.getvalue()


LINUX = sys.platform.startswith("linux")


async def command(*argv: str, start: str) -> tuple[int, str, str]:
    """The command as a process of its own (single-threaded, so it may fork), its processes started by ``start``."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "binance_archive", *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, START_ENV: start},
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def test_the_start_method_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(START_ENV, "spawn")
    assert start_method() == "spawn"
    monkeypatch.setenv(START_ENV, "vfork")
    with pytest.raises(ConfigurationError, match="auto, fork, spawn"):
        start_method()


def test_no_fork_while_other_threads_run(monkeypatch: pytest.MonkeyPatch) -> None:
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        monkeypatch.setenv(START_ENV, "auto")
        assert start_method() == "spawn"
        monkeypatch.setenv(START_ENV, "fork")
        with pytest.raises(ConfigurationError, match="threads"):
            start_method()
    finally:
        stop.set()
        thread.join()


@pytest.mark.parametrize("start", ["auto", "fork", "spawn"])
async def test_the_command_mirrors_the_plan_once_however_its_processes_start(
    start: str, upstream: Path, tmp_path: Path
) -> None:
    if start == "fork" and not LINUX:
        pytest.skip("the processes are forked on Linux only")
    expected = "fork" if LINUX and start != "spawn" else "spawn"
    mirror = tmp_path / "mirror"
    files = planned(SELECTION)
    async with FakeArchiveServer(upstream) as server:
        status, out, err = await command("-v", "download", *ARGS, "--to", str(mirror), "--base-url", server.base_url,
                                         "--processes", "3", "--json", start=start)  # fmt: skip
        assert status == 0, err
        assert f"downloading as 3 processes, started by {expected}" in err
        report = json.loads(out)  # one report for the three processes, nothing else on the output
        assert report["downloaded"] == len(files) and report["ok"]
        assert sorted(o["key"] for o in report["outcomes"]) == sorted(f.key for f in files)
        assert {server.stats.by_key[k] for f in files for k in (f.key, f.checksum_key)} == {1}
    checked = await verify_storage_of(mirror)
    assert checked.ok and checked.checked == len(files)


@pytest.mark.skipif(not LINUX, reason="the processes are forked on Linux only")
async def test_forked_processes_make_their_own_pyreqwest_clients(upstream: Path, tmp_path: Path) -> None:
    """The parent imports pyreqwest before forking but makes no client: a client starts a Tokio thread, which a
    fork would not copy (a child would wait on it forever)."""
    files = planned(SELECTION)
    async with FakeArchiveServer(upstream) as server:
        status, out, err = await command("-v", "download", *ARGS, "--to", str(tmp_path / "mirror"), "--json",
                                         "--base-url", server.base_url, "--processes", "2",
                                         "--transport-option", "client=pyreqwest", start="fork")  # fmt: skip
        assert status == 0, err
        assert "started by fork" in err
        assert json.loads(out)["downloaded"] == len(files)
        assert {server.stats.by_key[k] for f in files for k in (f.key, f.checksum_key)} == {1}


@pytest.mark.skipif(not LINUX, reason="the processes are forked on Linux only")
async def test_a_killed_forked_process_fails_the_run_and_corrupts_nothing(upstream: Path, tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    async with FakeArchiveServer(upstream, latency=0.2) as server:  # slow: the children are still at work
        parent = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "binance_archive", "download", *ARGS, "--to", str(mirror),
            "--base-url", server.base_url, "--processes", "2", "--concurrency", "4", "--quiet",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**os.environ, START_ENV: "fork"},
        )  # fmt: skip
        assert await wait_until(lambda: server.stats.requests >= 6, bound=60), "the download never started"
        children = _children_of(parent.pid)
        assert len(children) == 2, children
        os.kill(children[0], signal.SIGKILL)
        _, err = await asyncio.wait_for(parent.communicate(), 60)
    assert parent.returncode == 1, err.decode()
    assert "ended without its report (status 1)" in err.decode()
    assert _children_of(parent.pid) == []
    # The survivor finished its shard; the killed one lost only what it had in flight, and nothing is corrupt.
    problems = (await verify_storage_of(mirror)).problems
    assert all(p.kind is ProblemKind.UNVERIFIED for p in problems), problems
    assert list(mirror.rglob("*.zip")), "the surviving process stored nothing"


def _children_of(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return [int(child) for child in handle.read().split()]
    except OSError:  # the process is gone
        return []


def test_child_shards_split_a_shard_exactly() -> None:
    keys = [f.key for f in planned(SELECTION)]
    for shard in (None, (1, 3)):
        parts = [child_shard(shard, i, 4) for i in range(4)]
        chosen = [{k for k in keys if in_shard(k, part)} for part in parts]
        expected = {k for k in keys if shard is None or in_shard(k, shard)}
        assert set().union(*chosen) == expected
        assert sum(len(c) for c in chosen) == len(expected), "the parts overlap"
        assert all(chosen), "a part is empty: the test tests little"


def test_the_children_s_lines_are_read_whole_on_the_main_thread() -> None:
    # A megabyte line in small writes (a report of many outcomes), lines of two children interleaved, a character
    # of several bytes, and a last line without its newline.
    big = "x" * 1_000_000
    code = (
        "import sys, time\n"
        "out = sys.stdout.buffer\n"
        "data = (sys.argv[1] + ' \u00b5s\\n' + 'x' * int(sys.argv[2]) + '\\nend').encode()\n"
        "for i in range(0, len(data), 4093):\n"
        "    out.write(data[i:i + 4093]); out.flush()\n"
        "    if i % 40930 == 0: time.sleep(0.001)\n"
    )
    children = [
        subprocess.Popen([sys.executable, "-c", code, f"child {n}", str(len(big))], stdout=subprocess.PIPE, text=True)
        for n in range(2)
    ]
    threads = threading.active_count()
    got: dict[int, list[str]] = {0: [], 1: []}
    for index, line in _lines(children):  # type: ignore[arg-type]
        assert threading.active_count() == threads, "a thread reads the children: a Ctrl-C can break its queue"
        got[index].append(line)
    assert [child.wait() for child in children] == [0, 0]
    for n in range(2):
        assert got[n] == [f"child {n} \u00b5s\n", big + "\n", "end"]


def test_reports_merge_counts_outcomes_and_the_first_stop() -> None:
    a = Report(downloaded=2, skipped=1, bytes=10, outcomes=[FileOutcome("a", Outcome.DOWNLOADED, 5)])
    b = Report(failed=1, missing=1, bytes=3, stopped="the disk is full", outcomes=[FileOutcome("b", Outcome.FAILED)])
    merged = merge_reports([a, b], duration=1.5)
    assert (merged.downloaded, merged.skipped, merged.missing, merged.failed, merged.bytes) == (2, 1, 1, 1, 13)
    assert [o.key for o in merged.outcomes] == ["a", "b"] and merged.stopped == "the disk is full"
    assert merged.duration == 1.5 and not merged.ok


async def test_processes_mirror_the_plan_once_and_resume(upstream: Path, tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    files = planned(SELECTION)
    async with FakeArchiveServer(upstream) as server:
        status, out = await cli("download", *ARGS, "--to", str(mirror), "--base-url", server.base_url,
                                "--processes", "3", "--json")  # fmt: skip
        assert status == 0, out
        report = json.loads(out)
        assert report["downloaded"] == len(files) and report["ok"]
        assert sorted(o["key"] for o in report["outcomes"]) == sorted(f.key for f in files)
        # Each file fetched exactly once: the processes' shards are disjoint and cover the plan.
        assert {server.stats.by_key[k] for f in files for k in (f.key, f.checksum_key)} == {1}
        checked = await verify_storage_of(mirror)
        assert checked.ok and checked.checked == len(files)

        server.stats.reset()
        status, out = await cli("download", *ARGS, "--to", str(mirror), "--base-url", server.base_url,
                                "--processes", "2", "--json")  # fmt: skip
        assert status == 0 and json.loads(out)["skipped"] == len(files)
        assert server.stats.requests == 0


async def test_processes_within_a_shard_fetch_only_that_shard(upstream: Path, tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    wanted = {f.key for f in planned(SELECTION) if in_shard(f.key, (1, 2))}
    async with FakeArchiveServer(upstream) as server:
        status, out = await cli("download", *ARGS, "--to", str(mirror), "--base-url", server.base_url,
                                "--processes", "2", "--shard", "1/2", "--quiet")  # fmt: skip
    assert status == 0 and out == ""
    stored = {p.relative_to(mirror).as_posix() for p in mirror.rglob("*.zip")}
    assert stored == wanted


async def test_a_failing_file_fails_the_run_and_is_named_once(upstream: Path, tmp_path: Path) -> None:
    victim = planned(SELECTION)[3]
    (upstream / victim.checksum_key).write_text("0" * 64 + "  " + victim.filename)  # a sidecar that lies
    async with FakeArchiveServer(upstream) as server:
        status, out = await cli("download", *ARGS, "--to", str(tmp_path / "mirror"), "--base-url", server.base_url,
                                "--processes", "2")  # fmt: skip
    assert status == 1
    failures = [line for line in out.splitlines() if line.startswith("failed: ")]
    assert len(failures) == 1 and failures[0].startswith(f"failed: {victim.key}: ") and "does not match" in out


@pytest.mark.parametrize("value", ["0", "65", "two"])
def test_a_bad_number_of_processes_is_a_usage_error(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    try:
        status = main(["download", *ARGS, "--processes", value], out=io.StringIO())
    except SystemExit as exc:  # argparse refuses what is not a number at all, with its usage line
        status = exc.code  # type: ignore[assignment]
    assert status == 2
    assert "--processes" in capsys.readouterr().err


async def verify_storage_of(mirror: Path) -> VerifyReport:
    from binance_archive.storages.local import LocalStorage

    return await verify_storage(LocalStorage(mirror))


@pytest.mark.parametrize("start", ["fork", "spawn"] if LINUX else ["spawn"])
async def test_an_interrupted_parent_stops_its_processes_and_leaves_a_clean_mirror(
    start: str, upstream: Path, tmp_path: Path
) -> None:
    from binance_archive.common.staging import TEMP_PREFIX

    mirror = tmp_path / "mirror"
    async with FakeArchiveServer(upstream, latency=0.2) as server:  # slow: the run is still going when stopped
        parent = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "binance_archive", "download", *ARGS, "--to", str(mirror),
            "--base-url", server.base_url, "--processes", "2", "--concurrency", "4", "--quiet",
            stderr=asyncio.subprocess.PIPE, env={**os.environ, START_ENV: start},
        )  # fmt: skip
        assert await wait_until(lambda: server.stats.requests >= 6, bound=60), "the download never started"
        parent.send_signal(signal.SIGINT)  # the parent alone, not its process group
        _, err = await asyncio.wait_for(parent.communicate(), 60)
    assert parent.returncode == 130, err.decode()
    assert err.decode().count("interrupted") == 1
    children = [p for p in os.listdir("/proc") if p.isdigit() and str(mirror) in _cmdline(p)]
    assert children == [], "a download process outlived its parent"
    assert not [p for p in mirror.rglob(f"{TEMP_PREFIX}*")], "a temporary file was left behind"
    # Nothing corrupt: at most a zip whose sidecar was not written yet (interrupted between the two).
    problems = (await verify_storage_of(mirror)).problems
    assert all(p.kind is ProblemKind.UNVERIFIED for p in problems), problems


def _cmdline(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().decode(errors="replace")
    except OSError:
        return ""


async def test_a_process_runs_its_shard_of_the_run_configuration(upstream: Path, tmp_path: Path) -> None:
    """What each process of ``--processes`` runs: a RunConfig (its shard), not the command line; it tells the parent
    its progress and its report as JSON lines."""
    from binance_archive.cli.processes import run_shard
    from binance_archive.config import RunConfig

    wanted = [f for f in planned(SELECTION) if in_shard(f.key, (0, 2))]
    async with FakeArchiveServer(upstream) as server:
        config = RunConfig(
            selections=(SELECTION,), to=str(tmp_path / "mirror"), base_url=server.base_url, today=TODAY, shard=(0, 2)
        )
        out = io.StringIO()
        status = await asyncio.to_thread(run_shard, config, detail="all", out=out)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert status == 0 and "progress" in lines[0] and "report" in lines[-1]
    report = Report.from_dict(lines[-1]["report"])
    assert sorted(o.key for o in report.outcomes) == sorted(f.key for f in wanted) and report.downloaded == len(wanted)
    assert lines[-2]["progress"]["done"] == len(wanted), "the last progress line counts every file"
