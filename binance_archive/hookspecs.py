"""The plugin hooks of binance_archive (pluggy, project name ``binance_archive``).

A plugin is a module (or object) with functions marked ``@hookimpl`` and named like the specifications
below. Built-in backends register through these same hooks; third parties ship theirs through the
``binance_archive`` entry-point group (see docs/plugins.md)::

    from binance_archive.hookspecs import hookimpl

    @hookimpl
    def register_transports():
        return [MyTransport]
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from binance_archive.backends import Storage, Transport

__all__ = ["PROJECT_NAME", "hookimpl", "hookspec"]

PROJECT_NAME = "binance_archive"
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_transports() -> Iterable[type[Transport]]:  # type: ignore[empty-body]
    """Return transport classes (subclasses of Transport) to make available by their ``name``."""


@hookspec
def register_storages() -> Iterable[type[Storage]]:  # type: ignore[empty-body]
    """Return storage classes (subclasses of Storage) to make available by ``name`` and URL ``schemes``."""
