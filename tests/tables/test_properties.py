"""Property: any CSV of a data type, as the archive writes it (header row or not, its duplicates, its disorder),
reads as the rows it holds, less the header and, where the type drops them, the exact duplicates."""

from __future__ import annotations

import hashlib
import random
import tempfile
from pathlib import Path

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from binance_archive import ArchiveFile
from binance_archive.core.schemas import schema_for
from binance_archive.tables.arrow import arrow_schema
from binance_archive.tables.reader import FileFacts, OutOfOrder, read_batches
from binance_archive.testing import csv_rows, key_path, write_file

from .expected import expected_rows
from .scenario import every_kind

KINDS = every_kind()


def _read(path: Path, file: ArchiveFile) -> list[dict[str, object]]:
    schema = schema_for(file.market, file.data_type)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    try:
        batches = list(read_batches(str(path), file, schema, digest, FileFacts()))
    except OutOfOrder:
        batches = list(read_batches(str(path), file, schema, digest, FileFacts(), whole=True))
    rows: list[dict[str, object]] = pa.Table.from_batches(batches, schema=arrow_schema(schema)).to_pylist()
    return rows


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    file=st.sampled_from(KINDS),
    seed=st.integers(0, 10_000),
    count=st.integers(0, 120),
    header=st.booleans(),
    shuffle=st.randoms(use_true_random=False),
)
def test_a_file_reads_as_the_rows_it_holds(
    file: ArchiveFile, seed: int, count: int, header: bool, shuffle: random.Random
) -> None:
    schema = schema_for(file.market, file.data_type)
    lines = [",".join(row) for row in csv_rows(file, max_rows=count, seed=seed)]
    if schema.dedupe and lines:  # more exact duplicates, anywhere
        lines += shuffle.sample(lines, k=min(len(lines), 5))
    if schema.dedupe or schema.sort:  # and rows out of order
        shuffle.shuffle(lines)
    text = "\n".join(([",".join(schema.header_names)] if header else []) + lines) + ("\n" if lines or header else "")
    with tempfile.TemporaryDirectory() as folder:
        write_file(folder, file, member=text.encode())
        got = _read(key_path(folder, file.key), file)
    assert got == expected_rows(text, schema)
    kept = len(set(lines)) if schema.dedupe else len(lines)
    assert len(got) == kept
