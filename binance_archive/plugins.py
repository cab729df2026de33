"""The plugin manager and the backend registry: from a name, URL or instance to a transport or storage.

A manager is built per :class:`~binance_archive.Archive` (never at import time), so two archives in one
process can see different plugins, and tests can build one with or without entry points.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import PurePath
from typing import Any

import attrs
import pluggy

from binance_archive import hookspecs
from binance_archive.backends import Storage, Transport, TransportContext
from binance_archive.errors import ConfigurationError, PluginError

__all__ = ["BLOCK_ENV", "BUILTIN_PLUGINS", "BackendRegistry", "make_plugin_manager"]

log = logging.getLogger(__name__)

BLOCK_ENV = "BINANCE_ARCHIVE_DISABLE_PLUGINS"
"""Comma-separated names of external plugins (entry-point names) not to load."""

BUILTIN_PLUGINS: tuple[str, ...] = (
    "binance_archive.transports.http",
    "binance_archive.transports.mirror",
    "binance_archive.transports.s5cmd",
    "binance_archive.storages.local",
    "binance_archive.storages.s3",
)
"""Modules of the built-in backends, registered through the same hooks as third-party plugins."""

_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")


def make_plugin_manager(
    *, entry_points: bool = True, plugins: Iterable[object] = (), blocked: Iterable[str] | None = None
) -> pluggy.PluginManager:
    """Build a plugin manager with the built-ins, ``plugins`` and (unless disabled) the entry points.

    Args:
        entry_points: load third-party plugins from the ``binance_archive`` entry-point group.
        plugins: extra plugin objects or modules to register (tests, embedding applications).
        blocked: entry-point names not to load; default from the ``BINANCE_ARCHIVE_DISABLE_PLUGINS`` variable.

    Raises:
        PluginError: when a plugin fails to load or implements a hook that does not exist (a misspelling).
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    for name in BUILTIN_PLUGINS:
        pm.register(importlib.import_module(name), name=name)
    for plugin in plugins:
        pm.register(plugin)
    if blocked is None:
        blocked = [b.strip() for b in os.environ.get(BLOCK_ENV, "").split(",") if b.strip()]
    for name in blocked:
        pm.set_blocked(name)
    if entry_points and _may_declare_entry_points(hookspecs.PROJECT_NAME):
        try:
            pm.load_setuptools_entrypoints(hookspecs.PROJECT_NAME)
        except Exception as exc:  # a broken third-party plugin must say which one it is
            raise PluginError(f"a binance_archive plugin failed to load: {exc!r}") from exc
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"{exc} (valid hooks: register_transports, register_storages)") from exc
    return pm


def _looks_on_sys_path(finder: object) -> bool:
    """Whether ``finder`` finds distributions only in the folders of ``sys.path``, as read below: the standard
    library's own finder, or the ``importlib_metadata`` backport's (which Prefect, among others, imports)."""
    import importlib.machinery

    if finder is importlib.machinery.PathFinder:
        return True
    kind = finder if isinstance(finder, type) else type(finder)
    return (kind.__module__, kind.__qualname__) == ("importlib_metadata", "MetadataPathFinder")


def _may_declare_entry_points(group: str) -> bool:
    """Whether an installed distribution may declare entry points in ``group``: ``False`` only when none can.

    pluggy asks ``importlib.metadata``, whose import alone (email, zipfile, csv, ...) was ~30 ms of every start
    of a download here, and most installations have no plugin. This reads the ``entry_points.txt`` of every
    ``.dist-info`` and ``.egg-info`` folder on ``sys.path``, where ``importlib.metadata`` itself looks, in a
    millisecond or two. Whatever it cannot look into the same way (a zip on ``sys.path``, a meta-path finder
    that finds distributions of its own) makes it answer ``True``, and pluggy looks properly.
    """

    for finder in sys.meta_path:
        if hasattr(finder, "find_distributions") and not _looks_on_sys_path(finder):
            return True
    for entry in sys.path:
        folder = entry or os.getcwd()
        try:
            with os.scandir(folder) as found:
                names = [e.name for e in found if e.name.endswith((".dist-info", ".egg-info"))]
        except NotADirectoryError:
            return True  # a zip (an egg, a zipapp) may hold metadata
        except OSError:
            continue  # a folder that does not exist (importlib.metadata skips it too)
        for name in names:
            try:
                with open(os.path.join(folder, name, "entry_points.txt"), encoding="utf-8", errors="replace") as f:
                    text = f.read()
            except OSError:
                continue  # no entry points (or an .egg-info that is a file: PKG-INFO only)
            for line in text.splitlines():
                line = line.strip()
                if line.startswith("[") and line.endswith("]") and line[1:-1].strip() == group:
                    return True
    return False


@attrs.define
class BackendRegistry:
    """Transport and storage classes by name (and storages by URL scheme), collected from the hooks."""

    transports: dict[str, type[Transport]] = attrs.Factory(dict)
    storages: dict[str, type[Storage]] = attrs.Factory(dict)
    schemes: dict[str, type[Storage]] = attrs.Factory(dict)

    @classmethod
    def from_plugin_manager(cls, pm: pluggy.PluginManager) -> BackendRegistry:
        registry = cls()
        for classes in pm.hook.register_transports():
            for transport in classes:
                registry.add_transport(transport)
        for classes in pm.hook.register_storages():
            for storage in classes:
                registry.add_storage(storage)
        return registry

    def add_transport(self, transport: type[Transport]) -> None:
        if not (isinstance(transport, type) and issubclass(transport, Transport)):
            raise PluginError(f"{transport!r} is not a subclass of binance_archive.Transport")
        self.transports.setdefault(transport.name, transport)

    def add_storage(self, storage: type[Storage]) -> None:
        if not (isinstance(storage, type) and issubclass(storage, Storage)):
            raise PluginError(f"{storage!r} is not a subclass of binance_archive.Storage")
        self.storages.setdefault(storage.name, storage)
        for scheme in storage.schemes:
            self.schemes.setdefault(scheme, storage)

    def transport_class(self, name: str) -> type[Transport]:
        """The transport class registered as ``name``.

        Raises:
            ConfigurationError: for an unknown name, listing the installed ones.
        """
        cls = self.transports.get(name)
        if cls is None:
            raise ConfigurationError(
                f"unknown transport {name!r}; installed transports: {', '.join(sorted(self.transports))}"
            )
        return cls

    def transport(
        self, spec: str | Transport, options: Mapping[str, Any] | None = None, context: TransportContext | None = None
    ) -> Transport:
        """A transport from an instance or a name (built with its options by :meth:`Transport.create`, told
        ``context``: by default, that the transport's own default concurrency is used and no storage is local).

        Raises:
            ConfigurationError: for an unknown name (listing the installed ones) or an unknown option.
        """
        if isinstance(spec, Transport):
            if options:
                raise ConfigurationError("transport options go to the transport's constructor, not with an instance")
            return spec
        cls = self.transport_class(spec)
        context = context or TransportContext(concurrency=cls.default_concurrency)
        transport: Transport = _construct(cls, "transport", options or {}, lambda checked: cls.create(checked, context))
        return transport

    def storage(self, spec: str | os.PathLike[str] | Storage, options: Mapping[str, Any] | None = None) -> Storage:
        """A storage from an instance, a URL (``s3://bucket/prefix``), a path, or ``name:location``.

        Raises:
            ConfigurationError: for an unknown scheme or name (listing the installed ones), or a bad option.
        """
        if isinstance(spec, Storage):
            if options:
                raise ConfigurationError("storage options go to the storage's constructor, not with an instance")
            return spec
        text = os.fspath(spec) if isinstance(spec, PurePath | os.PathLike) else str(spec)
        match = _SCHEME.match(text)
        if match:
            scheme = match.group(1).lower()
            cls = self.schemes.get(scheme)
            if cls is None:
                raise ConfigurationError(
                    f"no storage handles {scheme}:// URLs; installed schemes: {', '.join(sorted(self.schemes))}"
                )
        else:
            cls = self.storages["local"]
        storage: Storage = _construct(cls, "storage", options or {}, lambda checked: cls.from_url(text, **checked))
        return storage


def _construct(cls: type[Any], kind: str, options: Mapping[str, Any], build: Callable[[dict[str, Any]], Any]) -> Any:
    """Instantiate a backend with ``build(options)``, turning a bad option into an error that lists the valid ones."""
    # Options are the constructor's keyword-only parameters, whichever way the backend is built.
    params = inspect.signature(cls).parameters
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    valid = [n for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY]
    unknown = [k for k in options if k not in valid]
    if unknown and not accepts_any:
        # repr: an empty name, white space or control characters stay visible (and cannot forge the message).
        raise ConfigurationError(
            f"unknown {kind} option(s) {', '.join(repr(k) for k in unknown)} for {cls.name!r}; "
            f"valid options: {', '.join(valid) or 'none'}"
        )
    try:
        return build(dict(options))
    except TypeError as exc:
        raise ConfigurationError(f"invalid {kind} options for {cls.name!r}: {exc}") from None
