"""Values of a configuration, checked one by one: each error names the key, what it must be, and the value."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping, Sequence
from typing import Any

from binance_archive.core.catalog import DEFAULT_CATALOG, Catalog
from binance_archive.errors import ConfigurationError

__all__ = ["catalog_at", "date_text", "non_negative", "positive_int", "string_list", "table", "typed", "unknown"]


def unknown(data: Mapping[str, Any], valid: Mapping[str, str] | Sequence[str], where: str) -> None:
    unknown = [k for k in data if k not in valid]
    if unknown:
        raise ConfigurationError(f"unknown key {unknown[0]!r} in {where}; valid keys: {', '.join(sorted(valid))}")


def typed(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], what: str) -> Any:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) and kind is not bool and (not isinstance(kind, tuple) or bool not in kind):
        raise ConfigurationError(f"{key} must be {what}, not {value!r}")
    if not isinstance(value, kind):
        raise ConfigurationError(f"{key} must be {what}, not {value!r}")
    return value


def positive_int(data: Mapping[str, Any], key: str) -> int | None:
    value = typed(data, key, int, "a whole number")
    if value is not None and value < 1:
        raise ConfigurationError(f"{key} must be at least 1, not {value}")
    return value  # type: ignore[no-any-return]


def non_negative(data: Mapping[str, Any], key: str, what: str) -> float | None:
    value = typed(data, key, (int, float), what)
    if value is not None and not 0 <= value < float("inf"):
        raise ConfigurationError(f"{key} must be {what}, not {value!r}")
    return None if value is None else float(value)


def table(data: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{key} must be a table of KEY = VALUE options, not {value!r}")
    for name in value:  # options are keyword arguments: an empty or odd name would print as nothing at all
        if not (isinstance(name, str) and name.isidentifier()):
            raise ConfigurationError(f"{key} has an invalid option name {name!r}")
    return dict(value)


def catalog_at(path: str | None, base_dir: str | None, key: str) -> Catalog:
    if path is None:
        return DEFAULT_CATALOG
    if not isinstance(path, str):
        raise ConfigurationError(f"{key} must be a path, not {path!r}")
    if base_dir and not os.path.isabs(path):
        path = os.path.join(base_dir, path)
    return Catalog.load(path)


def date_text(value: Any) -> Any:
    # TOML has a date type of its own; the selection accepts dates and strings alike.
    return value.isoformat() if isinstance(value, dt.date) else value


def string_list(data: Mapping[str, Any], key: str) -> list[str]:
    value = data.get(key)
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigurationError(f"{key} must be a list of strings, not {value!r}")
    return value
