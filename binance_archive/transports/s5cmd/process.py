"""One s5cmd process: started in a session of its own, its output read line by line, killed with whatever it
started, reaped and its pipes closed however the caller leaves (cancellation included)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress

from binance_archive.errors import TransportError
from binance_archive.transports.s5cmd.binary import INSTALL_HINT

__all__ = ["kill", "pump", "running"]

_LINE_LIMIT = 1024 * 1024  # s5cmd's JSON lines are short; this only bounds a runaway line


@asynccontextmanager
async def running(argv: list[str], *, env: dict[str, str] | None) -> AsyncIterator[asyncio.subprocess.Process]:
    """Run s5cmd (``argv[0]``); on the way out (cancellation included) kill it if it still runs, and reap it."""
    starting = asyncio.ensure_future(
        asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env or None,
            limit=_LINE_LIMIT,
            # Its own session, hence its own process group, so that a kill reaches whatever it started too (a
            # launcher script's child): see kill. (start_new_session rather than process_group=0: uvloop,
            # which the command line runs on when installed, knows only the former.)
            start_new_session=os.name == "posix",
            preexec_fn=_DIE_WITH_PARENT,
        )
    )
    try:
        # Shielded: a cancellation while the process starts would otherwise orphan it and its pipes.
        proc = await asyncio.shield(starting)
    except OSError as exc:
        raise TransportError(f"cannot run {argv[0]}: {exc.strerror}; {INSTALL_HINT}") from exc
    except asyncio.CancelledError:
        with suppress(BaseException):
            orphan = await starting
            kill(orphan)
            await orphan.wait()
            _close_pipes(orphan)
        raise
    try:
        yield proc
    finally:
        try:
            if proc.returncode is None:
                kill(proc)
            # Shielded: a second cancellation must not leave a zombie behind.
            await asyncio.shield(proc.wait())
        finally:
            _close_pipes(proc)  # even when a second cancellation cuts the wait short


async def pump(stream: asyncio.StreamReader, handle: Callable[[str], None]) -> None:
    """Hand every non-empty line of ``stream`` to ``handle`` until it ends (a line beyond the limit is dropped)."""
    while True:
        try:
            raw = await stream.readline()
        except ValueError:  # a line beyond the limit: dropped, the rest is still read
            continue
        if not raw:
            return
        line = raw.decode("utf-8", "replace").strip()
        if line:
            handle(line)


def _die_with_parent_hook() -> Callable[[], None] | None:
    """On Linux, a function for the child to run before exec: SIGKILL it when this process dies.

    s5cmd runs in a session of its own, out of reach of a Ctrl-C meant for us and of a kill of our process group;
    without this, a SIGKILLed (or crashed) download would leave its s5cmd running on, downloading into a staging
    folder nobody reads. prctl(PR_SET_PDEATHSIG) is one system call through ctypes, made ready here, before any
    fork: the child runs no Python beyond that call.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    set_parent_death_signal = 1  # PR_SET_PDEATHSIG
    sigkill = int(signal.SIGKILL)

    def hook() -> None:
        prctl(set_parent_death_signal, sigkill)

    return hook


_DIE_WITH_PARENT = _die_with_parent_hook()


def kill(proc: asyncio.subprocess.Process) -> None:
    """Kill s5cmd and anything it started (its process group, on POSIX), unless it has exited already."""
    if proc.returncode is not None:
        return
    if os.name == "posix":
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the group is s5cmd's own: a new session at its start
            return
        except (ProcessLookupError, PermissionError):
            pass
    with suppress(ProcessLookupError):
        proc.kill()


def _close_pipes(proc: asyncio.subprocess.Process) -> None:
    """Release a finished process's pipes now.

    A cancelled reader leaves them undrained, so asyncio never closes them by itself; its Process has no
    public close(), so the transport is closed directly.
    """
    transport = getattr(proc, "_transport", None)
    if transport is not None:
        transport.close()
