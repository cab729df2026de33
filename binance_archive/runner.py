"""Running a coroutine from synchronous code (the command line, ``download_sync``) on the fastest event loop.

Inside a notebook or an async application the library runs on the caller's loop, whatever it is. Where the
library starts a loop of its own, it uses `uvloop <https://github.com/MagicStack/uvloop>`_ when installed
(``pip install 'binance-archive[fast]'``): its C event loop spends less CPU on each request and callback, and
a mirror of small files is bound by CPU per file. Set ``BINANCE_ARCHIVE_LOOP=asyncio`` to use the standard
loop anyway, or ``uvloop`` to insist on uvloop.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

from binance_archive.errors import ConfigurationError

__all__ = ["LOOP_ENV", "loop_name", "run"]

LOOP_ENV = "BINANCE_ARCHIVE_LOOP"
"""``auto`` (the default: uvloop when installed), ``uvloop`` or ``asyncio``."""

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
    """Run ``coroutine`` to completion on a new event loop (see the module's docstring for which)."""
    try:
        name = loop_name()
    except ConfigurationError:
        coroutine.close()  # never awaited: closed, so Python does not warn about it
        raise
    if name == "uvloop":
        import uvloop

        return uvloop.run(coroutine)
    return asyncio.run(coroutine)
