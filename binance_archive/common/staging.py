"""Temporary files and staging folders: named after their writer, hidden from listings, swept after a crash.

A local storage writes every file under a temporary name beside its final one; a transport that stages files on
disk (s5cmd) stages them in a folder named the same way. Names carry their writer's host and process:
``.binance-archive-{name}.{host}.{pid}.{n}.part``. A process killed mid-write (SIGKILL, power loss) leaves its
temporary files behind; the next process that writes into the same folder on the same host removes those whose
process is gone (:func:`sweep`), so a re-run leaves a clean mirror. Files of live processes, of other hosts (a
shared file system) and names in any other form are never touched.
"""

from __future__ import annotations

import itertools
import os
import shutil
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import cache

__all__ = [
    "TEMP_PREFIX",
    "discard_live",
    "is_temporary",
    "temporary_glob",
    "make_temp_folder",
    "release",
    "replacing",
    "release_temp_folder",
    "sweep",
    "temp_path",
]

TEMP_PREFIX = ".binance-archive-"
"""Temporary files start with this and end in ``.part``; they are never listed as stored objects."""


@cache
def _host() -> str:
    """This host's mark in temporary names (a hash of its name): computed on first use, since ``socket`` is not
    otherwise needed by a command that writes nothing (``--help``, ``plan``)."""
    import socket

    return f"{zlib.crc32(socket.gethostname().encode()):08x}"


_SEQUENCE = itertools.count(1)
_LIVE: set[str] = set()  # temporary names this process is writing now (a re-used PID must not sweep them)
_LIVE_LOCK = threading.Lock()


def is_temporary(name: str) -> bool:
    """Whether the file or folder ``name`` is a temporary one (a write or a staging area under way, or left)."""
    return name.startswith(TEMP_PREFIX)


def temporary_glob() -> str:
    """The glob pattern of temporary files (not of staging folders): ``.binance-archive-*.part``."""
    return f"{TEMP_PREFIX}*.part"


def temp_path(final: str) -> str:
    """A new temporary path beside ``final``, owned by this process until :func:`release` is called."""
    folder, name = os.path.split(final)
    path = os.path.join(folder, f"{TEMP_PREFIX}{name}.{_host()}.{os.getpid()}.{next(_SEQUENCE)}.part")
    with _LIVE_LOCK:
        _LIVE.add(path)
    return path


def release(temp: str) -> None:
    """Forget ``temp`` (renamed into place, or removed): a later sweep may treat that name as anyone's."""
    with _LIVE_LOCK:
        _LIVE.discard(temp)


@contextmanager
def replacing(final: str) -> Iterator[str]:
    """A temporary path beside ``final`` for the block to create; renamed over ``final`` when the block ends well
    (atomic: readers see the old file or the whole new one), removed when it fails. Released either way."""
    temp = temp_path(final)
    try:
        yield temp
        os.replace(temp, final)
    except BaseException:
        with suppress(OSError):
            os.unlink(temp)
        raise
    finally:
        release(temp)


def discard_live() -> None:
    """Remove every temporary file and staging folder this process is writing now (best effort).

    For a process about to end without unwinding (an interrupted command whose grace period ran out): what its
    writers would have removed on their way out. Never blocks for long: it may run while other threads write.
    """
    locked = _LIVE_LOCK.acquire(timeout=0.1)
    try:
        paths = list(_LIVE)
    finally:
        if locked:
            _LIVE_LOCK.release()
    for path in paths:
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with suppress(OSError):
                os.unlink(path)


def _is_stale(path: str, name: str) -> bool:
    """Whether the temporary file ``name`` was left by a process of this host that no longer runs."""
    parts = name.rsplit(".", 4)
    if len(parts) != 5 or parts[4] != "part" or parts[1] != _host() or not parts[2].isdigit():
        return False
    pid = int(parts[2])
    if pid == os.getpid():  # ours, or a dead process's whose PID we re-use (PID 1 in a container)
        with _LIVE_LOCK:
            return path not in _LIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # EPERM: alive, another user's
        return False
    return False


def sweep(folder: str) -> None:
    """Remove the temporary files (and folders) a killed process of this host left in ``folder`` (best effort)."""
    try:
        with os.scandir(folder) as entries:
            stale = [
                (e.path, e.is_dir(follow_symlinks=False))
                for e in entries
                if is_temporary(e.name) and _is_stale(e.path, e.name)
            ]
    except OSError:
        return
    for path, is_dir in stale:
        if is_dir:
            shutil.rmtree(path, ignore_errors=True)
        else:
            with suppress(OSError):
                os.unlink(path)


def make_temp_folder(parent: str | os.PathLike[str], stem: str) -> str:
    """A new folder in ``parent`` named as this process's temporary files are (a transport's staging area).

    Hidden from listings like them, and removed by the next run on this host if this process is killed before
    it removes the folder itself (then it calls :func:`release_temp_folder`). Stale ones in ``parent`` go first.
    """
    parent = os.fspath(parent)
    os.makedirs(parent, exist_ok=True)
    sweep(parent)
    path = temp_path(os.path.join(parent, stem))
    try:
        os.mkdir(path)
    except BaseException:
        release(path)
        raise
    return path


def release_temp_folder(path: str | os.PathLike[str]) -> None:
    """Remove a folder made by :func:`make_temp_folder` and everything in it."""
    shutil.rmtree(path, ignore_errors=True)
    release(os.fspath(path))
