"""Progress events: what a run tells a progress bar, a notebook widget or a metrics system as it goes."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable

import attrs

from binance_archive.core.files import ArchiveFile

__all__ = ["Emitter", "Event", "EventKind", "ProgressCallback"]


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


class Emitter:
    """Sends events to the callbacks of one run (the archive's and the call's); ``active`` is false when there are
    none, so that the engine's hot paths can skip making an event at all."""

    __slots__ = ("_callbacks", "active")

    def __init__(self, callbacks: Iterable[ProgressCallback | None]) -> None:
        self._callbacks = [cb for cb in callbacks if cb is not None]
        self.active = bool(self._callbacks)

    def __call__(self, kind: EventKind, file: ArchiveFile, nbytes: int = 0, error: str | None = None) -> None:
        if self._callbacks:
            event = Event(kind, file, nbytes, error)
            for callback in self._callbacks:
                callback(event)
