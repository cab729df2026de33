"""The tables' schemas as data: for every market and data type, its columns (names in snake_case after Binance's own
CSV headers, and logical types), the header row its files may start with, and how its rows are put in order.

No I/O and no Arrow here: :mod:`binance_archive.tables` maps these logical types to Arrow's, and docs/tables.md is
generated from :func:`schemas_markdown`.

Every time is a ``timestamp[us, tz=UTC]`` whatever its source (milliseconds or microseconds since the epoch, or
text), ids and counts are int64, prices and quantities float64 (never float32), flags bool. Spot files get the
names of their futures twins (a spot aggTrades file's fourth column is ``quantity``, as in a futures one).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator

import attrs

from binance_archive.core.datatypes import DataType
from binance_archive.core.markets import Market
from binance_archive.errors import ConfigurationError

__all__ = ["Column", "ColumnType", "HeaderRow", "TableSchema", "schema_for", "schemas", "schemas_markdown"]


class ColumnType(enum.Enum):
    """A column's logical type: what its text means, and what the table holds."""

    TIME = "time"
    """An integer count of milliseconds or microseconds since the epoch (told apart by size): a timestamp."""
    TIME_TEXT = "time text"
    """A time written ``YYYY-MM-DD HH:MM:SS`` (UTC): a timestamp."""
    DATE_TEXT = "date text"
    """A date written ``YYYY-MM-DD``, joined with an hour column into one timestamp."""
    INT = "int64"
    FLOAT = "float64"
    BOOL = "bool"
    """``true``/``false`` or ``True``/``False``: parsed, never taken for truthy strings."""
    TEXT = "string"

    @property
    def is_time(self) -> bool:
        return self in (ColumnType.TIME, ColumnType.TIME_TEXT, ColumnType.DATE_TEXT)


class HeaderRow(enum.Enum):
    """Whether a data type's files start with a header row. It is detected in each file whatever this says: this
    documents what the archive does."""

    NEVER = "never"
    ALWAYS = "always"
    SOME = "some files"
    """Futures klines, trades and aggTrades: older files have none, newer ones do (the switch came between
    2022-05 and 2022-08-11, not on one date for every symbol)."""


@attrs.frozen
class Column:
    """One column of a source CSV file and of its table."""

    name: str
    """The table's column name (snake_case)."""
    type: ColumnType
    header: str = ""
    """The name the file's header row gives it, where it differs from :attr:`name`."""

    @property
    def header_name(self) -> str:
        return self.header or self.name


@attrs.frozen
class TableSchema:
    """What the files of one market and data type hold, and how their table is built.

    Attributes:
        market: the market.
        data_type: the data type.
        columns: the source CSV's columns, in order.
        header_row: whether its files start with a header row.
        time_column: the column that dates a row: the table is partitioned by its month, every row of a file must
            fall in the file's day or month (one day of slack either side, or the interval's length), and rows are
            sorted by it where ``sort`` is set.
        hour_column: with a ``DATE_TEXT`` time column, the column holding the hour (EOHSummary's ``hour``): the
            two become one timestamp.
        dedupe: exact duplicate rows are dropped (the archive's files of this type carry them).
        sort: rows are put in order of ``time_column`` (the archive's files of this type come out of order).
    """

    market: Market
    data_type: DataType
    columns: tuple[Column, ...]
    header_row: HeaderRow
    time_column: str
    hour_column: str | None = None
    dedupe: bool = False
    sort: bool = False

    def __attrs_post_init__(self) -> None:
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise ConfigurationError(f"{self.market.value} {self.data_type.value}: a column name repeats")
        if self.time_column not in names or not self.column(self.time_column).type.is_time:
            raise ConfigurationError(f"{self.market.value} {self.data_type.value}: no time column")

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    @property
    def names(self) -> tuple[str, ...]:
        """The source's column names, as the table calls them."""
        return tuple(c.name for c in self.columns)

    @property
    def header_names(self) -> tuple[str, ...]:
        """The header row the archive writes, where it writes one."""
        return tuple(c.header_name for c in self.columns)

    @property
    def table_columns(self) -> tuple[tuple[str, ColumnType], ...]:
        """The table's columns and their types: the source's, with a date and an hour column made one ``time``
        (first), so every table has a time column."""
        if self.hour_column is None:
            return tuple((c.name, c.type) for c in self.columns)
        rest = tuple((c.name, c.type) for c in self.columns if c.name not in (self.time_column, self.hour_column))
        return (("time", ColumnType.TIME), *rest)

    @property
    def table_time_column(self) -> str:
        """The table's column that dates a row."""
        return "time" if self.hour_column is not None else self.time_column


_TYPES = {
    "time": ColumnType.TIME, "time-text": ColumnType.TIME_TEXT, "date-text": ColumnType.DATE_TEXT,
    "int": ColumnType.INT, "float": ColumnType.FLOAT, "bool": ColumnType.BOOL, "text": ColumnType.TEXT,
}  # fmt: skip


def _columns(spec: str) -> tuple[Column, ...]:
    """Columns from ``"name type, name type, ..."`` (types: the keys of ``_TYPES``)."""
    return tuple(Column(name, _TYPES[kind]) for name, kind in (item.split() for item in spec.split(",")))


_KLINES = _columns(
    "open_time time, open float, high float, low float, close float, volume float, close_time time, "
    "quote_volume float, count int, taker_buy_volume float, taker_buy_quote_volume float, ignore int"
)
_FUTURES_TRADES = _columns("id int, price float, qty float, quote_qty float, time time, is_buyer_maker bool")
_CM_TRADES = _columns("id int, price float, qty float, base_qty float, time time, is_buyer_maker bool")
_SPOT_TRADES = (*_FUTURES_TRADES, *_columns("is_best_match bool"))
_FUTURES_AGG_TRADES = _columns(
    "agg_trade_id int, price float, quantity float, first_trade_id int, last_trade_id int, transact_time time, "
    "is_buyer_maker bool"
)
_SPOT_AGG_TRADES = (*_FUTURES_AGG_TRADES, *_columns("is_best_match bool"))
_BOOK_DEPTH = _columns("timestamp time-text, percentage float, depth float, notional float")
_METRICS = _columns(
    "create_time time-text, symbol text, sum_open_interest float, sum_open_interest_value float, "
    "count_toptrader_long_short_ratio float, sum_toptrader_long_short_ratio float, count_long_short_ratio float, "
    "sum_taker_long_short_vol_ratio float"
)
_FUNDING_RATE = _columns("calc_time time, funding_interval_hours int, last_funding_rate float")
_BOOK_TICKER = _columns(
    "update_id int, best_bid_price float, best_bid_qty float, best_ask_price float, best_ask_qty float, "
    "transaction_time time, event_time time"
)
_LIQUIDATION_SNAPSHOT = _columns(
    "time time, side text, order_type text, time_in_force text, original_quantity float, price float, "
    "average_price float, order_status text, last_fill_quantity float, accumulated_fill_quantity float"
)
_BVOL_INDEX = _columns("calc_time time, symbol text, base_asset text, quote_asset text, index_value float")
_EOH_SUMMARY = _columns(
    "date date-text, hour int, symbol text, underlying text, type text, strike float, open float, high float, "
    "low float, close float, volume_contracts float, volume_usdt float, best_bid_price float, best_ask_price float, "
    "best_bid_qty float, best_ask_qty float, best_buy_iv float, best_sell_iv float, mark_price float, mark_iv float, "
    "delta float, gamma float, vega float, theta float, openinterest_contracts float, openinterest_usdt float"
)
_KLINE_TYPES = (DataType.KLINES, DataType.INDEX_PRICE_KLINES, DataType.MARK_PRICE_KLINES, DataType.PREMIUM_INDEX_KLINES)


def _build() -> dict[tuple[Market, DataType], TableSchema]:
    found: dict[tuple[Market, DataType], TableSchema] = {}

    def add(market: Market, data_type: DataType, columns: tuple[Column, ...], header: HeaderRow, time: str,
            **rules: object) -> None:  # fmt: skip
        found[market, data_type] = TableSchema(market, data_type, columns, header, time, **rules)  # type: ignore[arg-type]

    spot = Market.SPOT
    add(spot, DataType.KLINES, _KLINES, HeaderRow.NEVER, "open_time")
    add(spot, DataType.TRADES, _SPOT_TRADES, HeaderRow.NEVER, "time")
    add(spot, DataType.AGG_TRADES, _SPOT_AGG_TRADES, HeaderRow.NEVER, "transact_time")
    for market in (Market.FUTURES_UM, Market.FUTURES_CM):
        for kline_type in _KLINE_TYPES:
            add(market, kline_type, _KLINES, HeaderRow.SOME, "open_time")
        trades = _CM_TRADES if market is Market.FUTURES_CM else _FUTURES_TRADES
        add(market, DataType.TRADES, trades, HeaderRow.SOME, "time")
        add(market, DataType.AGG_TRADES, _FUTURES_AGG_TRADES, HeaderRow.SOME, "transact_time")
        add(market, DataType.BOOK_DEPTH, _BOOK_DEPTH, HeaderRow.ALWAYS, "timestamp")
        add(market, DataType.METRICS, _METRICS, HeaderRow.ALWAYS, "create_time", dedupe=True, sort=True)
        add(market, DataType.FUNDING_RATE, _FUNDING_RATE, HeaderRow.ALWAYS, "calc_time")
        add(market, DataType.BOOK_TICKER, _BOOK_TICKER, HeaderRow.ALWAYS, "transaction_time", sort=True)
        add(market, DataType.LIQUIDATION_SNAPSHOT, _LIQUIDATION_SNAPSHOT, HeaderRow.ALWAYS, "time", dedupe=True)
    add(Market.OPTION, DataType.BVOL_INDEX, _BVOL_INDEX, HeaderRow.ALWAYS, "calc_time")
    add(Market.OPTION, DataType.EOH_SUMMARY, _EOH_SUMMARY, HeaderRow.ALWAYS, "date", hour_column="hour")
    return found


_SCHEMAS = _build()


def schema_for(market: Market | str, data_type: DataType | str) -> TableSchema:
    """The schema of ``data_type``'s files in ``market``.

    Raises:
        ConfigurationError: for an unknown market or data type, or a pair the archive does not have, naming the
            data types the market has.
    """
    m, t = Market.parse(market), DataType.parse(data_type)
    schema = _SCHEMAS.get((m, t))
    if schema is None:
        valid = ", ".join(s.data_type.value for s in _SCHEMAS.values() if s.market is m)
        raise ConfigurationError(f"{m.value} has no {t.value} files; its data types: {valid}")
    return schema


def schemas() -> Iterator[TableSchema]:
    """Every schema, by market then data type as the catalog orders them."""
    return iter(_SCHEMAS.values())


def schemas_markdown(which: Iterable[TableSchema] | None = None) -> str:
    """Schemas (by default every one) as Markdown (docs/tables.md is generated from this)."""
    lines: list[str] = []
    for schema in schemas() if which is None else which:
        rules = [f"header row: {schema.header_row.value}", f"dated by `{schema.table_time_column}`"]
        if schema.hour_column:
            rules.append(f"`{schema.time_column}` and `{schema.hour_column}` joined into `time`")
        if schema.dedupe:
            rules.append("exact duplicate rows dropped")
        if schema.sort:
            rules.append(f"rows sorted by `{schema.table_time_column}`")
        lines += [f"### {schema.market.value} {schema.data_type.value}", "", "; ".join(rules) + ".", ""]
        lines += ["| column | type | source column |", "|---|---|---|"]
        for name, kind in schema.table_columns:
            source = _source_of(schema, name)
            arrow = "timestamp[us, tz=UTC]" if kind.is_time else kind.value
            lines.append(f"| `{name}` | {arrow} | {source} |")
        lines.append("")
    return "\n".join(lines)


def _source_of(schema: TableSchema, name: str) -> str:
    if schema.hour_column is not None and name == "time":
        return f"`{schema.time_column}` + `{schema.hour_column}`"
    column = schema.column(name)
    text = {
        ColumnType.TIME: "ms or µs since the epoch",
        ColumnType.TIME_TEXT: "`YYYY-MM-DD HH:MM:SS`",
    }.get(column.type, "")
    header = f"`{column.header_name}`"
    return f"{header} ({text})" if text else header
