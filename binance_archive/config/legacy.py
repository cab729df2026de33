"""The configuration schema of the collection workflow users migrate from (``workflow_type``, ``markets``,
``symbols``, ``data_types``, ``intervals``, ``date_range``, ``output_directory``, ``max_parallel_downloads``, ...),
mapped onto this library's settings. Every example of that workflow's documentation loads (tests/test_config.py
holds them); its result mapping is :func:`~binance_archive.config.collection_result`.

That workflow planned from its availability matrix: a kline type given no intervals meant every interval the
matrix has, a data type or interval a market lacks was left out. So it is here, each said in the log.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from binance_archive.config.values import (
    catalog_at,
    date_text,
    non_negative,
    positive_int,
    string_list,
    table,
    typed,
    unknown,
)
from binance_archive.core.catalog import Catalog
from binance_archive.core.datatypes import DataType
from binance_archive.core.intervals import Interval
from binance_archive.core.markets import Market
from binance_archive.core.selection import Selection, parse_date
from binance_archive.errors import ConfigurationError

__all__ = ["LEGACY_KEYS", "WORKFLOW_TYPE", "legacy_settings"]

log = logging.getLogger(__name__)

WORKFLOW_TYPE = "archive_collection"
"""The one ``workflow_type`` this schema configures."""

LEGACY_KEYS = {
    "workflow_type": f'"{WORKFLOW_TYPE}" (the workflow this schema configures)',
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
    "local_data_dir": "where the mirror goes when output_directory is not given",
    "environment": "accepted and ignored (the workflow's deployment stage)",
    "enable_monitoring": "accepted and ignored",
    "logging": "accepted and ignored (configure Python's logging instead)",
    # Settings the workflow's schema lacks, accepted beside it under their native names.
    "base_url": "where the archive's files are (a native key)",
    "listing_url": "the archive's S3 listing URL (a native key)",
    "transport_options": "a table of transport options (a native key; they win over the schema's own)",
    "storage_options": "a table of storage options (a native key; they win over the schema's own)",
    "refresh": "re-download files Binance replaced, true/false (a native key)",
    "today": "plan as if today were this date (a native key)",
    "retries": "tries per request in all, default 10 (a native key)",
    "dead_after": "seconds of nothing but failed requests before the run stops, default 15 (a native key)",
}

_IGNORED = ("environment", "enable_monitoring", "logging")
# The workflow's own names of data types, where they differ from the archive's.
_TYPE_NAMES = {"premiumIndex": DataType.PREMIUM_INDEX_KLINES.value}


def legacy_settings(
    data: Mapping[str, Any], base_dir: str | None, *, intervals: Sequence[str] | None = None
) -> dict[str, Any]:
    """The settings of a :class:`~binance_archive.config.RunConfig` from a document of this schema.

    Args:
        intervals: the intervals of the kline types the document gives none (the command's ``--interval``);
            without them, such a type is planned in every interval the catalog has for its market.
    """
    unknown(data, LEGACY_KEYS, "the configuration")
    workflow = data.get("workflow_type", WORKFLOW_TYPE)
    if workflow != WORKFLOW_TYPE:
        raise ConfigurationError(f"workflow_type must be {WORKFLOW_TYPE!r} (the only one this schema configures), "
                                 f"not {workflow!r}")  # fmt: skip
    ignored = [k for k in _IGNORED if k in data]
    if ignored:
        log.info("%s: settings of the collection workflow's own runtime, ignored here", ", ".join(ignored))
    markets = [Market.parse(m) for m in string_list(data, "markets")]
    if not markets:
        raise ConfigurationError(
            f"markets must name at least one market; valid markets: {', '.join(m.value for m in Market)}"
        )
    types = [_data_type(name) for name in string_list(data, "data_types")]
    if not types:
        raise ConfigurationError("data_types must name at least one data type")
    catalog = catalog_at(data.get("matrix_path"), base_dir, "matrix_path")
    symbols_of = _symbols(data, markets)
    intervals_of = _intervals(data, types)
    fallback = [Interval.parse(i) for i in intervals or ()]
    if fallback and all(t in intervals_of for t in types if t.has_interval):
        log.warning("--interval is ignored: the configuration gives intervals to every kline type it names (if any)")

    date_range = data.get("date_range") or {}
    if not isinstance(date_range, Mapping):
        raise ConfigurationError(f"date_range must be a table with start and end, not {date_range!r}")
    unknown(date_range, ("start", "end"), "date_range")
    start, end = date_text(date_range.get("start")), date_text(date_range.get("end"))

    selections: list[Selection] = []
    every_interval: dict[DataType, list[str]] = {}  # kline types planned in every interval: "spot 16", ...
    for market in markets:
        available = set(catalog.data_types(market))
        for data_type in dict.fromkeys(types):
            if data_type not in available:
                log.warning("skipping %s %s: the catalog has no such data", market.value, data_type.value)
                continue
            chosen: list[Interval] = []
            if data_type.has_interval:
                chosen = intervals_of.get(data_type) or fallback
                if not chosen:
                    chosen = list(catalog.lookup(market, data_type).all_intervals())
                    every_interval.setdefault(data_type, []).append(f"{len(chosen)} on {market.value}")
                chosen = _available_intervals(catalog, market, data_type, chosen)
                if not chosen:
                    continue
            selections.append(
                Selection(
                    markets=market,
                    data_types=data_type,
                    symbols=symbols_of.get(market, []),
                    intervals=chosen,
                    start=start,
                    end=end,
                )
            )
    if every_interval:
        names = " and ".join(t.value for t in every_interval)
        counts = "; ".join(f"{t.value}: {', '.join(c)}" for t, c in every_interval.items())
        log.warning(
            "the configuration gives no intervals for %s, so every interval the catalog has is planned (%s); "
            'narrow it with "intervals": {"%s": ["1h", "1d"]} in the configuration, or --interval',
            names, counts, next(iter(every_interval)).value,
        )  # fmt: skip
    if not selections:
        raise ConfigurationError("no combination of markets and data_types exists in the catalog")
    return dict(selections=tuple(selections), catalog=catalog, legacy=True, **_settings(data))


def _data_type(name: str) -> DataType:
    return DataType.parse(_TYPE_NAMES.get(name, name))


def _symbols(data: Mapping[str, Any], markets: list[Market]) -> dict[Market, list[str]]:
    raw = data.get("symbols")
    if not isinstance(raw, Mapping):
        every = string_list(data, "symbols")
        return {m: every for m in markets}
    symbols_of: dict[Market, list[str]] = {}
    for name in raw:
        market = Market.parse(name)
        if market not in markets:
            raise ConfigurationError(f"symbols names market {name!r}, which is not in markets")
        symbols_of[market] = string_list(raw, name)
    return symbols_of


def _intervals(data: Mapping[str, Any], types: list[DataType]) -> dict[DataType, list[Interval]]:
    """The intervals the document gives per kline type; those it gives other types are said and left out (that
    workflow's examples give some to types without any, such as ``bookDepth``, and to types they do not take)."""
    raw = data.get("intervals")
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        every = [Interval.parse(i) for i in string_list(data, "intervals")]
        return {t: every for t in types if t.has_interval}
    intervals_of: dict[DataType, list[Interval]] = {}
    for name in raw:
        try:
            data_type = _data_type(name)
        except ConfigurationError:
            raise ConfigurationError(
                f"intervals names {name!r}, which is no data type; it names data_types ({', '.join(map(str, types))})"
            ) from None
        if data_type not in types:
            log.warning("intervals of %s are left out: %s is not in data_types", name, name)
        elif not data_type.has_interval:
            log.warning("intervals of %s are left out: the archive's %s files have no interval", name, name)
        else:
            intervals_of[data_type] = [Interval.parse(i) for i in string_list(raw, name)]
    return intervals_of


def _available_intervals(
    catalog: Catalog, market: Market, data_type: DataType, chosen: list[Interval]
) -> list[Interval]:
    """``chosen``, less the intervals the catalog lacks for ``market`` (each said); none left: the pair is skipped."""
    has = set(catalog.lookup(market, data_type).all_intervals())
    kept = [i for i in dict.fromkeys(chosen) if i in has]
    lacking = [i.value for i in chosen if i not in has]
    if lacking:
        log.warning("%s %s has no %s interval: left out", market.value, data_type.value, ", ".join(lacking))
    if not kept:
        log.warning("skipping %s %s: none of its intervals is in the catalog", market.value, data_type.value)
    return kept


def _settings(data: Mapping[str, Any]) -> dict[str, Any]:
    """The settings of the run that are not the selections: transport, storage, concurrency, force."""
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
        transport_options["read_timeout"] = float(timeout)  # both transports watch for a stalled read with it
    output = (
        typed(data, "output_directory", str, "a folder or URL")
        or typed(data, "local_data_dir", str, "a folder")
        or "binance-data"
    )
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
        to=output,
        transport=transport,
        transport_options={**transport_options, **table(data, "transport_options")},
        storage_options={**storage_options, **table(data, "storage_options")},
        base_url=typed(data, "base_url", str, "a URL"),
        listing_url=typed(data, "listing_url", str, "a URL"),
        concurrency=positive_int(data, "max_parallel_downloads"),
        force=force,
        refresh=bool(typed(data, "refresh", bool, "true or false")),
        today=parse_date(date_text(data.get("today")), what="today"),
        retries=positive_int(data, "retries"),
        dead_after=non_negative(data, "dead_after", "a number of seconds (0 never stops)"),
    )
