"""Running a coroutine from synchronous code (the command line, ``download_sync``) on the fastest event loop, and
stopping it promptly on Ctrl-C where the process is the command's own.

Inside a notebook or an async application the library runs on the caller's loop, whatever it is. Where the
library starts a loop of its own, it uses `uvloop <https://github.com/MagicStack/uvloop>`_ when installed
(``pip install 'binance-archive[fast]'``): its C event loop spends less CPU on each request and callback, and
a mirror of small files is bound by CPU per file. Set ``BINANCE_ARCHIVE_LOOP=asyncio`` to use the standard
loop anyway, or ``uvloop`` to insist on uvloop.

A process that runs one job (the ``binance-archive`` command, each process of ``download --processes N``) calls
:func:`handle_interrupts`: from then on the first Ctrl-C (SIGINT) cancels what :func:`run` runs, and
:func:`run` raises :class:`KeyboardInterrupt` once it has unwound (files in flight discarded, temporary files
removed); further Ctrl-Cs (a terminal sends one to every process of the group, and a user may press it twice)
change nothing, so none of them lands in the middle of the loop's shutdown as a traceback. Should the unwinding
take longer than its grace period (a thread stuck in a system call, say), the process is ended anyway.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import logging
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Coroutine, Iterator
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from binance_archive.errors import ConfigurationError

if TYPE_CHECKING:
    import asyncio

__all__ = [
    "INTERRUPTED_STATUS",
    "LOOP_ENV",
    "deferred_interrupts",
    "end_process",
    "handle_interrupts",
    "loop_name",
    "run",
    "tune_for_one_job",
]

log = logging.getLogger(__name__)

LOOP_ENV = "BINANCE_ARCHIVE_LOOP"
"""``auto`` (the default: uvloop when installed), ``uvloop`` or ``asyncio``."""
INTERRUPTED_STATUS = 130
"""The exit status of a process ended by its grace period running out (128 + SIGINT, as a shell reports it)."""

_T = TypeVar("_T")
_CHOICES = ("auto", "uvloop", "asyncio")


def loop_name() -> str:
    """The event loop :func:`run` uses: ``uvloop`` or ``asyncio``.

    Raises:
        ConfigurationError: for a ``BINANCE_ARCHIVE_LOOP`` that is none of the choices, or ``uvloop`` when it
            is not installed.
    """
    choice = os.environ.get(LOOP_ENV, "auto").strip().lower() or "auto"
    if choice not in _CHOICES:
        raise ConfigurationError(f"{LOOP_ENV}={choice!r} is not one of {', '.join(_CHOICES)}")
    if choice == "asyncio":
        return "asyncio"
    try:
        import uvloop  # noqa: F401
    except ImportError:
        if choice == "uvloop":
            raise ConfigurationError(
                f"{LOOP_ENV}=uvloop, but uvloop is not installed: pip install 'binance-archive[fast]'"
            ) from None
        return "asyncio"
    return "uvloop"


def run(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Run ``coroutine`` to completion on a new event loop (see the module's docstring for which).

    Raises:
        KeyboardInterrupt: in a process that called :func:`handle_interrupts`, when Ctrl-C stopped the coroutine.
    """
    try:
        name = loop_name()
    except ConfigurationError:
        coroutine.close()  # never awaited: closed, so Python does not warn about it
        raise
    import asyncio  # here: the command imports this module to handle Ctrl-C, and --help needs no event loop

    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    if name == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    if _interrupts is not None and threading.current_thread() is threading.main_thread():
        return _interrupts.run(coroutine, factory)
    with asyncio.Runner(loop_factory=factory) as runner:  # what asyncio.run and uvloop.run do
        return runner.run(coroutine)


def handle_interrupts(*, grace: float, on_deadline: Callable[[], None] | None = None) -> bool:
    """Make Ctrl-C (SIGINT) stop this process promptly and quietly (see the module's docstring).

    The first SIGINT cancels the coroutine :func:`run` runs (or, between two runs, raises KeyboardInterrupt as
    Python does); later ones are ignored. ``grace`` seconds after the first, a process still running calls
    ``on_deadline`` (from another thread: it may remove temporary files, say so) and ends with status 130. Called
    again, the settings are replaced and the process is no longer taken as interrupted (a forked child starts
    afresh). SIGINT is unblocked in the calling thread (see :func:`deferred_interrupts`).

    For a process that runs one job and nothing else: the library never calls it on its own. Returns False, and
    does nothing, outside the main thread (where Python cannot handle signals).
    """
    global _interrupts
    if threading.current_thread() is not threading.main_thread():
        return False
    _interrupts = _Interrupts(grace, on_deadline)
    signal.signal(signal.SIGINT, _interrupts.on_signal)
    if hasattr(signal, "pthread_sigmask"):  # POSIX
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    return True


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Hold SIGINT back in the calling thread while the block runs, and deliver it after.

    Processes started meanwhile (forked, or spawned: the mask survives ``exec``) start with SIGINT blocked too,
    and see a Ctrl-C only once :func:`handle_interrupts` has made them ready for it: never as a
    KeyboardInterrupt in the middle of their start-up. A Ctrl-C during the block is not lost: it arrives as the
    block ends, once every process it started is known to the caller.
    """
    if not hasattr(signal, "pthread_sigmask"):  # not POSIX: nothing to hold back with
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class _Interrupts:
    """The SIGINT handling of a process that called :func:`handle_interrupts` (signal handlers run on the main
    thread, between two bytecodes: :meth:`on_signal` and :meth:`run` never run at the same time)."""

    def __init__(self, grace: float, on_deadline: Callable[[], None] | None) -> None:
        self.grace = grace
        self.on_deadline = on_deadline
        self.requested = False
        self._running = False  # a loop runs (or shuts down) in run()
        self._task: asyncio.Task[Any] | None = None

    def on_signal(self, signum: int, frame: object) -> None:
        if self.requested:
            return  # stopping already: a second Ctrl-C, or the one a --processes parent passes on
        self.requested = True
        # From now on the system drops SIGINT: while the interpreter shuts down too, where Python puts back the
        # default action (being killed by the signal) in place of a handler of its own.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        # A second SIGINT the C handler caught just before the line above (the terminal's and the one a
        # --processes parent passes on come together) then finds SIGINT ignored, and Python reports "Signal 2
        # ignored due to race condition" on standard error. Ignoring it is what was meant: say nothing.
        if not isinstance(sys.unraisablehook, _QuietRace):
            sys.unraisablehook = _QuietRace(sys.unraisablehook)
        # A KeyboardInterrupt raised below, between the moment a caller makes the coroutine it hands to run() and
        # the moment run() owns it, leaves that coroutine never awaited: expected once the user stopped the run,
        # and Python's RuntimeWarning about it would be noise under the one line the user should see.
        warnings.filterwarnings("ignore", message=r"coroutine '.*' was never awaited", category=RuntimeWarning)
        deadline = threading.Timer(self.grace, self._expire)
        deadline.daemon = True
        deadline.start()
        if not self._running:
            raise KeyboardInterrupt  # no loop runs: stop where the program is, as Python would
        # Never a KeyboardInterrupt while a loop runs (or shuts down): it would cut the shutdown short. The task
        # is cancelled instead (a no-op once it is done), and run() raises KeyboardInterrupt when it has unwound.
        task = self._task
        if task is not None:
            task.cancel()
            loop = task.get_loop()
            if not loop.is_closed():
                loop.call_soon_threadsafe(lambda: None)  # wakes the loop should it sleep in a long select

    def _expire(self) -> None:
        try:
            if self.on_deadline is not None:
                self.on_deadline()
        finally:
            os._exit(INTERRUPTED_STATUS)

    def run(self, coroutine: Coroutine[Any, Any, _T], factory: Callable[[], asyncio.AbstractEventLoop] | None) -> _T:
        if self.requested:
            coroutine.close()
            raise KeyboardInterrupt
        import asyncio

        async def main() -> _T:
            self._task = asyncio.current_task()
            if self.requested:  # Ctrl-C as the loop started
                raise asyncio.CancelledError
            return await coroutine

        self._running = True
        try:
            with asyncio.Runner(loop_factory=factory) as runner:
                # Tasks that end in an error once cancelled (a request cut off as its client closes) are expected
                # then, not worth a traceback.
                runner.get_loop().set_exception_handler(self._on_loop_error)
                result = runner.run(main())
        except BaseException:
            if self.requested:
                raise KeyboardInterrupt from None
            raise
        finally:
            self._running = False
            self._task = None
            coroutine.close()  # a no-op once it ran; cancelled before its first step, it was never awaited
        if self.requested:  # Ctrl-C just as the coroutine ended: the user asked to stop all the same
            raise KeyboardInterrupt
        return result

    def _on_loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if self.requested:
            log.debug("after the interrupt: %s", context.get("message"), exc_info=context.get("exception"))
        else:
            loop.default_exception_handler(context)


class _QuietRace:
    """An unraisable hook that drops CPython's report of a SIGINT arriving as it was being ignored, and passes every
    other report on to the hook it replaced."""

    def __init__(self, previous: Callable[[Any], object]) -> None:
        self.previous = previous

    def __call__(self, unraisable: Any) -> None:
        error = unraisable.exc_value
        if isinstance(error, OSError) and str(error) == f"Signal {int(signal.SIGINT)} ignored due to race condition":
            return
        self.previous(unraisable)


_interrupts: _Interrupts | None = None


def tune_for_one_job() -> None:
    """Tune the garbage collector of a process that runs one long job (the ``binance-archive`` command).

    Everything imported so far is moved out of the collector's sight (:func:`gc.freeze`: start-up objects live
    as long as the process), and the young generation is made larger: with hundreds of files in flight, each
    young collection re-scans thousands of live objects (tasks, futures, buffers), and the default of one
    collection every 700 allocations took 5-8% of a mirror's CPU (measured: 223 collections, ~150 ms for 2,000
    small files; 12 and ~25 ms with 10,000). Only objects in reference cycles wait longer to be freed.

    The library never calls this on its own: a notebook or an application keeps its own settings.
    """
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(10_000, middle, old)


def end_process(status: int) -> NoReturn:
    """End a process that has run its one job (the ``binance-archive`` command) at once, with ``status``.

    Its work is over: stored, verified, reported. What would follow is the interpreter's finalization, every
    module and object torn down one by one (and threads still running waited for): time for nothing
    (docs/performance.md, *The end of the process*), and the moment at which a Rust-backed client's thread taking
    the GIL has aborted the interpreter with status 134 (pyreqwest; docs/reliability.md). So the exit handlers run
    (logging's flush among them), the standard streams are flushed, and :func:`os._exit` ends the
    process.

    The library never calls this on its own: a notebook or an application ends its process as it pleases.
    """
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a reader gone (`| head`), a stream closed: nothing to do
            stream.flush()
    os._exit(status)
