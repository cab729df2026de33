"""What the command tells its user: whole texts on its output, however large, whatever interrupts them; errors on
its standard error; and its exit statuses."""

from __future__ import annotations

import io
import os
import sys
from typing import IO

from binance_archive.errors import BinanceArchiveError, ConfigurationError

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "error_status", "write_all"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
"""0 success; 1 some files failed (missing files are not failures); 2 bad usage or configuration; 130 interrupted."""


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
