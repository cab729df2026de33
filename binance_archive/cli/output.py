"""What the command tells its user: whole texts on its output, however large, whatever interrupts them; errors on
its standard error; and its exit statuses."""

from __future__ import annotations

import contextlib
import io
import os
import sys
from typing import IO

from binance_archive.common.staging import discard_live
from binance_archive.errors import BinanceArchiveError, ConfigurationError

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "INTERRUPT_GRACE",
    "error_status",
    "say_interrupted",
    "stop_now",
    "write_all",
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
    if isinstance(exc, ConfigurationError):
        sys.stderr.write(f"binance-archive: error: {exc}\n")
        return EXIT_USAGE
    sys.stderr.write(f"binance-archive: {exc}\n")
    return EXIT_FAILED


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
