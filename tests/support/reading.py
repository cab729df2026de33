"""A blocking body's chunks read in a thread of the test's own, as the engine's worker thread reads them."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterable

from binance_archive.errors import RetryableError

__all__ = ["ThreadRead"]


class ThreadRead:
    """Reads ``chunks`` to their end in a thread started at once; ``started`` is set by the first chunk, and
    ``outcome`` holds how the read ended: None, or what it raised."""

    def __init__(self, chunks: Iterable[object]) -> None:
        self.started = threading.Event()
        self.outcome: list[BaseException | None] = []
        self.thread = threading.Thread(target=self._read, args=(chunks,))
        self.thread.start()
        self._left = 0.0

    def _read(self, chunks: Iterable[object]) -> None:
        try:
            for _ in chunks:
                self.started.set()
            self.outcome.append(None)
        except BaseException as exc:
            self.outcome.append(exc)

    async def blocked(self, why: str) -> None:
        """Once part of the body came (``why`` says whence), and the reader waits on a stalled socket; call it just
        before the request is left."""
        assert await asyncio.to_thread(self.started.wait, 10), why
        await asyncio.sleep(0.3)  # the reader is now blocked on the stalled socket
        self._left = time.monotonic()

    async def stopped_at_once(self) -> None:
        """After the request was left: the read ended within 3 s, in the library's error that says it was stopped
        (not after the stall, waited out)."""
        await asyncio.to_thread(self.thread.join, 10)
        took = time.monotonic() - self._left
        assert not self.thread.is_alive() and took < 3, f"the read went on for {took:.1f} s after the request was left"
        assert len(self.outcome) == 1 and isinstance(self.outcome[0], RetryableError), self.outcome
        assert "stopped" in str(self.outcome[0])
