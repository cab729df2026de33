"""The configuration schema of the collection workflow users migrate from (``markets``, ``symbols``,
``data_types``, ``intervals``, ``date_range``, ``output_directory``, ``max_parallel_downloads``, ...), mapped onto
this library's settings, and the result mapping that workflow returned (:func:`collection_result`)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from binance_archive.config.values import catalog_at, date_text, positive_int, string_list, typed, unknown
from binance_archive.core.datatypes import DataType
from binance_archive.core.markets import Market
from binance_archive.core.selection import Selection
from binance_archive.errors import ConfigurationError

if TYPE_CHECKING:
    from binance_archive.config.run_config import RunConfig
    from binance_archive.report import Report

__all__ = ["LEGACY_KEYS", "collection_result", "format_size", "legacy_settings"]

log = logging.getLogger(__name__)

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


def legacy_settings(data: Mapping[str, Any], base_dir: str | None) -> dict[str, Any]:
    """The settings of a :class:`~binance_archive.config.RunConfig` from a document of this schema."""
    unknown(data, LEGACY_KEYS, "the configuration")
    markets = [Market.parse(m) for m in string_list(data, "markets")]
    if not markets:
        raise ConfigurationError(
            f"markets must name at least one market; valid markets: {', '.join(m.value for m in Market)}"
        )
    types = string_list(data, "data_types")
    if not types:
        raise ConfigurationError("data_types must name at least one data type")
    catalog = catalog_at(data.get("matrix_path"), base_dir, "matrix_path")

    raw_symbols = data.get("symbols")
    symbols_of: dict[Market, list[str]] = {}
    if isinstance(raw_symbols, Mapping):
        for name in raw_symbols:
            market = Market.parse(name)
            if market not in markets:
                raise ConfigurationError(f"symbols names market {name!r}, which is not in markets")
            symbols_of[market] = string_list(raw_symbols, name)
    else:
        every = string_list(data, "symbols")
        symbols_of = {m: every for m in markets}

    raw_intervals = data.get("intervals")
    intervals_of: dict[str, list[str]] = {}
    if isinstance(raw_intervals, Mapping):
        for name in raw_intervals:
            if name not in types:
                raise ConfigurationError(
                    f"intervals names data type {name!r}, which is not in data_types ({', '.join(types)})"
                )
            intervals_of[name] = string_list(raw_intervals, name)
    elif raw_intervals is not None:
        every_interval = string_list(data, "intervals")
        intervals_of = {t: every_interval for t in types}

    date_range = data.get("date_range") or {}
    if not isinstance(date_range, Mapping):
        raise ConfigurationError(f"date_range must be a table with start and end, not {date_range!r}")
    unknown(date_range, ("start", "end"), "date_range")
    start, end = date_text(date_range.get("start")), date_text(date_range.get("end"))

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

    transport = "s5cmd" if typed(data, "enable_batch_mode", bool, "true or false") else "http"
    transport_options: dict[str, Any] = {}
    batch_size = positive_int(data, "batch_size")
    extra_args = data.get("s5cmd_extra_args")
    if extra_args is not None:
        extra_args = string_list(data, "s5cmd_extra_args")
    if transport == "s5cmd":
        if batch_size is not None:
            transport_options["batch_size"] = batch_size
        if extra_args:
            transport_options["extra_args"] = extra_args
    timeout = typed(data, "timeout_seconds", (int, float), "a number of seconds")
    if timeout is not None:
        if timeout <= 0:
            raise ConfigurationError(f"timeout_seconds must be positive, not {timeout}")
        if transport in ("http", "s5cmd"):  # both watch for a stalled read with this option
            transport_options["read_timeout"] = float(timeout)
    output = typed(data, "output_directory", str, "a folder or URL") or "binance-data"
    storage_options: dict[str, Any] = {}
    part_size = typed(data, "part_size_mb", (int, float), "a number of MB")
    if part_size is not None:
        if part_size <= 0:
            raise ConfigurationError(f"part_size_mb must be positive, not {part_size}")
        if output.startswith("s3://"):
            storage_options["part_size"] = int(part_size * 1024 * 1024)
    if typed(data, "download_checksum", bool, "true or false") is False:
        log.warning("download_checksum = false is ignored: binance_archive verifies every file against its sidecar")
    resume = typed(data, "enable_resume", bool, "true or false")
    force = bool(typed(data, "force_redownload", bool, "true or false")) or resume is False
    return dict(
        selections=tuple(selections),
        to=output,
        transport=transport,
        transport_options=transport_options,
        storage_options=storage_options,
        concurrency=positive_int(data, "max_parallel_downloads"),
        force=force,
        catalog=catalog,
        legacy=True,
    )


def collection_result(report: Report, config: RunConfig) -> dict[str, Any]:
    """The result mapping the collection workflow returned, for callers migrating from it.

    ``success_rate`` is the percentage of tasks that ended stored (downloaded or already there) among those
    the archive has (missing files are not counted against it).
    """
    available = report.total - report.missing
    stored = report.downloaded + report.skipped
    if report.failed == 0 and not report.stopped:  # stopped: files were not attempted (a target not writable)
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
