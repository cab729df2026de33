"""Reading the ``availability_matrix`` JSON of older collection tools into catalog entries.

That format nests market -> data type -> description, where a description names its periods (a ``periods``
list, or ``daily``/``monthly`` flags or objects), its ``intervals`` (a list, or one list per period) and the
``url_pattern``/``filename_pattern`` the tool built keys with. The patterns are checked against the
archive's real layout: a pattern that disagrees (an interval folder for a type without one, say) is refused
rather than silently ignored.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from binance_archive.core.catalog import Availability, date_or_none, flag
from binance_archive.core.datatypes import DataType
from binance_archive.core.intervals import Interval
from binance_archive.core.markets import Market
from binance_archive.core.periods import Period
from binance_archive.errors import ConfigurationError

__all__ = ["entries_from_availability_matrix"]

_KNOWN = {
    "periods", "daily", "monthly", "intervals", "url_pattern", "filename_pattern",
    "first_date", "last_date", "start_date", "end_date", "retired", "note", "description",
}  # fmt: skip


def entries_from_availability_matrix(data: Mapping[str, Any]) -> Iterator[Availability]:
    """Yield one :class:`Availability` per market and data type of an ``availability_matrix`` mapping."""
    matrix = data.get("availability_matrix", data)
    if not isinstance(matrix, Mapping):
        raise ConfigurationError("'availability_matrix' must map markets to data types")
    for market_name, types in matrix.items():
        market = Market.parse(market_name)
        if not isinstance(types, Mapping):
            raise ConfigurationError(f"availability_matrix[{market_name!r}] must map data types to descriptions")
        for type_name, spec in types.items():
            where = f"availability_matrix[{market_name!r}][{type_name!r}]"
            if not isinstance(spec, Mapping):
                raise ConfigurationError(f"{where} must be an object")
            yield _entry(market, DataType.parse(type_name), spec, where)


def _entry(market: Market, data_type: DataType, spec: Mapping[str, Any], where: str) -> Availability:
    unknown = set(spec) - _KNOWN
    if unknown:
        raise ConfigurationError(f"{where}: unknown key(s) {sorted(unknown)}; valid keys: {sorted(_KNOWN)}")
    periods = _periods(spec, where)
    intervals = _intervals(spec, periods, data_type, where)
    _check_patterns(spec, market, data_type, where)
    return Availability(
        market,
        data_type,
        intervals,
        first_date=date_or_none(spec.get("first_date", spec.get("start_date"))),
        last_date=date_or_none(spec.get("last_date", spec.get("end_date"))),
        retired=flag(spec.get("retired", False), f"{where}: retired"),
        note=str(spec.get("note", spec.get("description", ""))),
    )


def _periods(spec: Mapping[str, Any], where: str) -> list[Period]:
    if "periods" in spec:
        raw = spec["periods"]
        names = [raw] if isinstance(raw, str) else list(raw)
        return [Period.parse(p) for p in names]
    periods = [p for p in Period if spec.get(p.value)]
    if not periods:
        raise ConfigurationError(f"{where}: names no period; give 'periods': ['daily', 'monthly']")
    return periods


def _intervals(
    spec: Mapping[str, Any], periods: list[Period], data_type: DataType, where: str
) -> dict[Period, tuple[Interval, ...]]:
    result: dict[Period, tuple[Interval, ...]] = {}
    raw = spec.get("intervals")
    for period in periods:
        per_period = spec.get(period.value)
        if isinstance(per_period, Mapping) and "intervals" in per_period:
            names = per_period["intervals"]
        elif isinstance(raw, Mapping):
            names = raw.get(period.value, [])
        else:
            names = raw or []
        result[period] = tuple(Interval.parse(n) for n in names) if data_type.has_interval else ()
        if data_type.has_interval and not result[period]:
            raise ConfigurationError(f"{where}: {data_type.value} needs 'intervals' for {period.value}")
        if not data_type.has_interval and names:
            raise ConfigurationError(f"{where}: {data_type.value} has no intervals, but some are listed")
    return result


def _check_patterns(spec: Mapping[str, Any], market: Market, data_type: DataType, where: str) -> None:
    for field in ("url_pattern", "filename_pattern"):
        pattern = spec.get(field)
        if pattern is None:
            continue
        if not isinstance(pattern, str) or "{symbol}" not in pattern.lower():
            raise ConfigurationError(f"{where}: {field} {pattern!r} must contain {{symbol}}")
        if ("{interval}" in pattern.lower()) != data_type.has_interval:
            expected = "contains" if data_type.has_interval else "does not contain"
            raise ConfigurationError(
                f"{where}: {field} {pattern!r} disagrees with the archive, whose {data_type.value} layout "
                f"{expected} {{interval}}"
            )
    url_pattern = spec.get("url_pattern")
    if isinstance(url_pattern, str) and market.value not in url_pattern and "{market}" not in url_pattern.lower():
        raise ConfigurationError(f"{where}: url_pattern {url_pattern!r} names neither {market.value!r} nor {{market}}")
