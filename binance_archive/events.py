"""Progress events: what a run tells a progress bar, a notebook widget or a metrics system as it goes."""

from __future__ import annotations

import enum
from collections.abc import Callable

import attrs

from binance_archive.core.files import ArchiveFile

__all__ = ["Event", "EventKind", "ProgressCallback"]


class EventKind(enum.Enum):
    """What happened."""

    PLANNED = "planned"
    """A file entered the run (it may still be skipped)."""
    STARTED = "started"
    """A file's download began."""
    BYTES = "bytes"
    """Bytes of a file arrived (``Event.bytes`` is the increment)."""
    DONE = "done"
    """A file was verified and stored."""
    SKIPPED = "skipped"
    """A file was already stored and verified; nothing was fetched."""
    MISSING = "missing"
    """The archive has no such file (HTTP 404). Not a failure."""
    FAILED = "failed"
    """A file could not be fetched or verified after every retry (``Event.error`` says why)."""
    RETRY = "retry"
    """A transient failure; the file is tried again (``Event.error`` says why)."""


@attrs.frozen(slots=True)
class Event:
    """One progress event. ``bytes`` is the size done (DONE), skipped (SKIPPED) or the increment (BYTES)."""

    kind: EventKind
    file: ArchiveFile
    bytes: int = 0
    error: str | None = None


ProgressCallback = Callable[[Event], None]
"""A callable receiving every :class:`Event`; it must be quick (it runs on the event loop)."""
