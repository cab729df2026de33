"""File systems of a test's own: tmpfs mounts that fill up or turn read-only on cue (mounting needs root)."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

import pytest


@contextlib.contextmanager
def mounted_tmpfs(target: Path, options: str, *, refused: Callable[[str], NoReturn] = pytest.skip) -> Iterator[Path]:
    """A tmpfs mounted at ``target`` (made here) with ``options`` (``size=4m``, ``ro,size=1m``), unmounted after.

    Where mounting is not allowed, ``refused`` is called with the reason: the test skips, saying why, or (with
    ``pytest.fail``) fails where it must not go untested.
    """
    target.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True)
    if done.returncode != 0:
        refused(f"cannot mount a tmpfs ({options}) here (needs root): {done.stderr.decode().strip()}")
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], capture_output=True, check=False)


def remount(target: Path, options: str) -> None:
    """Change a mounted file system's options (``ro``, ``size=...``) under whatever is using it."""
    subprocess.run(["mount", "-o", f"remount,{options}", str(target)], check=True, capture_output=True)
