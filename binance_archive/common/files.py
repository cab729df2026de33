"""Reading local files the way backends need to: small ones whole, in one system call."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable

__all__ = ["read_small", "remove"]


def read_small(path: str | os.PathLike[str], max_size: int, too_large: Callable[[], Exception]) -> bytes:
    """The whole small file ``path`` (a sidecar of ~100 bytes, read on the event loop: a hop to a thread would cost
    more than the read); ``too_large()`` is raised when it holds more than ``max_size`` bytes, OSError as it is."""
    with open(path, "rb") as handle:
        data = handle.read(max_size + 1)
    if len(data) > max_size:
        raise too_large()
    return data


def remove(path: str | os.PathLike[str]) -> None:
    """Remove the file ``path`` if it is there."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
