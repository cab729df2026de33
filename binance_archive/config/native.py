"""This library's own configuration schema: top-level settings, ``[[selection]]`` tables, and tables of
``[transport_options]`` / ``[storage_options]``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from binance_archive.common.options import check_levels
from binance_archive.config.values import catalog_at, date_text, non_negative, positive_int, table, typed, unknown
from binance_archive.core.planning import parse_shard
from binance_archive.core.selection import Selection, parse_date
from binance_archive.errors import ConfigurationError

__all__ = ["NATIVE_KEYS", "SELECTION_KEYS", "native_settings"]

NATIVE_KEYS = {
    "to": "where the mirror goes (a folder or a URL such as s3://bucket/prefix)",
    "transport": "the transport's name (http, s5cmd, mirror, or a plugin's)",
    "transport_options": "a table of transport options",
    "storage_options": "a table of storage options",
    "base_url": "where the archive's files are",
    "listing_url": "the archive's S3 listing URL",
    "concurrency": "files in flight at once, pinned (with max_concurrency: where to start)",
    "max_concurrency": "find the files in flight by measuring, up to this many (over HTTP: 256 by default)",
    "retries": "tries per request in all (default 10; 1 tries once, with no final pass)",
    "dead_after": "seconds of nothing but failed requests before the run stops (default 15; 0 never stops)",
    "force": "download again what is stored (true/false)",
    "refresh": "re-download files Binance replaced (true/false)",
    "catalog": "path of a catalog JSON",
    "today": "plan as if today were this date",
    "shard": "K/N: only shard K of N",
    "selection": "one table, or an array of tables, of selection fields",
}
SELECTION_KEYS = ("markets", "data_types", "symbols", "intervals", "start", "end", "periods")


def _selection(data: Any, where: str) -> Selection:
    if not isinstance(data, Mapping):
        raise ConfigurationError(f"{where} must be a table of selection fields ({', '.join(SELECTION_KEYS)})")
    unknown(data, SELECTION_KEYS, where)
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


def native_settings(data: Mapping[str, Any], base_dir: str | None) -> dict[str, Any]:
    """The settings of a :class:`~binance_archive.config.RunConfig` from a document of this schema."""
    unknown(data, NATIVE_KEYS, "the configuration")
    raw = data.get("selection")
    if raw is None:
        raise ConfigurationError("the configuration has no [selection] (or [[selection]]) table")
    tables = [raw] if isinstance(raw, Mapping) else raw
    if not isinstance(tables, list) or not tables:
        raise ConfigurationError("selection must be a table or an array of tables")
    selections = tuple(_selection(t, f"selection #{i + 1}") for i, t in enumerate(tables))
    concurrency, max_concurrency = data.get("concurrency"), data.get("max_concurrency")
    check_levels(concurrency, max_concurrency)  # refused as the file is read, not when the run starts
    return dict(
        selections=selections,
        to=typed(data, "to", str, "a folder or URL") or "binance-data",
        transport=typed(data, "transport", str, "a transport name") or "http",
        transport_options=table(data, "transport_options"),
        storage_options=table(data, "storage_options"),
        base_url=typed(data, "base_url", str, "a URL"),
        listing_url=typed(data, "listing_url", str, "a URL"),
        concurrency=concurrency,
        max_concurrency=max_concurrency,
        retries=positive_int(data, "retries"),
        dead_after=non_negative(data, "dead_after", "a number of seconds (0 never stops)"),
        force=bool(typed(data, "force", bool, "true or false")),
        refresh=bool(typed(data, "refresh", bool, "true or false")),
        catalog=catalog_at(data.get("catalog"), base_dir, "catalog"),
        today=parse_date(date_text(data.get("today")), what="today"),
        shard=parse_shard(data.get("shard")),
    )
