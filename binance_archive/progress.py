"""Progress displays: one status line on a terminal, fitted to its width and redrawn at most ten times a second;
a bar in a notebook."""

from __future__ import annotations

import contextlib
import io
import os
import time
from collections.abc import Iterable, Mapping
from typing import TextIO

from binance_archive.events import Event, EventKind

__all__ = ["COUNTS", "Counter", "NotebookProgress", "PartProgress", "TerminalProgress"]

COUNTS = ("done", "skipped", "missing", "failed", "retries", "bytes")
"""The counts of a :class:`Counter`, the ones a run's parts (processes, Dask shards) report to the whole."""

_FALLBACK_COLUMNS = 80  # a terminal that does not say how wide it is (a serial console, some CI pseudo-terminals)


class Counter:
    """Counts a run's events; the base of every progress display."""

    def __init__(self, total: int | None = None) -> None:
        self.total = total
        self.done = self.skipped = self.missing = self.failed = self.retries = 0
        self.bytes = 0
        self.started = time.monotonic()

    @property
    def finished(self) -> int:
        return self.done + self.skipped + self.missing + self.failed

    def counts(self) -> dict[str, int]:
        """The :data:`COUNTS` as a plain mapping (for a part of a run to send to the whole)."""
        return {name: getattr(self, name) for name in COUNTS}

    def add_up(self, parts: Iterable[Mapping[str, int]]) -> None:
        """Set the counts to the sums of the parts' (:meth:`counts` of each process or shard of a run), and redraw
        where this display draws."""
        parts = list(parts)
        for name in COUNTS:
            setattr(self, name, sum(part.get(name, 0) for part in parts))
        redraw = getattr(self, "redraw", None)
        if redraw is not None:
            redraw()

    def __call__(self, event: Event) -> None:
        kind = event.kind
        if kind is EventKind.BYTES:
            self.bytes += event.bytes
        elif kind is EventKind.DONE:
            self.done += 1
        elif kind is EventKind.SKIPPED:
            self.skipped += 1
        elif kind is EventKind.MISSING:
            self.missing += 1
        elif kind is EventKind.FAILED:
            self.failed += 1
        elif kind is EventKind.RETRY:
            self.retries += 1

    def line(self, width: int | None = None) -> str:
        """The status line: a bar (when the total is known), files, megabytes, files per second, and the tally.

        With ``width`` (a terminal's columns), it is fitted into ``width - 1`` columns, so that it never wraps (a
        wrapped line is left behind at every redraw). Until it fits, in this order: a zero tally, the skipped and
        new counts, the megabytes and the rate go; the bar shrinks, then goes; missing files go; "files" goes;
        failures go; what still does not fit is cut.
        """
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = (self.done + self.skipped) / elapsed
        count = f"{self.finished}/{self.total}" if self.total else f"{self.finished}"
        # (text, group, importance): a group's fields are joined by one space, groups by two.
        fields = [
            (f"{self.bytes / 1e6:.1f} MB", 0, 3),
            (f"{rate:.0f} files/s", 1, 4),
            (f"{self.done} new", 2, 2),
            (f"{self.skipped} skipped", 2, 1),
            (f"{self.missing} missing", 2, 5 if self.missing else 0),
            (f"{self.failed} failed", 2, 6 if self.failed else 0),
        ]
        bar = 24 if self.total else 0
        label = f"{count} files"
        text = self._compose(bar, label, fields)
        if width is None:
            return text
        limit = max(width - 1, 1)
        for step in range(9):
            if len(text) <= limit:
                return text
            if step < 5:  # the fields that matter least, in order of importance
                fields = [f for f in fields if f[2] > step]
            elif step == 5 and bar:  # the bar shrinks to what is left, down to 8 marks
                room = bar - (len(text) - limit)
                bar = room if room >= 8 else 0
            elif step == 6:
                bar = 0
                fields = [f for f in fields if f[2] > 5]  # missing files
            elif step == 7:
                label = count
            elif step == 8:
                fields = []  # failures
            text = self._compose(bar, label, fields)
        return text[:limit]

    def _compose(self, bar: int, count: str, fields: list[tuple[str, int, int]]) -> str:
        drawn = ""
        if bar:
            filled = min(bar, int(bar * self.finished / self.total)) if self.total else 0
            drawn = "[" + "#" * filled + "." * (bar - filled) + "] "
        groups: dict[int, list[str]] = {}
        for text, group, _ in fields:
            groups.setdefault(group, []).append(text)
        return drawn + "  ".join([count, *(" ".join(texts) for texts in groups.values())])


class PartProgress(Counter):
    """The progress of a part of a run (a process, a Dask shard): its counts, handed to :meth:`send` at most every
    ``interval`` seconds, for the whole run's display to add up."""

    def __init__(self, *, interval: float) -> None:
        super().__init__()
        self._interval = interval
        self._last = 0.0

    def __call__(self, event: Event) -> None:
        super().__call__(event)
        now = time.monotonic()
        if now - self._last >= self._interval:
            self._last = now
            self.send()

    def send(self) -> None:
        """Send :meth:`counts` to the whole run (a subclass says how)."""
        raise NotImplementedError


class TerminalProgress(Counter):
    """A status line on a terminal (the CLI shows it on stderr when stderr is a terminal), redrawn in place.

    On a terminal the line is fitted to its width, read again at every redraw (a resized window is followed);
    written anywhere else (a file, a pipe) it is drawn whole.
    """

    def __init__(self, stream: TextIO, total: int | None = None, *, interval: float = 0.1) -> None:
        super().__init__(total)
        self._stream = stream
        self._interval = interval
        self._last = 0.0
        self._terminal = _terminal_fd(stream)

    def __call__(self, event: Event) -> None:
        super().__call__(event)
        self.redraw()

    def redraw(self) -> None:
        """Draw the line again, unless it was drawn less than ``interval`` seconds ago (counts set from outside,
        e.g. summed over the processes of ``download --processes``, show up this way)."""
        now = time.monotonic()
        if now - self._last >= self._interval:
            self._last = now
            self._stream.write("\r\x1b[2K" + self.line(self.columns()))
            self._stream.flush()

    def close(self) -> None:
        """Draw the final line and end it."""
        self._stream.write("\r\x1b[2K" + self.line(self.columns()) + "\n")
        self._stream.flush()

    def columns(self) -> int | None:
        """The terminal's width now (``COLUMNS`` where set, as :func:`shutil.get_terminal_size` has it); ``None``
        when the stream is not a terminal."""
        if self._terminal is None:
            return None
        with contextlib.suppress(ValueError):
            columns = int(os.environ.get("COLUMNS", "0"))
            if columns > 0:
                return columns
        try:
            return os.get_terminal_size(self._terminal).columns or _FALLBACK_COLUMNS
        except OSError:
            return _FALLBACK_COLUMNS


def _terminal_fd(stream: TextIO) -> int | None:
    """The file descriptor of ``stream`` if it is a terminal."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None
    return fd if os.isatty(fd) else None


class NotebookProgress(Counter):
    """A progress bar in a Jupyter notebook (needs IPython, which every notebook has).

    ``await archive.download(selection, progress=NotebookProgress(total))``. Outside a notebook, IPython
    prints the status line as text instead.
    """

    def __init__(self, total: int | None = None, *, interval: float = 0.25) -> None:
        super().__init__(total)
        try:
            from IPython.display import display
        except ImportError:
            from binance_archive.errors import ConfigurationError

            raise ConfigurationError("NotebookProgress needs IPython: it is meant for Jupyter notebooks") from None
        self._interval = interval
        self._last = 0.0
        self._handle = display(_Snapshot(self), display_id=True)  # type: ignore[no-untyped-call]

    def html(self) -> str:
        """The bar as HTML: a ``<progress>`` element (when the total is known) and the status line."""
        bar = (
            f'<progress value="{self.finished}" max="{self.total}" style="width:40%"></progress> ' if self.total else ""
        )
        return f"<div>{bar}<code>{self.line()}</code></div>"

    def __call__(self, event: Event) -> None:
        super().__call__(event)
        now = time.monotonic()
        if now - self._last >= self._interval or (self.total and self.finished >= self.total):
            self._last = now
            self.close()

    def close(self) -> None:
        """Draw the current state."""
        if self._handle is not None:
            self._handle.update(_Snapshot(self))


class _Snapshot:
    """What IPython displays: HTML in a notebook, the status line anywhere else."""

    def __init__(self, progress: NotebookProgress) -> None:
        self._html = progress.html()
        self._text = progress.line()

    def _repr_html_(self) -> str:
        return self._html

    def __repr__(self) -> str:
        return self._text
