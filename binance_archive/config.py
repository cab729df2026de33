"""Run configuration files (TOML or JSON): the selection and the settings of a download.

Two schemas are read:

- this library's own: top-level settings (``to``, ``transport``, ``concurrency``, ...), one or more
  ``[[selection]]`` tables, and ``[transport_options]`` / ``[storage_options]``;
- the schema of the collection workflow users migrate from (``markets``, ``symbols``, ``data_types``,
  ``intervals``, ``date_range``, ``output_directory``, ``max_parallel_downloads``, ...), mapped onto the same
  settings; a run from it can report the result mapping that workflow returned
  (:func:`collection_result`).

Unknown keys and invalid values raise :class:`~binance_archive.errors.ConfigurationError` naming the key and
the valid choices.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import tomllib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from binance_archive.core.catalog import DEFAULT_CATALOG, Catalog
from binance_archive.core.datatypes import DataType
from binance_archive.core.markets import Market
from binance_archive.core.planning import Shard, parse_shard
from binance_archive.core.selection import Selection, parse_date
from binance_archive.errors import ConfigurationError

if TYPE_CHECKING:
    from binance_archive.archive import Archive
    from binance_archive.report import Report

__all__ = ["RunConfig", "collection_result", "load_config"]

log = logging.getLogger(__name__)

NATIVE_KEYS = {
    "to": "where the mirror goes (a folder or a URL such as s3://bucket/prefix)",
    "transport": "the transport's name (http, s5cmd, mirror, or a plugin's)",
    "transport_options": "a table of transport options",
    "storage_options": "a table of storage options",
    "base_url": "where the archive's files are",
    "listing_url": "the archive's S3 listing URL",
    "concurrency": "files in flight at once",
    "force": "download again what is stored (true/false)",
    "refresh": "re-download files Binance replaced (true/false)",
    "catalog": "path of a catalog JSON",
    "today": "plan as if today were this date",
    "shard": "K/N: only shard K of N",
    "selection": "one table, or an array of tables, of selection fields",
}
SELECTION_KEYS = ("markets", "data_types", "symbols", "intervals", "start", "end", "periods")
LEGACY_KEYS = {
    "markets": "a list of markets",
    "symbols": "a list of symbols, or a table of lists per market",
    "data_types": "a list of data types",
    "intervals": "a table of interval lists per data type (or one list for every kline type)",
    "date_range": "a table with start and end",
    "output_directory": "where the mirror goes",
    "max_parallel_downloads": "files in flight at once",
    "batch_size": "files per s5cmd batch",
    "enable_batch_mode": "true: use the s5cmd transport",
    "enable_resume": "false: download again what is stored",
    "download_checksum": "must stay true: every file is verified",
    "timeout_seconds": "seconds before a stalled read fails",
    "force_redownload": "download again what is stored",
    "s5cmd_extra_args": "a list of extra s5cmd arguments",
    "part_size_mb": "multipart part size for S3 storage, in MB",
    "matrix_path": "path of an availability_matrix or catalog JSON",
}


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
    force: bool = False
    refresh: bool = False
    catalog: Catalog = DEFAULT_CATALOG
    today: dt.date | None = None
    shard: Shard | None = None
    legacy: bool = False
    """Read from the collection workflow's schema (so :func:`collection_result` fits its callers)."""

    def archive(self, **overrides: Any) -> Archive:
        """The :class:`~binance_archive.Archive` this configuration describes."""
        from binance_archive.archive import Archive

        kwargs: dict[str, Any] = {
            "transport": self.transport,
            "transport_options": dict(self.transport_options),
            "storage_options": dict(self.storage_options),
            "base_url": self.base_url,
            "listing_url": self.listing_url,
            "concurrency": self.concurrency,
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
    def from_mapping(cls, data: Mapping[str, Any], *, base_dir: str | None = None) -> RunConfig:
        """Read either schema from a parsed TOML or JSON document.

        Raises:
            ConfigurationError: naming any unknown key or invalid value.
        """
        if not isinstance(data, Mapping):
            raise ConfigurationError("a configuration is a table (TOML) or an object (JSON) of settings")
        legacy = [k for k in data if k in LEGACY_KEYS and k not in NATIVE_KEYS]
        if legacy or ("markets" in data and "selection" not in data):
            return _from_legacy(data, base_dir)
        return _from_native(data, base_dir)


def load_config(path: str | os.PathLike[str]) -> RunConfig:
    """Load a run configuration from a TOML (``.toml``) or JSON file.

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
            data = tomllib.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{text_path} is not valid TOML or JSON: {exc}") from None
    return RunConfig.from_mapping(data, base_dir=os.path.dirname(os.path.abspath(text_path)))


def collection_result(report: Report, config: RunConfig) -> dict[str, Any]:
    """The result mapping the collection workflow returned, for callers migrating from it.

    ``success_rate`` is the percentage of tasks that ended stored (downloaded or already there) among those
    the archive has (missing files are not counted against it).
    """
    available = report.total - report.missing
    stored = report.downloaded + report.skipped
    if report.failed == 0:
        status = "success"
    elif stored:
        status = "partial"
    else:
        status = "failed"
    return {
        "status": status,
        "collection_stats": {
            "total_tasks": report.total,
            "successful_tasks": report.downloaded,
            "failed_tasks": report.failed,
            "skipped_tasks": report.skipped,
            "missing_tasks": report.missing,
            "total_bytes": report.bytes,
            "total_seconds": round(report.duration, 3),
        },
        "success_rate": round(100.0 * stored / available, 2) if available else 100.0,
        "total_size_formatted": format_size(report.bytes),
        "output_directory": config.to,
    }


def format_size(size: float) -> str:
    """``1536`` -> ``1.5 KB`` (binary multiples, as file managers show them)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


# -- the native schema ------------------------------------------------------------------------------------------


def _unknown(data: Mapping[str, Any], valid: Mapping[str, str] | Sequence[str], where: str) -> None:
    unknown = [k for k in data if k not in valid]
    if unknown:
        raise ConfigurationError(f"unknown key {unknown[0]!r} in {where}; valid keys: {', '.join(sorted(valid))}")


def _typed(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], what: str) -> Any:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) and kind is not bool and (not isinstance(kind, tuple) or bool not in kind):
        raise ConfigurationError(f"{key} must be {what}, not {value!r}")
    if not isinstance(value, kind):
        raise ConfigurationError(f"{key} must be {what}, not {value!r}")
    return value


def _positive_int(data: Mapping[str, Any], key: str) -> int | None:
    value = _typed(data, key, int, "a whole number")
    if value is not None and value < 1:
        raise ConfigurationError(f"{key} must be at least 1, not {value}")
    return value  # type: ignore[no-any-return]


def _table(data: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{key} must be a table of KEY = VALUE options, not {value!r}")
    for name in value:  # options are keyword arguments: an empty or odd name would print as nothing at all
        if not (isinstance(name, str) and name.isidentifier()):
            raise ConfigurationError(f"{key} has an invalid option name {name!r}")
    return dict(value)


def _catalog(path: str | None, base_dir: str | None, key: str) -> Catalog:
    if path is None:
        return DEFAULT_CATALOG
    if not isinstance(path, str):
        raise ConfigurationError(f"{key} must be a path, not {path!r}")
    if base_dir and not os.path.isabs(path):
        path = os.path.join(base_dir, path)
    return Catalog.load(path)


def _selection(data: Any, where: str) -> Selection:
    if not isinstance(data, Mapping):
        raise ConfigurationError(f"{where} must be a table of selection fields ({', '.join(SELECTION_KEYS)})")
    _unknown(data, SELECTION_KEYS, where)
    for key in ("markets", "data_types"):
        if key not in data:
            raise ConfigurationError(f"{where} lacks {key!r}")
    # Type errors name the key and the value, before the Selection sees them (it names only what it parses).
    for key in ("markets", "data_types", "symbols", "intervals", "periods"):
        value = data.get(key)
        if value is not None and not (
            isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))
        ):
            raise ConfigurationError(f"{where}: {key} must be a string or a list of strings, not {value!r}")
    for key in ("start", "end"):
        value = data.get(key)
        if value is not None and not isinstance(value, str | dt.date):
            raise ConfigurationError(f"{where}: {key} must be a date (YYYY-MM-DD or YYYY-MM), not {value!r}")
    try:
        return Selection(**{k: data[k] for k in SELECTION_KEYS if k in data})
    except TypeError as exc:
        raise ConfigurationError(f"{where}: {exc}") from None


def _from_native(data: Mapping[str, Any], base_dir: str | None) -> RunConfig:
    _unknown(data, NATIVE_KEYS, "the configuration")
    raw = data.get("selection")
    if raw is None:
        raise ConfigurationError("the configuration has no [selection] (or [[selection]]) table")
    tables = [raw] if isinstance(raw, Mapping) else raw
    if not isinstance(tables, list) or not tables:
        raise ConfigurationError("selection must be a table or an array of tables")
    selections = tuple(_selection(t, f"selection #{i + 1}") for i, t in enumerate(tables))
    return RunConfig(
        selections=selections,
        to=_typed(data, "to", str, "a folder or URL") or "binance-data",
        transport=_typed(data, "transport", str, "a transport name") or "http",
        transport_options=_table(data, "transport_options"),
        storage_options=_table(data, "storage_options"),
        base_url=_typed(data, "base_url", str, "a URL"),
        listing_url=_typed(data, "listing_url", str, "a URL"),
        concurrency=_positive_int(data, "concurrency"),
        force=bool(_typed(data, "force", bool, "true or false")),
        refresh=bool(_typed(data, "refresh", bool, "true or false")),
        catalog=_catalog(data.get("catalog"), base_dir, "catalog"),
        today=parse_date(_date_text(data.get("today")), what="today"),
        shard=parse_shard(data.get("shard")),
    )


def _date_text(value: Any) -> Any:
    # TOML has a date type of its own; the selection accepts dates and strings alike.
    return value.isoformat() if isinstance(value, dt.date) else value


# -- the collection workflow's schema ---------------------------------------------------------------------------


def _string_list(data: Mapping[str, Any], key: str) -> list[str]:
    value = data.get(key)
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigurationError(f"{key} must be a list of strings, not {value!r}")
    return value


def _from_legacy(data: Mapping[str, Any], base_dir: str | None) -> RunConfig:
    _unknown(data, LEGACY_KEYS, "the configuration")
    markets = [Market.parse(m) for m in _string_list(data, "markets")]
    if not markets:
        raise ConfigurationError(
            f"markets must name at least one market; valid markets: {', '.join(m.value for m in Market)}"
        )
    types = _string_list(data, "data_types")
    if not types:
        raise ConfigurationError("data_types must name at least one data type")
    catalog = _catalog(data.get("matrix_path"), base_dir, "matrix_path")

    raw_symbols = data.get("symbols")
    symbols_of: dict[Market, list[str]] = {}
    if isinstance(raw_symbols, Mapping):
        for name in raw_symbols:
            market = Market.parse(name)
            if market not in markets:
                raise ConfigurationError(f"symbols names market {name!r}, which is not in markets")
            symbols_of[market] = _string_list(raw_symbols, name)
    else:
        every = _string_list(data, "symbols")
        symbols_of = {m: every for m in markets}

    raw_intervals = data.get("intervals")
    intervals_of: dict[str, list[str]] = {}
    if isinstance(raw_intervals, Mapping):
        for name in raw_intervals:
            if name not in types:
                raise ConfigurationError(
                    f"intervals names data type {name!r}, which is not in data_types ({', '.join(types)})"
                )
            intervals_of[name] = _string_list(raw_intervals, name)
    elif raw_intervals is not None:
        every_interval = _string_list(data, "intervals")
        intervals_of = {t: every_interval for t in types}

    date_range = data.get("date_range") or {}
    if not isinstance(date_range, Mapping):
        raise ConfigurationError(f"date_range must be a table with start and end, not {date_range!r}")
    _unknown(date_range, ("start", "end"), "date_range")
    start, end = _date_text(date_range.get("start")), _date_text(date_range.get("end"))

    selections: list[Selection] = []
    for market in markets:
        available = set(catalog.data_types(market))
        for name in types:
            data_type = DataType.parse(name)
            if data_type not in available:
                log.warning("skipping %s %s: the catalog has no such data", market.value, data_type.value)
                continue
            intervals = intervals_of.get(name, []) if data_type.has_interval else []
            if not data_type.has_interval and isinstance(raw_intervals, Mapping) and intervals_of.get(name):
                raise ConfigurationError(f"intervals names {name!r}, which has no intervals")
            selections.append(
                Selection(
                    markets=market,
                    data_types=data_type,
                    symbols=symbols_of.get(market, []),
                    intervals=intervals,
                    start=start,
                    end=end,
                )
            )
    if not selections:
        raise ConfigurationError("no combination of markets and data_types exists in the catalog")

    transport = "s5cmd" if _typed(data, "enable_batch_mode", bool, "true or false") else "http"
    transport_options: dict[str, Any] = {}
    batch_size = _positive_int(data, "batch_size")
    extra_args = data.get("s5cmd_extra_args")
    if extra_args is not None:
        extra_args = _string_list(data, "s5cmd_extra_args")
    if transport == "s5cmd":
        if batch_size is not None:
            transport_options["batch_size"] = batch_size
        if extra_args:
            transport_options["extra_args"] = extra_args
    timeout = _typed(data, "timeout_seconds", (int, float), "a number of seconds")
    if timeout is not None:
        if timeout <= 0:
            raise ConfigurationError(f"timeout_seconds must be positive, not {timeout}")
        if transport in ("http", "s5cmd"):  # both watch for a stalled read with this option
            transport_options["read_timeout"] = float(timeout)
    output = _typed(data, "output_directory", str, "a folder or URL") or "binance-data"
    storage_options: dict[str, Any] = {}
    part_size = _typed(data, "part_size_mb", (int, float), "a number of MB")
    if part_size is not None:
        if part_size <= 0:
            raise ConfigurationError(f"part_size_mb must be positive, not {part_size}")
        if output.startswith("s3://"):
            storage_options["part_size"] = int(part_size * 1024 * 1024)
    if _typed(data, "download_checksum", bool, "true or false") is False:
        log.warning("download_checksum = false is ignored: binance_archive verifies every file against its sidecar")
    resume = _typed(data, "enable_resume", bool, "true or false")
    force = bool(_typed(data, "force_redownload", bool, "true or false")) or resume is False
    return RunConfig(
        selections=tuple(selections),
        to=output,
        transport=transport,
        transport_options=transport_options,
        storage_options=storage_options,
        concurrency=_positive_int(data, "max_parallel_downloads"),
        force=force,
        catalog=catalog,
        legacy=True,
    )
