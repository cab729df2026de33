"""What the command tells its user: whole texts on its output, however large, whatever interrupts them; errors on
its standard error; and its exit statuses."""

from __future__ import annotations

import contextlib
import io
import os
import sys
from typing import IO, TYPE_CHECKING, TextIO

from binance_archive.common.staging import discard_live
from binance_archive.errors import BinanceArchiveError, ConfigurationError

if TYPE_CHECKING:
    from binance_archive.report import Report

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "INTERRUPT_GRACE",
    "error_line",
    "error_status",
    "note",
    "say_interrupted",
    "stop_now",
    "write_all",
    "write_summary",
]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
"""0 success; 1 some files failed (missing files are not failures); 2 bad usage or configuration; 130 interrupted."""

INTERRUPT_GRACE = 0.6
"""Seconds a process of the command has, after Ctrl-C, to unwind (files in flight discarded, connections closed)
before it is ended anyway; unwinding takes a few tens of milliseconds (docs/cli.md has the measurements)."""

_INTERRUPTED = "binance-archive: interrupted; files in flight were discarded, a re-run resumes\n"
_said = False


def error_status(exc: BinanceArchiveError) -> int:
    """Tell the user about ``exc`` on standard error; the exit status it calls for (2 for a configuration error)."""
    sys.stderr.write(error_line(exc) + "\n")
    return EXIT_USAGE if isinstance(exc, ConfigurationError) else EXIT_FAILED


def error_line(exc: BinanceArchiveError) -> str:
    """The line that tells the user about ``exc``."""
    if isinstance(exc, ConfigurationError):
        return f"binance-archive: error: {exc}"
    return f"binance-archive: {exc}"


def write_summary(report: Report, location: str, out: TextIO) -> None:
    """The summary of a download for people: the counts, the first failures (the lines and the "more" add up to
    the failed count), why the run stopped early, and where the mirror is."""
    rows = [
        ("downloaded", report.downloaded),
        ("skipped (already stored)", report.skipped),
        ("missing upstream", report.missing),
        ("failed", report.failed),
    ]
    for label, count in rows:
        out.write(f"  {label:<26}{count:>10}\n")
    rate = report.downloaded / report.duration if report.duration > 0 else 0.0
    out.write(f"  {'bytes downloaded':<26}{report.bytes / 1e6:>9.1f} MB\n")
    out.write(f"  {'time':<26}{report.duration:>9.1f} s ({rate:.0f} files/s)\n")
    listed = report.failures[:20]
    for failure in listed:
        out.write(f"failed: {failure.key}: {failure.error}\n")
    if report.failed > len(listed):  # the lines and the "more" add up to the count above, whatever was kept
        out.write(f"... and {report.failed - len(listed)} more failures (--json lists them all)\n")
    if report.stopped:
        out.write(f"stopped early: {report.stopped}; what is stored is kept, and a re-run goes on from there\n")
    out.write(f"mirror: {location}\n")


def note(text: str) -> None:
    """Tell the user something worth knowing that is not an error, on standard error, in one line."""
    sys.stderr.write(f"binance-archive: note: {text}\n")


def write_all(stream: IO[str], text: str) -> None:
    """Write all of ``text`` to ``stream``.

    With ``PYTHONUNBUFFERED=1`` (common in containers) ``sys.stdout`` writes straight to its file descriptor, and a
    signal arriving during a large write to a pipe cuts the write short without an error: of a 5 MB line, 64 KB
    arrived (measured). So text bound for a real file descriptor is written with ``os.write`` until all of it is
    out; any other stream (a StringIO in tests) gets an ordinary write.
    """
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):
        stream.write(text)
        return
    stream.flush()  # what the text layer holds goes first
    view = memoryview(text.encode(getattr(stream, "encoding", None) or "utf-8", errors="replace"))
    while view:
        view = view[os.write(fd, view) :]


def say_interrupted() -> None:
    """Tell the user, once, that the command was interrupted (standard error)."""
    global _said
    if not _said:
        _said = True
        sys.stderr.write(_INTERRUPTED)
        sys.stderr.flush()


def stop_now() -> None:
    """The end of a command whose grace period after Ctrl-C ran out (called from another thread, just before the
    process ends): its temporary files removed, and the user told. Writes straight to the file descriptor: the
    main thread may hold ``sys.stderr``'s lock, and this must not wait for it."""
    global _said
    discard_live()
    if not _said:
        _said = True
        clear = "\r\x1b[2K" if os.isatty(2) else ""  # over a progress line left unfinished
        with contextlib.suppress(OSError):
            os.write(2, (clear + _INTERRUPTED).encode())
