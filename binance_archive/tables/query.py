"""Reading the tables back: one market and data type as a ``pyarrow.Table``, its partitions filtered before any
file is opened (symbols, interval, months) and its rows by time."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from binance_archive.core.datatypes import DataType
from binance_archive.core.intervals import Interval
from binance_archive.core.markets import Market
from binance_archive.core.schemas import schema_for
from binance_archive.core.selection import parse_date
from binance_archive.core.symbols import normalize_symbol
from binance_archive.errors import ConfigurationError
from binance_archive.tables.arrow import TIMESTAMP_UNIT, TIMEZONE, import_pyarrow
from binance_archive.tables.layout import dataset_folder

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["read_table"]


def read_table(
    tables: str | os.PathLike[str],
    *,
    market: Market | str,
    data_type: DataType | str,
    symbols: str | Iterable[str] | None = None,
    start: str | dt.date | None = None,
    end: str | dt.date | None = None,
    interval: Interval | str | None = None,
    columns: Sequence[str] | None = None,
    filesystem: Any = None,
) -> pa.Table:
    """The rows of one market and data type from the tables under ``tables`` (a folder, or an ``s3://`` URL that
    pyarrow reads with the usual AWS settings, or a path on ``filesystem``), as one ``pyarrow.Table`` with the
    partition columns (``symbol``, ``month``, and ``interval`` for klines).

    Args:
        symbols: only these symbols (default: all).
        start: the first day (``YYYY-MM-DD`` or ``YYYY-MM``); ``end``: the last day, inclusive.
        interval: the kline interval (kline types only; default: all).
        columns: only these columns (default: all).

    Raises:
        ConfigurationError: for an unknown market, data type or interval, a bad date, or a missing folder.
    """
    pa = import_pyarrow()
    import pyarrow.dataset as ds

    schema = schema_for(market, data_type)
    kline = schema.data_type.has_interval
    if interval is not None and not kline:
        raise ConfigurationError(f"{schema.data_type.value} has no intervals")
    first = parse_date(start, what="start")
    last = parse_date(end, what="end", end_of_month=True)
    fields = [("interval", pa.string())] if kline else []
    fields += [("symbol", pa.string()), ("month", pa.string())]
    root = os.fspath(tables).rstrip("/") + "/" + dataset_folder(schema)
    try:
        dataset = ds.dataset(
            root,
            format="parquet",
            partitioning=ds.partitioning(pa.schema(fields), flavor="hive"),
            filesystem=filesystem,
        )
    except (FileNotFoundError, OSError) as exc:
        what = f"{schema.market.value} {schema.data_type.value}"
        raise ConfigurationError(f"no tables of {what} in {os.fspath(tables)}: {exc}") from None
    condition = None

    def both(extra: Any) -> Any:
        return extra if condition is None else condition & extra

    if symbols is not None:
        wanted = [normalize_symbol(s) for s in ([symbols] if isinstance(symbols, str) else symbols)]
        condition = both(ds.field("symbol").isin(wanted))
    if interval is not None:
        condition = both(ds.field("interval") == Interval.parse(interval).value)
    time = ds.field(schema.table_time_column)
    stamp = pa.timestamp(TIMESTAMP_UNIT, tz=TIMEZONE)
    if first is not None:
        condition = both(ds.field("month") >= f"{first:%Y-%m}")
        since = dt.datetime.combine(first, dt.time(), dt.UTC)
        condition = both(time >= pa.scalar(since, type=stamp))
    if last is not None:
        condition = both(ds.field("month") <= f"{last:%Y-%m}")
        until = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), dt.UTC)
        condition = both(time < pa.scalar(until, type=stamp))
    return dataset.to_table(columns=list(columns) if columns is not None else None, filter=condition)
