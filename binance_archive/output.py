"""Writing a whole text to the command's output, however large, whatever interrupts it."""

from __future__ import annotations

import io
import os
from typing import IO

__all__ = ["write_all"]


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
