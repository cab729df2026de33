"""Whether a local folder can hold a mirror: not a file (nor under one), and writable by this process now."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from binance_archive.common.staging import release, temp_path
from binance_archive.errors import ConfigurationError

__all__ = ["probe_writes", "refuse_a_file"]

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


def refuse_a_file(root: Path) -> None:
    """Refuse a root that is a file, or lies under one: no mirror can be written there, whatever the user's rights.

    Checked when a storage is made, so the command refuses it (status 2) before any request; otherwise every file
    would fail on its own, "not a directory", after being fetched. A path that cannot be inspected (permission)
    counts as missing: the writes name their own error.

    Raises:
        ConfigurationError: naming the file.
    """
    for path in (root, *root.parents):
        if not os.path.exists(path):  # not there yet (made on the first write), or not to be inspected
            continue
        if os.path.isdir(path):
            return
        where = "is a file" if path == root else f"lies under {path}, which is a file"
        raise ConfigurationError(f"the mirror folder {root} {where}; give a folder (it is made if it is missing)")


def probe_writes(root: str) -> None:
    """Whether files can be written under ``root`` now, by this process; raises the OSError that says why not
    (its ``filename`` the folder).

    In an existing root, a temporary file is created in the folder the mirror's files go under (``data/`` once it
    exists) and removed: honest for every user (root writes into a folder of mode 0555, but not into a read-only
    file system). A root not made yet is not made here (a run that fetches nothing leaves nothing behind): the
    nearest folder that exists must let this user make it (``access(2)``, which answers a read-only file system
    for root too). A few system calls, microseconds.
    """
    if not os.path.isdir(root):
        parent = os.path.dirname(os.path.abspath(root))
        while not os.path.isdir(parent) and parent != os.path.dirname(parent):
            parent = os.path.dirname(parent)
        effective = os.access in os.supports_effective_ids
        if not os.access(parent, os.W_OK | os.X_OK, effective_ids=effective):
            error = errno.EROFS if _read_only(parent) else errno.EACCES
            raise OSError(error, os.strerror(error), root)
        return
    folder = os.path.join(root, "data")
    if not os.path.isdir(folder):
        folder = root
    probe = temp_path(os.path.join(folder, "write-check"))
    try:
        os.close(os.open(probe, _CREATE, 0o666))
        os.unlink(probe)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, folder) from exc
    finally:
        release(probe)


def _read_only(path: str) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False
