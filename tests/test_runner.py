"""The event loop the library starts where it runs one itself (the command line, download_sync)."""

from __future__ import annotations

import asyncio
import warnings
from pathlib import Path

import pytest

from binance_archive.errors import ConfigurationError
from binance_archive.runner import LOOP_ENV, loop_name, run


async def _which() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_auto_prefers_uvloop_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("uvloop", reason="uvloop is not installed (it is in the test extra)")
    monkeypatch.delenv(LOOP_ENV, raising=False)
    assert loop_name() == "uvloop"
    assert run(_which()).startswith("uvloop")


def test_asyncio_can_be_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LOOP_ENV, "asyncio")
    assert loop_name() == "asyncio"
    assert run(_which()).startswith("asyncio")


def test_a_bad_choice_names_the_valid_ones_and_leaves_no_coroutine_unawaited(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LOOP_ENV, "trio")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a "coroutine was never awaited" warning would fail the test
        with pytest.raises(ConfigurationError, match="'trio' is not one of auto, uvloop, asyncio"):
            run(_which())


def test_the_command_tunes_the_collector_of_its_own_process_only() -> None:
    """``binance-archive`` freezes its start-up objects and widens the young generation; the library, imported
    into somebody else's process, leaves the collector alone."""
    import subprocess
    import sys

    probe = (
        "import gc, binance_archive.cli as cli\n"
        "before = gc.get_threshold()[0]\n"
        "cli.main = lambda: print(before, gc.get_threshold()[0], gc.get_freeze_count() > 0) or 0\n"
        "cli.console_main()\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["700", "10000", "True"], out


# -- Ctrl-C in a process that runs one job (the command, each process of --processes) -----------------------

RUN_UNTIL_INTERRUPTED = """
import asyncio, os, sys
from binance_archive.cli.output import stop_now
from binance_archive.common.staging import temp_path
from binance_archive.runner import handle_interrupts, run

swallow = sys.argv[1] == "swallow"
handle_interrupts(grace=float(sys.argv[2]), on_deadline=stop_now)  # as the command does

async def job():
    temp = temp_path(os.path.join(sys.argv[3], "file.zip"))  # a temporary file under way
    open(temp, "w").close()
    print("ready", flush=True)
    try:
        await asyncio.sleep(60)
    except asyncio.CancelledError:
        if not swallow:
            os.unlink(temp)
            print("unwound", flush=True)
            raise
    await asyncio.sleep(60)  # a job that will not stop: the grace period ends it

try:
    run(job())
except KeyboardInterrupt:
    print("interrupted", flush=True)
    raise SystemExit(130)
"""


def _run_until_interrupted(tmp_path: Path, mode: str, grace: float, signals: int) -> tuple[int, str, str, float]:
    import signal
    import subprocess
    import sys
    import time

    process = subprocess.Popen(
        [sys.executable, "-c", RUN_UNTIL_INTERRUPTED, mode, str(grace), str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    assert process.stdout.readline() == "ready\n"
    started = time.monotonic()
    for _ in range(signals):  # a terminal's Ctrl-C, the one a parent passes on, a user pressing it again
        process.send_signal(signal.SIGINT)
        time.sleep(0.01)
    out, err = process.communicate(timeout=30)
    return process.returncode, out, err, time.monotonic() - started


def test_ctrl_c_cancels_the_run_which_unwinds_and_raises_keyboard_interrupt_however_often_it_comes(
    tmp_path: Path,
) -> None:
    status, out, err, _ = _run_until_interrupted(tmp_path, "unwind", 30, signals=3)
    assert (status, out, err) == (130, "unwound\ninterrupted\n", "")
    assert not list(tmp_path.iterdir())


def test_a_run_that_does_not_unwind_is_ended_when_its_grace_period_is_over(tmp_path: Path) -> None:
    status, out, err, took = _run_until_interrupted(tmp_path, "swallow", 0.5, signals=2)
    assert (status, out, err) == (
        130,
        "",
        "binance-archive: interrupted; files in flight were discarded, a re-run resumes\n",
    )
    assert took < 20, took  # a bound, not a measurement: the grace period is half a second
    assert not list(tmp_path.iterdir()), "the process's temporary file is still there"


UNSTARTED = """
import os, signal
from binance_archive.runner import handle_interrupts, run

async def job():
    pass

handle_interrupts(grace=30)
coroutine = job()  # made for run(), as the command makes its download's: Ctrl-C comes before run() has it
try:
    os.kill(os.getpid(), signal.SIGINT)
    run(coroutine)
    print("not reached", flush=True)
except KeyboardInterrupt:
    del coroutine  # never awaited: Python would warn here
    print("interrupted", flush=True)
"""


def test_a_coroutine_ctrl_c_kept_from_starting_is_not_warned_about() -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-W", "default", "-c", UNSTARTED], capture_output=True, text=True,
                          timeout=30)  # fmt: skip
    assert (done.returncode, done.stdout, done.stderr) == (0, "interrupted\n", "")


SECOND_SIGINT_IN_THE_RACE = """
import ctypes, os, signal
from binance_archive.runner import handle_interrupts

handle_interrupts(grace=30)
getsig = ctypes.pythonapi.PyOS_getsig
getsig.restype, getsig.argtypes = ctypes.c_void_p, [ctypes.c_int]
trip = ctypes.CFUNCTYPE(None, ctypes.c_int)(getsig(signal.SIGINT))  # Python's own C-level handler

class Broken:
    def __del__(self):
        raise ValueError("another unraisable error")

try:
    os.kill(os.getpid(), signal.SIGINT)
    print("not reached", flush=True)
except KeyboardInterrupt:
    # A second SIGINT that the C handler caught just before the first one's handler made SIGINT ignored.
    trip(signal.SIGINT)
    for _ in range(3):  # Python looks at the signals it caught
        pass
    Broken()  # still reported
    print("interrupted", flush=True)
"""


def test_a_second_ctrl_c_caught_as_the_first_is_handled_is_not_reported() -> None:
    """The terminal's SIGINT and the one a --processes parent passes on come together: CPython's "Signal 2 ignored
    due to race condition" must not reach the user's terminal (other unraisable errors still do)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", SECOND_SIGINT_IN_THE_RACE], capture_output=True, text=True,
                          timeout=30)  # fmt: skip
    assert (done.returncode, done.stdout) == (0, "interrupted\n"), done.stderr
    assert "race condition" not in done.stderr
    assert "ValueError: another unraisable error" in done.stderr


DEFERRED = """
import os, signal, subprocess, sys
from binance_archive.runner import deferred_interrupts, handle_interrupts

handle_interrupts(grace=30)
probe = "import signal; print(signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, []))"
try:
    with deferred_interrupts():
        os.kill(os.getpid(), signal.SIGINT)
        print("held back", flush=True)
        child = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout.strip()
        print("child blocks SIGINT:", child, flush=True)
    print("not reached", flush=True)
except KeyboardInterrupt:
    print("delivered after the block", flush=True)
"""


def test_interrupts_deferred_while_processes_start_arrive_after_and_the_processes_start_with_them_held() -> None:
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", DEFERRED], capture_output=True, text=True, timeout=60)
    assert result.stdout.splitlines() == ["held back", "child blocks SIGINT: True", "delivered after the block"]
    assert result.stderr == ""
