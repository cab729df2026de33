"""A run's configuration (:class:`RunConfig`): what to download and with which settings, from code or a file."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from binance_archive.config.legacy import LEGACY_KEYS, legacy_settings
from binance_archive.config.native import NATIVE_KEYS, native_settings
from binance_archive.core.catalog import DEFAULT_CATALOG, Catalog
from binance_archive.core.planning import Shard
from binance_archive.core.selection import Selection
from binance_archive.errors import ConfigurationError

if TYPE_CHECKING:
    from binance_archive.archive import Archive
    from binance_archive.report import Report

__all__ = ["RunConfig", "load_config"]


@attrs.frozen
class RunConfig:
    """Everything a download needs: the selections, and the settings of the archive and of the run."""

    selections: tuple[Selection, ...]
    to: str = "binance-data"
    transport: str = "http"
    transport_options: Mapping[str, Any] = attrs.Factory(dict)
    storage_options: Mapping[str, Any] = attrs.Factory(dict)
    base_url: str | None = None
    listing_url: str | None = None
    concurrency: int | None = None
    """Files in flight, pinned (with ``max_concurrency``: where to start); ``None``: the transport's default."""
    max_concurrency: int | None = None
    """Find the files in flight by measuring, up to this many; ``None``: the transport's default."""
    retries: int | None = None
    """Tries per request in all (the retry policy's ``attempts``; 1 tries once, with no final pass); ``None``: 10."""
    dead_after: float | None = None
    """Seconds of nothing but failed requests before the run stops (0 never stops); ``None``: the default, 15."""
    force: bool = False
    refresh: bool = False
    catalog: Catalog = DEFAULT_CATALOG
    today: dt.date | None = None
    shard: Shard | None = None
    legacy: bool = False
    """Read from the collection workflow's schema (so :func:`~binance_archive.config.collection_result` fits its
    callers)."""

    def archive(self, **overrides: Any) -> Archive:
        """The :class:`~binance_archive.Archive` this configuration describes."""
        from binance_archive.archive import Archive
        from binance_archive.engine.retry import RetryPolicy

        kwargs: dict[str, Any] = {
            "transport": self.transport,
            "transport_options": dict(self.transport_options),
            "storage_options": dict(self.storage_options),
            "base_url": self.base_url,
            "listing_url": self.listing_url,
            "concurrency": self.concurrency,
            "max_concurrency": self.max_concurrency,
            "retry": RetryPolicy.with_retries(self.retries, dead_after=self.dead_after),
            "catalog": self.catalog,
        }
        storage = overrides.pop("storage", self.to)
        kwargs.update(overrides)
        return Archive(storage, **kwargs)

    async def run(self, archive: Archive | None = None, **download: Any) -> Report:
        """Download every selection; returns the report."""
        archive = archive or self.archive()
        options: dict[str, Any] = {
            "force": self.force,
            "refresh": self.refresh,
            "today": self.today,
            "shard": self.shard,
        }
        options.update(download)
        return await archive.download(self.selections, **options)

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any], *, base_dir: str | None = None, intervals: Sequence[str] | None = None
    ) -> RunConfig:
        """Read either schema from a parsed TOML or JSON document.

        Args:
            base_dir: the folder relative paths in the document (a catalog) are relative to.
            intervals: for the collection workflow's schema, the intervals of the kline types the document gives
                none (the command's ``--interval``); this library's schema names them in each selection.

        Raises:
            ConfigurationError: naming any unknown key or invalid value.
        """
        if not isinstance(data, Mapping):
            raise ConfigurationError("a configuration is a table (TOML) or an object (JSON) of settings")
        legacy = [k for k in data if k in LEGACY_KEYS and k not in NATIVE_KEYS]
        if legacy or ("markets" in data and "selection" not in data):
            return cls(**legacy_settings(data, base_dir, intervals=intervals))
        if intervals:
            raise ConfigurationError(
                "intervals given beside the configuration (--interval) apply to the collection workflow's schema "
                "only; this configuration names its intervals in each [[selection]]"
            )
        return cls(**native_settings(data, base_dir))


def load_config(path: str | os.PathLike[str], *, intervals: Sequence[str] | None = None) -> RunConfig:
    """Load a run configuration from a TOML (``.toml``) or JSON file (``intervals``: see
    :meth:`RunConfig.from_mapping`).

    Raises:
        ConfigurationError: when the file cannot be read or parsed, or holds an invalid setting.
    """
    text_path = os.fspath(path)
    try:
        with open(text_path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise ConfigurationError(f"cannot read the configuration {text_path!r}: {exc.strerror}") from None
    try:
        if text_path.endswith(".json") or raw.lstrip().startswith(b"{"):
            data = json.loads(raw)
        else:
            import tomllib  # here: only a TOML file needs it, not every start of the command

            data = tomllib.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{text_path} is not valid TOML or JSON: {exc}") from None
    return RunConfig.from_mapping(data, base_dir=os.path.dirname(os.path.abspath(text_path)), intervals=intervals)
