"""Progress display for terminals: one status line, redrawn at most ten times a second."""

from __future__ import annotations

import time
from typing import TextIO

from binance_archive.events import Event, EventKind

__all__ = ["COUNTS", "Counter", "NotebookProgress", "TerminalProgress"]

COUNTS = ("done", "skipped", "missing", "failed", "retries", "bytes")
"""The counts of a :class:`Counter`, the ones a run's parts (processes, Dask shards) report to the whole."""


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

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = (self.done + self.skipped) / elapsed
        count = f"{self.finished}/{self.total}" if self.total else f"{self.finished}"
        bar = ""
        if self.total:
            width = 24
            filled = min(width, int(width * self.finished / self.total))
            bar = "[" + "#" * filled + "." * (width - filled) + "] "
        return (
            f"{bar}{count} files  {self.bytes / 1e6:.1f} MB  {rate:.0f} files/s  "
            f"{self.done} new {self.skipped} skipped {self.missing} missing {self.failed} failed"
        )


class TerminalProgress(Counter):
    """A status line on a terminal (the CLI shows it on stderr when stderr is a terminal)."""

    def __init__(self, stream: TextIO, total: int | None = None, *, interval: float = 0.1) -> None:
        super().__init__(total)
        self._stream = stream
        self._interval = interval
        self._last = 0.0

    def __call__(self, event: Event) -> None:
        super().__call__(event)
        self.redraw()

    def redraw(self) -> None:
        """Draw the line again, unless it was drawn less than ``interval`` seconds ago (counts set from outside,
        e.g. summed over the processes of ``download --processes``, show up this way)."""
        now = time.monotonic()
        if now - self._last >= self._interval:
            self._last = now
            self._stream.write("\r\x1b[2K" + self.line())
            self._stream.flush()

    def close(self) -> None:
        """Draw the final line and end it."""
        self._stream.write("\r\x1b[2K" + self.line() + "\n")
        self._stream.flush()


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
