"""A file whose reads stall, as on a network file system whose server went away: Linux's fanotify permission events.

Marked with ``FAN_ACCESS_PERM`` (reads) and ``FAN_OPEN_PERM`` (opens), every read or open of the file waits in the
kernel until this process answers. :func:`stalled_reads` lets the first ``allow`` of them through and holds the rest
until its block ends; a regular file, read by the code under test exactly as it reads any other, blocks as on a hung
NFS mount. Needs root (CAP_SYS_ADMIN) on Linux; :func:`fanotify_or_skip` skips with the reason elsewhere.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import struct
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["fanotify_or_skip", "stalled_reads"]

_FAN_CLASS_CONTENT = 0x04
_FAN_CLOEXEC = 0x01
_FAN_MARK_ADD = 0x01
_FAN_ACCESS_PERM = 0x00020000
_FAN_OPEN_PERM = 0x00010000
_FAN_ALLOW, _FAN_DENY = 0x01, 0x02
_AT_FDCWD = -100
_EVENT = struct.Struct("=IBBHQii")  # fanotify_event_metadata: event_len, vers, reserved, metadata_len, mask, fd, pid


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.fanotify_mark.argtypes = [ctypes.c_int, ctypes.c_uint, ctypes.c_uint64, ctypes.c_int, ctypes.c_char_p]
    return libc


def fanotify_or_skip() -> None:
    """Skip the calling test, saying why, where fanotify's permission events cannot be used."""
    if not sys.platform.startswith("linux"):
        pytest.skip("fanotify is Linux's")
    fd = _libc().fanotify_init(_FAN_CLASS_CONTENT | _FAN_CLOEXEC, os.O_RDONLY)
    if fd < 0:
        pytest.skip(f"fanotify_init failed: {os.strerror(ctypes.get_errno())} (needs CAP_SYS_ADMIN)")
    os.close(fd)


@contextlib.contextmanager
def stalled_reads(*paths: Path, allow: int = 0, opens: bool = False) -> Iterator[list[int]]:
    """Hold every read (and, with ``opens``, every open) of ``paths`` after the first ``allow`` until the block
    ends; yields a list whose one number counts the accesses held so far."""
    libc = _libc()
    group = libc.fanotify_init(_FAN_CLASS_CONTENT | _FAN_CLOEXEC, os.O_RDONLY)
    if group < 0:
        pytest.skip(f"fanotify_init failed: {os.strerror(ctypes.get_errno())}")
    mask = _FAN_ACCESS_PERM | (_FAN_OPEN_PERM if opens else 0)
    for path in paths:
        if libc.fanotify_mark(group, _FAN_MARK_ADD, mask, _AT_FDCWD, os.fsencode(path)) != 0:
            os.close(group)
            pytest.skip(f"fanotify_mark failed: {os.strerror(ctypes.get_errno())}")
    held: list[int] = [0]
    pending: list[int] = []
    stop = threading.Event()
    seen = [0]

    def answer(fd: int, verdict: int) -> None:
        with contextlib.suppress(OSError):
            os.write(group, struct.pack("=iI", fd, verdict))
        os.close(fd)

    def listen() -> None:
        while not stop.is_set():
            ready, _, _ = select.select([group], [], [], 0.05)
            if not ready:
                continue
            data = os.read(group, 4096)
            at = 0
            while at + _EVENT.size <= len(data):
                length, _, _, _, _, fd, _ = _EVENT.unpack_from(data, at)
                at += max(length, _EVENT.size)
                if fd < 0:
                    continue
                seen[0] += 1
                if seen[0] <= allow:
                    answer(fd, _FAN_ALLOW)
                else:
                    pending.append(fd)
                    held[0] += 1

    listener = threading.Thread(target=listen, name="fanotify", daemon=True)
    listener.start()
    try:
        yield held
    finally:
        stop.set()
        listener.join(5)
        for fd in pending:
            answer(fd, _FAN_ALLOW)
        os.close(group)  # anything still pending is allowed by the kernel
