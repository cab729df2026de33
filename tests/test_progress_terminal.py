"""The progress line on a real terminal: fitted to its width, redrawn in place, never a line left behind.

The command runs as a process of its own with its standard error on a pseudo-terminal whose window size is set
(TIOCSWINSZ), as a terminal emulator sets it; everything it draws there is read back from the terminal's other end.
"""

from __future__ import annotations

import fcntl
import os
import re
import struct
import subprocess
import sys
import termios
import threading
from pathlib import Path

import pytest

from binance_archive import Selection
from binance_archive.progress import Counter
from binance_archive.testing import build_archive

from .engine.scenario import TODAY, planned
from .reliability.support import ServerThread

# 2 symbols x 60 days: at 4 files in flight and 20 ms a request, a run of a second or two, so the line is redrawn
# many times (at most ten a second).
SELECTION = Selection(
    markets="spot", data_types="klines", symbols=("BTCUSDT", "ETHUSDT"), intervals="1h", start="2024-01-01",
    end="2024-02-29", periods="daily",
)  # fmt: skip
ARGS = ["--market", "spot", "--data-type", "klines", "--symbol", "BTCUSDT,ETHUSDT", "--interval", "1h",
        "--start", "2024-01-01", "--end", "2024-02-29", "--period", "daily", "--today", TODAY.isoformat(),
        "--concurrency", "4"]  # fmt: skip
ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def run_on_terminal(argv: list[str], columns: int, *, bound: float = 120) -> tuple[int, str, str]:
    """Run the command with its standard error on a pseudo-terminal ``columns`` wide; (status, stdout, what the
    terminal received)."""
    leader, follower = os.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}  # the window size, not these
    received = bytearray()

    def read() -> None:
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO: the last writer closed the terminal
                return
            if not data:
                return
            received.extend(data)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        process = subprocess.run(
            [sys.executable, "-m", "binance_archive", *argv], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=follower, env=env, timeout=bound, check=False,
        )  # fmt: skip
    finally:
        os.close(follower)
    reader.join(10)
    os.close(leader)
    return process.returncode, process.stdout.decode(), received.decode(errors="replace")


def drawings(terminal: str) -> tuple[list[str], int]:
    """Every state of the line drawn (escape sequences removed), and how many lines the output has in all."""
    text = terminal.replace("\r\n", "\n")  # the terminal turns each newline into a carriage return and newline
    drawn = [ESCAPE.sub("", piece) for piece in re.split(r"[\r\n]", text)]
    return [piece for piece in drawn if piece], text.count("\n")


@pytest.mark.parametrize(("columns", "processes"), [(40, 1), (80, 1), (120, 1), (80, 2)])
def test_the_download_line_fits_the_terminal_and_is_redrawn_in_place(
    tmp_path: Path, columns: int, processes: int
) -> None:
    build_archive(tmp_path / "up", planned(SELECTION), max_rows=10)
    with ServerThread(tmp_path / "up", latency=0.02) as server:
        status, out, terminal = run_on_terminal(
            ["download", *ARGS, "--to", str(tmp_path / "mirror"), "--base-url", server.base_url,
             "--processes", str(processes)],
            columns,
        )  # fmt: skip
    assert status == 0, terminal
    assert "downloaded" in out and str(len(planned(SELECTION))) in out
    lines, newlines = drawings(terminal)
    assert len(lines) >= 3, f"the line was drawn {len(lines)} times: the test tests little ({terminal!r})"
    too_wide = [line for line in lines if len(line) > columns - 1]
    assert not too_wide, f"lines wider than {columns - 1} columns: {too_wide[:3]}"
    # One line in all: redrawn in place, ended once when the run is over.
    assert newlines == 1 and terminal.endswith("\n"), repr(terminal[-300:])
    total = len(planned(SELECTION))
    assert f"{total}/{total}" in lines[-1], lines[-1]


def test_the_demo_line_fits_an_80_column_terminal(tmp_path: Path) -> None:
    status, out, terminal = run_on_terminal(["demo", "--to", str(tmp_path / "demo")], 80)
    assert status == 0, out + terminal
    lines, newlines = drawings(terminal)
    assert lines, "the demo drew no progress line"
    assert max(len(line) for line in lines) <= 79, [line for line in lines if len(line) > 79]
    assert newlines == 1, repr(terminal)


@pytest.mark.parametrize("width", [200, 120, 100, 80, 60, 40, 30, 20, 10, 2])
def test_a_line_is_fitted_by_dropping_the_least_useful_fields_first(width: int) -> None:
    counter = Counter(total=5000)
    counter.done, counter.skipped, counter.failed, counter.bytes = 1200, 34, 3, 12_345_678
    counter.started -= 1e6  # a rate that does not change between two calls
    full = counter.line()
    fitted = counter.line(width)
    assert len(fitted) <= width - 1
    if len(full) <= width - 1:
        assert fitted == full  # nothing dropped when it fits
    if width >= 30:
        assert "1237/5000" in fitted and "3 failed" in fitted  # progress and failures are kept longest
    if width >= 60:
        assert fitted.startswith("[")  # the bar stays while it can
    if width >= 80:
        assert "files/s" in fitted
    assert "0 missing" not in fitted or fitted == full  # a zero tally goes first


def test_a_line_on_a_stream_that_is_no_terminal_is_drawn_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Written to a file (not a terminal), the line is what it always was: whole, whatever COLUMNS says."""
    from binance_archive.progress import TerminalProgress

    monkeypatch.setenv("COLUMNS", "40")
    with open(tmp_path / "log", "w") as stream:
        bar = TerminalProgress(stream, total=10)
        bar.done, bar.started = 4, bar.started - 1e6  # a rate that does not change between two calls
        bar.close()
    text = (tmp_path / "log").read_bytes().decode()
    assert text == "\r\x1b[2K" + bar.line() + "\n" and len(bar.line()) > 80
