"""Async work run on an event loop of a worker thread, cancellable from any other thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["OwnLoop"]


class OwnLoop:
    """Runs ``work()`` on a new event loop of the calling (worker) thread; :meth:`cancel` from another thread
    cancels it at its next await, or before it starts.

    A body whose client reads on threads of its own (pyreqwest) can be received this way away from the engine's
    loop; a read waiting on a stalled server is cancelled here, where releasing the response would wait for it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: tuple[asyncio.AbstractEventLoop, asyncio.Task[Any]] | None = None
        self._cancelled = False

    def run(self, work: Callable[[], Awaitable[Any]]) -> Any:
        """``await work()`` on a new loop of this thread, until it ends (raises CancelledError once cancelled)."""

        async def main() -> Any:
            task = asyncio.current_task()
            assert task is not None
            with self._lock:
                if self._cancelled:
                    raise asyncio.CancelledError
                self._running = (asyncio.get_running_loop(), task)
            try:
                return await work()
            finally:
                with self._lock:
                    self._running = None

        return asyncio.run(main())

    def cancel(self) -> None:
        """Cancel ``work()`` at its next await (or before it starts); from any thread."""
        with self._lock:
            self._cancelled = True
            if self._running is not None:
                loop, task = self._running
                loop.call_soon_threadsafe(task.cancel)
