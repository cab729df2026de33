"""Exact duplicate rows dropped (metrics and liquidation snapshots carry them), the first of each kept in order:
checked against a plain Python reference on tables built to be hard for it."""

from __future__ import annotations

import datetime as dt
import random

import pyarrow as pa
import pytest

from binance_archive.tables.reader import _first_of_each


def _first_of_each_in_python(table: pa.Table) -> pa.Table:
    seen: set[tuple[object, ...]] = set()
    keep = []
    for index, row in enumerate(table.to_pylist()):
        key = tuple(row.values())
        if key not in seen:
            seen.add(key)
            keep.append(index)
    return table.take(pa.array(keep, pa.int64()))


def _table(rows: int, seed: int) -> pa.Table:
    """Ten columns of every type, most values distinct (so a key made by multiplying the columns' counts would
    overflow 64 bits many times over), nulls and empty strings side by side, text holding separators; then
    duplicates of earlier rows, and near duplicates that differ in one column only, spread through."""
    rng = random.Random(seed)
    start = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
    texts = ["SELL", "BUY", "a|b", "a", "b|", "", None, "x\x1fy", "é", "0"]
    base = [
        [
            start + dt.timedelta(microseconds=rng.randrange(86_400_000_000)),
            rng.choice(texts),
            rng.choice(texts),
            rng.random() * 1e5,
            rng.choice([rng.random(), None, 0.0]),
            rng.randrange(-(2**62), 2**62),
            rng.choice([True, False, None]),
            rng.choice(texts),
            rng.random(),
            rng.randrange(1000),
        ]
        for _ in range(rows)
    ]
    out = []
    for row in base:
        out.append(row)
        roll = rng.random()
        if roll < 0.3:
            out.append(list(rng.choice(out)))  # an exact duplicate of a row already seen
        elif roll < 0.4:
            near = list(rng.choice(out))
            column = rng.randrange(len(near))
            near[column] = None if near[column] is not None else base[0][column]  # one value null, or not
            out.append(near)
    schema = pa.schema(
        [
            ("time", pa.timestamp("us", tz="UTC")),
            ("side", pa.string()),
            ("order_type", pa.string()),
            ("price", pa.float64()),
            ("quantity", pa.float64()),
            ("id", pa.int64()),
            ("maker", pa.bool_()),
            ("status", pa.string()),
            ("ratio", pa.float64()),
            ("count", pa.int64()),
        ]
    )
    columns = list(zip(*out, strict=True))
    # In three chunks, as a table of several batches is.
    third = len(out) // 3
    return pa.Table.from_batches(
        [
            pa.RecordBatch.from_arrays(
                [pa.array(c[a:b], f.type) for c, f in zip(columns, schema, strict=True)], schema=schema
            )
            for a, b in ((0, third), (third, 2 * third), (2 * third, len(out)))
        ]
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_exact_duplicates_are_dropped_keeping_the_first_of_each_in_order(seed: int) -> None:
    table = _table(6_000, seed)
    expected = _first_of_each_in_python(table)
    assert 0 < expected.num_rows < table.num_rows, "the table has duplicates to drop"
    assert _first_of_each(table).equals(expected.combine_chunks())


def test_a_table_without_rows_or_duplicates_is_kept_as_it_is() -> None:
    table = _table(50, 4)
    unique = _first_of_each_in_python(table)
    assert _first_of_each(unique).equals(unique.combine_chunks())
    empty = table.slice(0, 0)
    assert _first_of_each(empty).num_rows == 0 and _first_of_each(empty).schema == table.schema
