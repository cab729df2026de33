"""Work in worker threads: async work on an event loop of a worker thread, cancellable from any other thread
(:class:`OwnLoop`), and reads that may never return, in threads that never hold the process up (:class:`Daemons`)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

__all__ = ["Daemons", "OwnLoop"]

_T = TypeVar("_T")


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


class Daemons:
    """A pool of daemon threads, for file-system calls that may hang for good (a network file system whose server
    went away): the caller stops waiting after a timeout of its own, and the thread left blocked in the kernel holds
    neither the run nor the process's exit, as a :class:`~concurrent.futures.ThreadPoolExecutor`'s would (its threads
    are joined at exit). A blocked thread keeps its slot: with every slot blocked, calls queue, and their callers'
    timeouts end them.
    """

    def __init__(self, threads: int, name: str) -> None:
        self._most = threads
        self._name = name
        self._jobs: queue.SimpleQueue[tuple[concurrent.futures.Future[Any], Callable[..., Any], tuple[Any, ...]] | None]
        self._jobs = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._started = 0
        self._idle = 0

    async def run(self, function: Callable[..., _T], *args: Any) -> _T:
        """``function(*args)`` in one of the threads; awaited (cancelling the await leaves the call to finish)."""
        future: concurrent.futures.Future[_T] = concurrent.futures.Future()
        self._jobs.put((future, function, args))
        with self._lock:
            if self._idle <= 0 and self._started < self._most:
                self._started += 1
                threading.Thread(target=self._work, name=f"{self._name}-{self._started}", daemon=True).start()
            else:
                self._idle -= 1  # taken by a waiting thread (below 0: queued for the next thread to be free)
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        """Let every thread end once it is free (a blocked one, when its call returns)."""
        with self._lock:
            count, self._started = self._started, 0
        for _ in range(count):
            self._jobs.put(None)

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            future, function, args = job
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(function(*args))
                except BaseException as exc:  # handed to the awaiting caller
                    future.set_exception(exc)
            with self._lock:
                self._idle += 1
