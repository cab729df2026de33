"""A blocking body's chunks read in a thread of the test's own, as the engine's worker thread reads them."""

from __future__ import annotations

import threading
from collections.abc import Iterable

__all__ = ["ThreadRead"]


class ThreadRead:
    """Reads ``chunks`` to their end in a thread started at once; ``started`` is set by the first chunk, and
    ``outcome`` holds how the read ended: None, or what it raised."""

    def __init__(self, chunks: Iterable[object]) -> None:
        self.started = threading.Event()
        self.outcome: list[BaseException | None] = []
        self.thread = threading.Thread(target=self._read, args=(chunks,))
        self.thread.start()

    def _read(self, chunks: Iterable[object]) -> None:
        try:
            for _ in chunks:
                self.started.set()
            self.outcome.append(None)
        except BaseException as exc:
            self.outcome.append(exc)
