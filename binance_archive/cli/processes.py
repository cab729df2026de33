"""One download as several processes (``binance-archive download --processes N``), each mirroring a shard.

A mirror of small files is bound by CPU per file, and one Python process uses one core. With ``--processes N``
the command runs its :class:`~binance_archive.config.RunConfig` as N processes, each with a shard naming a
disjoint 1/N of the plan (the plan's stable CRC-32 sharding, composed with a shard the user gave) and 1/N of the
files in flight; it reads their progress and reports as JSON lines on their standard output, and prints one
summary, or one JSON report, for the whole run.

On Linux the processes are forked from the command once it has imported what a download needs (the HTTP client,
uvloop, cattrs): a fork starts in milliseconds and shares those modules' memory, where a new interpreter would
import them again, before its first request. Elsewhere, or when the calling process runs other threads (forking
those is unsafe), or with ``BINANCE_ARCHIVE_PROCESS_START=spawn``, each is a new Python interpreter that reads its
shard's configuration (pickled) from its standard input.

Each process writes atomically and verifies every file, so what holds for one process holds for N: a file is
stored verified or not at all, a re-run resumes. A child whose parent is gone stops at its next progress
line (its pipe is broken), losing only the files in flight.

Ctrl-C reaches every process of the terminal's group at once (and the parent passes it on, for a SIGINT sent to
it alone): each starts no new file, discards what it has in flight and ends within its grace period, quietly
however many SIGINTs it gets; the parent alone tells the user (:func:`binance_archive.runner.handle_interrupts`).
The processes start with SIGINT held back until they are ready for it, so that none is interrupted half-started.
"""

from __future__ import annotations

import base64
import contextlib
import gc
import json
import logging
import os
import pickle
import selectors
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from typing import IO, Any, Protocol, TextIO

import attrs

from binance_archive.cli.output import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    INTERRUPT_GRACE,
    error_line,
    write_all,
)
from binance_archive.common.staging import discard_live
from binance_archive.config import RunConfig
from binance_archive.core.planning import Shard, split_shard
from binance_archive.errors import BinanceArchiveError, ConfigurationError
from binance_archive.progress import PartProgress, TerminalProgress
from binance_archive.report import Report, json_converter, merge_reports
from binance_archive.runner import deferred_interrupts, handle_interrupts, loop_name, tune_for_one_job
from binance_archive.runner import run as run_loop

__all__ = [
    "MAX_PROCESSES",
    "START_ENV",
    "ChildReporter",
    "child_shard",
    "merge_reports",
    "run_processes",
    "run_shard",
    "spawned_child",
    "start_method",
]

log = logging.getLogger(__name__)

MAX_PROCESSES = 64
START_ENV = "BINANCE_ARCHIVE_PROCESS_START"
"""How the processes start: ``auto`` (the default: ``fork`` where it is safe, else ``spawn``), ``fork``, ``spawn``."""
_START_CHOICES = ("auto", "fork", "spawn")
_CHILD_GRACE = INTERRUPT_GRACE - 0.2
"""Seconds a process has to stop after Ctrl-C: less than the command's own, which waits for its processes."""


def check_processes(value: object) -> int:
    """``value`` as a number of processes.

    Raises:
        ConfigurationError: for anything but a whole number from 1 to :data:`MAX_PROCESSES`.
    """
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PROCESSES:
        raise ConfigurationError(f"--processes must be a whole number from 1 to {MAX_PROCESSES}, not {value!r}")
    return value


def start_method() -> str:
    """How :func:`run_processes` starts its processes here and now: ``fork`` or ``spawn`` (see the module's docstring).

    Raises:
        ConfigurationError: for a ``BINANCE_ARCHIVE_PROCESS_START`` that is none of the choices, or ``fork`` where
            forking is not possible or not safe.
    """
    choice = os.environ.get(START_ENV, "auto").strip().lower() or "auto"
    if choice not in _START_CHOICES:
        raise ConfigurationError(f"{START_ENV}={choice!r} is not one of {', '.join(_START_CHOICES)}")
    if choice == "spawn":
        return "spawn"
    # Linux only: elsewhere system libraries may not survive a fork (macOS's do not, by Apple's word).
    if not sys.platform.startswith("linux"):
        problem = f"forking is used on Linux only, not on {sys.platform}"
    elif threading.active_count() > 1:
        # A fork copies only the calling thread; a lock another thread held (logging's, a buffered file's) would
        # stay locked in the child forever.
        problem = f"this process runs {threading.active_count()} threads, and a fork copies only one"
    else:
        return "fork"
    if choice == "fork":
        raise ConfigurationError(f"{START_ENV}=fork, but {problem}; use spawn (or auto)")
    return "spawn"


def child_shard(shard: Shard | None, index: int, processes: int) -> Shard:
    """Child ``index``'s shard: within the user's shard ``k/n`` (or the whole plan), every ``processes``-th part
    (:func:`~binance_archive.core.split_shard`)."""
    return split_shard(shard, processes)[index]


class ChildReporter(PartProgress):
    """A child's progress callback: its counts as a JSON line on ``stream`` at most every ``interval`` seconds."""

    def __init__(self, stream: IO[str], *, interval: float = 0.25) -> None:
        super().__init__(interval=interval)
        self._stream = stream

    def send(self) -> None:
        # A broken pipe (the parent is gone) raises here, and ends the child: what it was fetching is discarded.
        write_all(self._stream, json.dumps({"progress": self.counts()}) + "\n")

    def finish(self, report: Report) -> None:
        self.send()
        # One line, however many outcomes it holds (written whole: see write_all).
        write_all(self._stream, json.dumps({"report": report.to_dict()}, ensure_ascii=False) + "\n")


class _Child(Protocol):
    """What :func:`run_processes` uses of a child: :class:`subprocess.Popen`'s, or :class:`_ForkedChild`'s."""

    @property
    def stdout(self) -> IO[str] | None: ...

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def send_signal(self, sig: int) -> None: ...

    def kill(self) -> None: ...


@attrs.frozen
class _Shard:
    """What one process runs: its part of the configuration, the report's detail, and how much to log."""

    config: RunConfig
    detail: str
    log_level: int


def run_processes(
    config: RunConfig,
    *,
    processes: int,
    concurrency: int,
    max_concurrency: int | None = None,
    detail: str,
    progress: TerminalProgress | None,
    preload: Callable[[], None] | None = None,
) -> tuple[Report | None, int]:
    """Run the download ``config`` describes as ``processes`` processes, one shard each, ``concurrency`` files in
    flight in all (with ``max_concurrency``: to start from, each process finding its own level up to its share).

    ``preload`` imports what the backends will need (before forking, so that the processes share it).

    Returns the merged report (``None`` when a process ended without one: said on standard error, unless its error
    was) and the worst exit status of the processes (0 when all succeeded; 2, a usage error, or 130, interrupted,
    take precedence over 1).
    """
    started = time.perf_counter()
    per_child = max(1, concurrency // processes)
    ceiling = max(per_child, max_concurrency // processes) if max_concurrency is not None else None
    method = start_method()
    if method == "fork":
        _import_for_children(preload)
    each = f"{per_child}" if ceiling is None else f"from {per_child} up to {ceiling}"
    log.info("downloading as %d processes, started by %s, %s files in flight each", processes, method, each)
    children: list[_Child] = []
    log_level = logging.getLogger().getEffectiveLevel()
    try:
        # Ctrl-C is held back while the processes start: each is then known here before it can be interrupted,
        # and starts with SIGINT blocked until it is ready to stop cleanly (see handle_interrupts).
        with deferred_interrupts():
            for index in range(processes):
                shard = child_shard(config.shard, index, processes)
                own = attrs.evolve(config, shard=shard, concurrency=per_child, max_concurrency=ceiling)
                part = _Shard(own, detail, log_level)
                if method == "fork":
                    # Every child is forked before the first thread starts here (see start_method).
                    children.append(_fork(part, [c.stdout.fileno() for c in children if c.stdout]))
                else:
                    children.append(_spawn(part))
        reports, statuses, told = _collect(children, progress)
    except BaseException:
        _stop(children)
        raise
    statuses = [s if s >= 0 else 1 for s in statuses]  # killed by a signal: a failure
    status = max(statuses, key=lambda s: (s in (2, 130), s != 0, s))
    complete = len(reports) == processes
    if not complete and not told:
        sys.stderr.write(f"binance-archive: a download process ended without its report (status {status})\n")
    return (merge_reports(reports, time.perf_counter() - started) if complete else None), status


def _stop(children: list[_Child]) -> None:
    """Stop the processes (the run was interrupted, or failed here): never leave one behind.

    A Ctrl-C in a terminal reaches every process of the group, a SIGINT to this process alone does not: it is
    passed on (a second one changes nothing for a process that is stopping already). Each ends within its grace
    period (:data:`_CHILD_GRACE`); one still running a little after that is killed, before this process's own
    grace period is over.
    """
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGINT)
    deadline = time.monotonic() + (_CHILD_GRACE + INTERRUPT_GRACE) / 2
    for child in children:
        try:
            child.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def run_shard(config: RunConfig, *, detail: str, out: TextIO) -> int:
    """One process's part of the run: download ``config`` (its shard), telling the parent its progress and its
    report as JSON lines on ``out``; returns the exit status."""
    reporter = ChildReporter(out)
    try:
        report = run_loop(config.run(config.archive(progress=reporter), detail=detail))
        reporter.finish(report)
    except BinanceArchiveError as exc:
        # Told to the parent, which says it once: every process meets the same error (an unknown symbol, no
        # credentials), and N copies of one line read as N problems.
        status = EXIT_USAGE if isinstance(exc, ConfigurationError) else EXIT_FAILED
        write_all(out, json.dumps({"error": error_line(exc), "status": status}, ensure_ascii=False) + "\n")
        return status
    except KeyboardInterrupt:  # the parent tells the user, once for all its processes
        return EXIT_INTERRUPTED
    return EXIT_OK if report.ok else EXIT_FAILED


def _ready_to_stop() -> None:
    """Make this process (a child) stop promptly and quietly on Ctrl-C, removing its temporary files should its
    grace period run out; the parent alone tells the user. Until now SIGINT was held back (see run_processes)."""
    handle_interrupts(grace=_CHILD_GRACE, on_deadline=discard_live)


def spawned_child() -> int:
    """The entry point of a spawned process: its shard (pickled, base64) on standard input, JSON lines out."""
    _ready_to_stop()
    try:
        part: _Shard = pickle.loads(base64.b64decode(sys.stdin.read()))  # our own parent's, not untrusted data
        tune_for_one_job()
        logging.basicConfig(level=part.log_level, format="%(levelname)s %(name)s: %(message)s")
        out = sys.stdout
        status = run_shard(part.config, detail=part.detail, out=out)
        out.flush()
    except KeyboardInterrupt:  # before or after the download itself
        return EXIT_INTERRUPTED
    return status


def _spawn(part: _Shard) -> subprocess.Popen[str]:
    # The shard and mirror in its command line say what it is (ps, /proc); the configuration goes on its stdin.
    k, n = part.config.shard or (0, 1)
    code = "from binance_archive.cli.processes import spawned_child; raise SystemExit(spawned_child())"
    command = [sys.executable, "-c", code, "download-shard", f"{k}/{n}", part.config.to]
    child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdin is not None
    with contextlib.suppress(BrokenPipeError):  # it died at once: its exit status says so
        child.stdin.write(base64.b64encode(pickle.dumps(part)).decode("ascii"))
    with contextlib.suppress(BrokenPipeError):
        child.stdin.close()
    return child


def _import_for_children(preload: Callable[[], None] | None) -> None:
    """Import now, once, what every child would otherwise import for itself after the fork."""
    loop_name()  # imports uvloop when it is the loop
    json_converter()  # cattrs, for the child's report
    if preload is not None:
        preload()
    # Out of the collector's sight: a child's collections then never touch (and so never copy) these pages.
    gc.freeze()


class _ForkedChild:
    """A forked child, with the part of :class:`subprocess.Popen`'s interface that :func:`run_processes` uses."""

    def __init__(self, pid: int, stdout: IO[str]) -> None:
        self.pid = pid
        self.stdout = stdout
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)  # -N when killed by signal N, as Popen's
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if timeout is None:
            if self.returncode is None:
                self.returncode = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
            return self.returncode
        deadline = time.monotonic() + timeout
        while (status := self.poll()) is None:
            if time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(f"process {self.pid}", timeout)
            time.sleep(0.01)
        return status

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def _fork(part: _Shard, inherited: list[int]) -> _ForkedChild:
    """Fork a child that runs ``part``, its standard output a pipe to this process."""
    read_fd, write_fd = os.pipe()
    for stream in (sys.stdout, sys.stderr):  # or the child would write what this process has buffered again
        with contextlib.suppress(AttributeError, OSError, ValueError):
            stream.flush()
    pid = os.fork()
    if pid == 0:  # the child: runs the command and exits, never returning into the parent's code
        status = 1
        try:
            _ready_to_stop()
            os.close(read_fd)
            for fd in inherited:  # the ends of its siblings' pipes: theirs to read, not its
                os.close(fd)
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.close(null)
            out = os.fdopen(write_fd, "w", encoding="utf-8")
            sys.stdout = out  # anything printed goes where a spawned child's would: to the parent, which passes it on
            status = run_shard(part.config, detail=part.detail, out=out)
            out.flush()
        except KeyboardInterrupt:  # before or after the download itself: the parent tells the user
            status = EXIT_INTERRUPTED
        except BaseException:  # anything at all: the child must reach os._exit below
            traceback.print_exc()
        finally:
            try:
                sys.stderr.flush()
            finally:
                os._exit(status)
    os.close(write_fd)
    return _ForkedChild(pid, os.fdopen(read_fd, "r", encoding="utf-8"))


def _lines(children: list[_Child]) -> Iterator[tuple[int, str]]:
    """The lines the children write, each with its child's index, as they come, until every stream has ended.

    Read here, on the main thread, with a selector rather than by a thread per child through a queue: a Ctrl-C
    raises KeyboardInterrupt wherever the main thread is, and one raised inside a queue's ``get`` (in
    ``threading.Condition.wait``, between its lock's release and its reacquiring) turns into "RuntimeError:
    release unlocked lock", an exit status of 1 where the user should see 130. In ``select`` it is clean.
    """
    # Each open stream's partial last line, in pieces: a report of many outcomes is one line of megabytes, which
    # joining chunk by chunk would copy over and over.
    pending: dict[int, list[bytes]] = {}
    with selectors.DefaultSelector() as selector:
        for index, child in enumerate(children):
            assert child.stdout is not None
            selector.register(child.stdout.fileno(), selectors.EVENT_READ, index)
            pending[index] = []
        while pending:
            for key, _ in selector.select():
                index = key.data
                chunk = os.read(key.fd, 1 << 16)
                if not chunk:  # the stream ended: its last line may lack its newline
                    selector.unregister(key.fd)
                    if rest := b"".join(pending.pop(index)):
                        yield index, rest.decode("utf-8", errors="replace")
                    continue
                if b"\n" not in chunk:
                    pending[index].append(chunk)
                    continue
                first, *middle, last = chunk.split(b"\n")
                for line in (b"".join([*pending[index], first]), *middle):
                    yield index, line.decode("utf-8", errors="replace") + "\n"
                pending[index] = [last] if last else []


def _collect(children: list[_Child], progress: TerminalProgress | None) -> tuple[list[Report], list[int], bool]:
    """The processes' reports and exit statuses, and whether one told an error (said here, each error once)."""
    counts: list[dict[str, int]] = [{} for _ in children]
    reports: list[Report] = []
    errors: dict[str, None] = {}  # each error the processes met, once, in the order they came
    for index, line in _lines(children):
        try:
            message: dict[str, Any] = json.loads(line)
        except ValueError:
            sys.stderr.write(line)  # not ours: pass it on rather than lose it
            continue
        if "report" in message:
            reports.append(Report.from_dict(message["report"]))
        elif "error" in message:
            if message["error"] not in errors:
                errors[message["error"]] = None
                sys.stderr.write(message["error"] + "\n")
        elif "progress" in message and progress is not None:
            counts[index] = message["progress"]
            progress.add_up(counts)
    return reports, [child.wait() for child in children], bool(errors)
