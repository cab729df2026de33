"""The availability matrix: which market has which data types, periods and intervals, and since or until when.

The built-in catalog (:data:`DEFAULT_CATALOG`) matches the real archive. A user can dump it to JSON, edit it
and load their own; the ``availability_matrix`` JSON of older collection tools (with ``url_pattern`` and
``filename_pattern``) is read too.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

import attrs

from binance_archive.core.datatypes import DataType
from binance_archive.core.intervals import Interval
from binance_archive.core.markets import Market
from binance_archive.core.periods import Period
from binance_archive.errors import ConfigurationError

__all__ = ["DEFAULT_CATALOG", "Availability", "Catalog"]

CATALOG_FORMAT = "binance_archive.catalog/1"


def date_or_none(value: object) -> dt.date | None:
    """A catalog document's date (``YYYY-MM-DD`` or a date), or ``None``."""
    if value is None or isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise ConfigurationError(f"invalid date {value!r} in the catalog; write YYYY-MM-DD")


def flag(value: object, what: str) -> bool:
    """A catalog document's true or false (never a truthy string), ``what`` naming it in the error."""
    if not isinstance(value, bool):  # bool("false") is True: refuse rather than guess
        raise ConfigurationError(f"{what} must be true or false, not {value!r}")
    return value


def _frozen_intervals(value: Mapping[Period, Iterable[Interval]]) -> Mapping[Period, tuple[Interval, ...]]:
    return MappingProxyType({period: tuple(intervals) for period, intervals in value.items()})


@attrs.frozen
class Availability:
    """What the archive holds for one market and data type.

    Attributes:
        market: the market.
        data_type: the data type.
        intervals: for each period the type is published in, its intervals (empty for types without one).
        first_date: the first day with data, where known.
        last_date: the last day with data for a retired type (nothing later is planned).
        retired: the type is no longer published; it stays in the catalog for backfills.
        note: what a user should know (sparse intervals, frozen feeds, issue numbers).
    """

    market: Market
    data_type: DataType
    # A read-only copy of its own (entries never share or expose a mutable dict), left out of the hash.
    intervals: Mapping[Period, tuple[Interval, ...]] = attrs.field(converter=_frozen_intervals, hash=False)
    first_date: dt.date | None = None
    last_date: dt.date | None = None
    retired: bool = False
    note: str = ""

    def __attrs_post_init__(self) -> None:
        if not self.intervals:
            raise ConfigurationError(f"{self.market.value} {self.data_type.value}: no period given")
        for period, intervals in self.intervals.items():
            if bool(intervals) != self.data_type.has_interval:
                need = "needs intervals" if self.data_type.has_interval else "takes no intervals"
                raise ConfigurationError(f"{self.market.value} {self.data_type.value} {period.value}: {need}")

    def __reduce__(self) -> tuple[object, ...]:
        # Picklable (a run's settings travel to other processes): the read-only view goes as a plain dict.
        fields = (self.first_date, self.last_date, self.retired, self.note)
        return (Availability, (self.market, self.data_type, dict(self.intervals), *fields))

    @property
    def periods(self) -> tuple[Period, ...]:
        """The periods this type is published in, daily first."""
        return tuple(p for p in Period if p in self.intervals)

    def all_intervals(self) -> tuple[Interval, ...]:
        """Every interval of any period, in the order of :class:`Interval`."""
        found = {i for intervals in self.intervals.values() for i in intervals}
        return tuple(i for i in Interval if i in found)

    def has(self, period: Period, interval: Interval | None = None) -> bool:
        """Whether files of ``period`` (and ``interval``) exist."""
        if period not in self.intervals:
            return False
        return interval is None or interval in self.intervals[period]

    def to_dict(self) -> dict[str, Any]:
        return {
            "market": self.market.value,
            "data_type": self.data_type.value,
            "periods": {p.value: [i.value for i in self.intervals[p]] for p in self.periods},
            "first_date": self.first_date.isoformat() if self.first_date else None,
            "last_date": self.last_date.isoformat() if self.last_date else None,
            "retired": self.retired,
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Availability:
        unknown = set(data) - {"market", "data_type", "periods", "first_date", "last_date", "retired", "note"}
        if unknown:
            raise ConfigurationError(f"unknown catalog field(s) {sorted(unknown)}")
        try:
            periods = data["periods"]
            market, data_type = Market.parse(data["market"]), DataType.parse(data["data_type"])
        except KeyError as exc:
            raise ConfigurationError(f"catalog entry {dict(data)!r} lacks {exc.args[0]!r}") from None
        if not isinstance(periods, Mapping):
            raise ConfigurationError("catalog 'periods' must map daily/monthly to a list of intervals")
        return cls(
            market=market,
            data_type=data_type,
            intervals={Period.parse(p): tuple(Interval.parse(i) for i in ivs) for p, ivs in periods.items()},
            first_date=date_or_none(data.get("first_date")),
            last_date=date_or_none(data.get("last_date")),
            retired=flag(data.get("retired", False), f"{market.value} {data_type.value}: retired"),
            note=str(data.get("note", "")),
        )


def _entries(value: Iterable[Availability]) -> tuple[Availability, ...]:
    return tuple(value)


@attrs.frozen(repr=False)
class Catalog:
    """The availability matrix: one :class:`Availability` per market and data type."""

    entries: tuple[Availability, ...] = attrs.field(converter=_entries)
    _index: dict[tuple[Market, DataType], Availability] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        index: dict[tuple[Market, DataType], Availability] = {}
        for entry in self.entries:
            pair = (entry.market, entry.data_type)
            if pair in index:
                raise ConfigurationError(f"catalog lists {entry.market.value} {entry.data_type.value} twice")
            index[pair] = entry
        object.__setattr__(self, "_index", index)

    def __repr__(self) -> str:
        # Short on purpose: the catalog is the default of several signatures, and help() prints defaults whole.
        # The entries are in to_markdown() and to_dict().
        markets = ", ".join(m.value for m in self.markets())
        return f"<Catalog: {len(self.entries)} market and data type pairs over {markets}>"

    def __iter__(self) -> Iterator[Availability]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def markets(self) -> tuple[Market, ...]:
        return tuple(m for m in Market if any(e.market is m for e in self.entries))

    def data_types(self, market: Market) -> tuple[DataType, ...]:
        """The data types of ``market``, in catalog order."""
        return tuple(e.data_type for e in self.entries if e.market is market)

    def get(self, market: Market, data_type: DataType) -> Availability | None:
        return self._index.get((market, data_type))

    def lookup(self, market: object, data_type: object) -> Availability:
        """The entry for a market and data type (strings accepted).

        Raises:
            ConfigurationError: when the market has no such data type, naming those it has.
        """
        m, t = Market.parse(market), DataType.parse(data_type)
        entry = self._index.get((m, t))
        if entry is None:
            valid = ", ".join(d.value for d in self.data_types(m)) or "none"
            raise ConfigurationError(f"{m.value} has no {t.value} data; valid data types for {m.value}: {valid}")
        return entry

    # -- JSON ---------------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {"format": CATALOG_FORMAT, "entries": [e.to_dict() for e in self.entries]}

    def to_json(self, *, indent: int | None = 2) -> str:
        """The catalog as JSON, loadable with :meth:`from_json`."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> Catalog:
        """Load a catalog from JSON: this library's format or an older tool's ``availability_matrix``.

        Raises:
            ConfigurationError: for invalid JSON or an entry that does not fit, naming it.
        """
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigurationError(f"the catalog is not valid JSON: {exc}") from None
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: object) -> Catalog:
        catalog = cls._from_dict(data)
        if not catalog.entries:
            raise ConfigurationError("the catalog has no entries: it names no market and data type")
        return catalog

    @classmethod
    def _from_dict(cls, data: object) -> Catalog:
        if isinstance(data, Mapping) and "entries" in data:
            fmt = data.get("format", CATALOG_FORMAT)
            if fmt != CATALOG_FORMAT:
                raise ConfigurationError(f"unknown catalog format {fmt!r}; expected {CATALOG_FORMAT!r}")
            return cls(Availability.from_dict(e) for e in data["entries"])
        if isinstance(data, Mapping):
            from binance_archive.core.matrix_compat import entries_from_availability_matrix

            return cls(entries_from_availability_matrix(data))
        raise ConfigurationError("a catalog is a JSON object with 'entries' (or an 'availability_matrix')")

    def to_markdown(self) -> str:
        """The catalog as a Markdown table (docs/catalog.md is generated from this)."""
        rows = [
            "| market | data type | daily | monthly | first date | last date | notes |",
            "|---|---|---|---|---|---|---|",
        ]
        for e in self.entries:

            def cell(period: Period, entry: Availability = e) -> str:
                if period not in entry.intervals:
                    return "-"
                return " ".join(i.value for i in entry.intervals[period]) or "yes"

            # A note of a user's catalog may say "retired" itself: the marker is not repeated then.
            marked = e.retired and not e.note.lower().startswith("retired")
            notes = ("**retired** " if marked else "") + e.note
            rows.append(
                f"| {e.market.value} | {e.data_type.value} | {cell(Period.DAILY)} | {cell(Period.MONTHLY)} | "
                f"{e.first_date or ''} | {e.last_date or ''} | {notes.strip()} |"
            )
        return "\n".join(rows) + "\n"

    @classmethod
    def load(cls, path: str) -> Catalog:
        """Load a catalog from a JSON file.

        Raises:
            ConfigurationError: when the file cannot be read or is not a catalog.
        """
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except OSError as exc:
            raise ConfigurationError(f"cannot read the catalog {path!r}: {exc.strerror}") from None
        return cls.from_json(text)

    def replace(self, entries: Iterable[Availability]) -> Catalog:
        """A catalog with ``entries`` added or replacing those of the same market and data type."""
        new = {(e.market, e.data_type): e for e in entries}
        kept = [new.pop((e.market, e.data_type), e) for e in self.entries]
        return Catalog((*kept, *new.values()))


def _builtin() -> Catalog:
    from binance_archive.core.builtin_catalog import BUILTIN_ENTRIES

    return Catalog(BUILTIN_ENTRIES)


DEFAULT_CATALOG: Catalog = _builtin()
"""The availability matrix of the real archive (see docs/catalog.md for it as a table)."""
