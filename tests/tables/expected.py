"""What a table must hold, worked out from a file's CSV text in plain Python: the tests' reference, independent of
the library's pyarrow code."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

from binance_archive.core.schemas import ColumnType, TableSchema

UTC = dt.UTC


def _time(text: str) -> dt.datetime:
    value = int(text)
    micros = value if value >= 10**14 else value * 1000
    return dt.datetime(1970, 1, 1, tzinfo=UTC) + dt.timedelta(microseconds=micros)


def _value(kind: ColumnType, text: str) -> Any:
    if text == "":
        return None
    if kind is ColumnType.TIME:
        return _time(text)
    if kind is ColumnType.TIME_TEXT:
        return dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    if kind is ColumnType.DATE_TEXT:
        return dt.datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    if kind is ColumnType.INT:
        return int(text)
    if kind is ColumnType.FLOAT:
        return float(text)
    if kind is ColumnType.BOOL:
        assert text in ("true", "false", "True", "False"), text
        return text in ("true", "True")
    return text


def expected_rows(csv_text: str, schema: TableSchema) -> list[dict[str, Any]]:
    """The table's rows for a file whose CSV is ``csv_text``: header row left out, values typed, a date and an hour
    joined, exact duplicates dropped and rows sorted where the schema says so."""
    lines = list(csv.reader(io.StringIO(csv_text)))
    if lines and [c.strip().lower() for c in lines[0]] == [n.lower() for n in schema.header_names]:
        lines = lines[1:]
    if schema.dedupe:
        seen: set[tuple[str, ...]] = set()
        unique = []
        for line in lines:
            if tuple(line) not in seen:
                seen.add(tuple(line))
                unique.append(line)
        lines = unique
    rows = []
    for line in lines:
        row = {c.name: _value(c.type, text) for c, text in zip(schema.columns, line, strict=True)}
        if schema.hour_column is not None:
            hour = row.pop(schema.hour_column)
            date = row.pop(schema.time_column)
            row = {"time": date + dt.timedelta(hours=hour), **row}
        rows.append(row)
    if schema.sort:
        time = schema.table_time_column
        rows.sort(key=lambda r: r[time])  # stable: equal times keep their order
    return rows
