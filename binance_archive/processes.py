"""One download as several processes (``binance-archive download --processes N``), each mirroring a shard.

A mirror of small files is bound by CPU per file, and one Python process uses one core. With ``--processes N``
the command starts N copies of itself, each with ``--shard`` naming a disjoint 1/N of the plan (the plan's
stable CRC-32 sharding, composed with a shard the user gave) and 1/N of the files in flight, reads their
progress and reports as JSON lines on their standard output, and prints one summary, or one JSON report,
for the whole run.

Each process writes atomically and verifies every file, so what holds for one process holds for N: a file is
stored verified or not at all, a re-run resumes. A child whose parent is gone stops at its next progress
line (its pipe is broken), losing only the files in flight.
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import IO, Any

from binance_archive.core.planning import Shard
from binance_archive.errors import ConfigurationError
from binance_archive.events import Event
from binance_archive.output import write_all
from binance_archive.progress import Counter, TerminalProgress
from binance_archive.report import Report

__all__ = ["MAX_PROCESSES", "ChildReporter", "child_shard", "merge_reports", "run_processes"]

MAX_PROCESSES = 64
CHILD_FLAG = "--child-report"
"""The hidden option that makes a child print JSON lines (progress, then its report) on its standard output."""
_COUNTS = ("done", "skipped", "missing", "failed", "retries", "bytes")


def check_processes(value: object) -> int:
    """``value`` as a number of processes.

    Raises:
        ConfigurationError: for anything but a whole number from 1 to :data:`MAX_PROCESSES`.
    """
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PROCESSES:
        raise ConfigurationError(f"--processes must be a whole number from 1 to {MAX_PROCESSES}, not {value!r}")
    return value


def child_shard(shard: Shard | None, index: int, processes: int) -> Shard:
    """Child ``index``'s shard: within the user's shard ``k/n`` (or the whole plan), every ``processes``-th part.

    A file is in shard ``k/n`` when ``crc32(key) % n == k``; taking ``(k + n*index) / (n*processes)`` for
    ``index`` in ``0..processes-1`` splits exactly those files into disjoint parts.
    """
    k, n = shard or (0, 1)
    return k + n * index, n * processes


class ChildReporter(Counter):
    """A child's progress callback: its counts as a JSON line on ``stream`` at most every ``interval`` seconds."""

    def __init__(self, stream: IO[str], *, interval: float = 0.25) -> None:
        super().__init__()
        self._stream = stream
        self._interval = interval
        self._last = 0.0

    def __call__(self, event: Event) -> None:
        super().__call__(event)
        now = time.monotonic()
        if now - self._last >= self._interval:
            self._last = now
            self.send()

    def send(self) -> None:
        # A broken pipe (the parent is gone) raises here, and ends the child: what it was fetching is discarded.
        write_all(self._stream, json.dumps({"progress": {name: getattr(self, name) for name in _COUNTS}}) + "\n")

    def finish(self, report: Report) -> None:
        self.send()
        # One line, however many outcomes it holds (written whole: see write_all).
        write_all(self._stream, json.dumps({"report": report.to_dict()}, ensure_ascii=False) + "\n")


def merge_reports(reports: Sequence[Report], duration: float) -> Report:
    """One report for the whole run: counts and outcomes summed, the first reason to stop, the parent's time."""
    merged = Report(duration=duration)
    if reports:
        merged.started_at = min(r.started_at for r in reports)
    for report in reports:
        merged.downloaded += report.downloaded
        merged.skipped += report.skipped
        merged.missing += report.missing
        merged.failed += report.failed
        merged.bytes += report.bytes
        merged.outcomes.extend(report.outcomes)
        merged.stopped = merged.stopped or report.stopped
    return merged


def run_processes(
    argv: Sequence[str],
    *,
    processes: int,
    shard: Shard | None,
    concurrency: int,
    progress: TerminalProgress | None,
) -> tuple[Report | None, int]:
    """Run ``binance-archive`` with ``argv`` (a download) as ``processes`` children, one shard each.

    Returns the merged report (``None`` when a child ended without one) and the worst exit status of the
    children (0 when all succeeded; 2, a usage error, or 130, interrupted, take precedence over 1).
    """
    started = time.perf_counter()
    per_child = max(1, concurrency // processes)
    children: list[subprocess.Popen[str]] = []
    lines: queue.Queue[tuple[int, str | None]] = queue.Queue()
    try:
        for index in range(processes):
            k, n = child_shard(shard, index, processes)
            command = [sys.executable, "-m", "binance_archive", *argv]
            command += ["--processes", "1", "--shard", f"{k}/{n}", "--concurrency", str(per_child), CHILD_FLAG]
            child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
            children.append(child)
            assert child.stdout is not None
            threading.Thread(target=_pump, args=(index, child.stdout, lines), daemon=True).start()
        reports, statuses = _collect(children, lines, progress)
    except BaseException:
        # Interrupted (a Ctrl-C reaches the children too; a signal to this process alone does not) or failed:
        # never leave a child behind. SIGINT first, which a child takes as Ctrl-C: it discards what is in flight.
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGINT)
        for child in children:
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        raise
    statuses = [s if s >= 0 else 1 for s in statuses]  # killed by a signal: a failure
    status = max(statuses, key=lambda s: (s in (2, 130), s != 0, s))
    complete = len(reports) == processes
    return (merge_reports(reports, time.perf_counter() - started) if complete else None), status


def _pump(index: int, stream: IO[str], lines: queue.Queue[tuple[int, str | None]]) -> None:
    for line in stream:
        lines.put((index, line))
    lines.put((index, None))


def _collect(
    children: list[subprocess.Popen[str]],
    lines: queue.Queue[tuple[int, str | None]],
    progress: TerminalProgress | None,
) -> tuple[list[Report], list[int]]:
    counts: list[dict[str, int]] = [{} for _ in children]
    reports: list[Report] = []
    open_streams = len(children)
    while open_streams:
        index, line = lines.get()
        if line is None:
            open_streams -= 1
            continue
        try:
            message: dict[str, Any] = json.loads(line)
        except ValueError:
            sys.stderr.write(line)  # not ours: pass it on rather than lose it
            continue
        if "report" in message:
            reports.append(Report.from_dict(message["report"]))
        elif "progress" in message and progress is not None:
            counts[index] = message["progress"]
            for name in _COUNTS:
                setattr(progress, name, sum(c.get(name, 0) for c in counts))
            progress.redraw()
    return reports, [child.wait() for child in children]
