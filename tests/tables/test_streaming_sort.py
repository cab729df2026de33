"""Book tickers out of order are sorted as they stream, a batch at a time, where their disorder is local (as in the
real files: milliseconds apart); a file whose disorder spans more than a batch is read again whole. Both give the
rows of a whole, stable sort."""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import tempfile
from pathlib import Path

import pyarrow as pa
import pytest

from binance_archive import ArchiveFile
from binance_archive.core import DataType, Market, Period
from binance_archive.core.schemas import schema_for
from binance_archive.tables.arrow import arrow_schema
from binance_archive.tables.reader import BLOCK_SIZE, FileFacts, OutOfOrder, read_batches
from binance_archive.testing import key_path, write_file

FILE = ArchiveFile(Market.FUTURES_UM, DataType.BOOK_TICKER, "BTCUSDT", Period.DAILY, dt.date(2024, 3, 1))
SCHEMA = schema_for(FILE.market, FILE.data_type)
START_MS = int(dt.datetime(2024, 3, 1, tzinfo=dt.UTC).timestamp() * 1000)


def _lines(count: int) -> list[str]:
    # update_id, best_bid_price, best_bid_qty, best_ask_price, best_ask_qty, transaction_time, event_time; many rows
    # share their time (as the real files' do), so that the sort's stability shows.
    return [
        f"{400000 + i},{60000 + i % 97}.1,{i % 13}.5,{60001 + i % 97}.2,{i % 11}.25,{START_MS + i // 3},{START_MS + i // 3 + 1}"
        for i in range(count)
    ]


def _csv(lines: list[str]) -> str:
    return "\n".join([",".join(SCHEMA.header_names), *lines]) + "\n"


def _read(text: str, *, whole: bool) -> pa.Table:
    with tempfile.TemporaryDirectory() as folder:
        write_file(folder, FILE, member=text.encode())
        path = key_path(folder, FILE.key)
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        batches = list(read_batches(str(path), FILE, SCHEMA, digest, FileFacts(), whole=whole))
    return pa.Table.from_batches(batches, schema=arrow_schema(SCHEMA))


def _enough_for_batches(lines: list[str]) -> None:
    assert sum(len(line) + 1 for line in lines) > 3 * BLOCK_SIZE, "the CSV must stream as several batches"


def test_local_disorder_is_sorted_as_it_streams() -> None:
    lines = _lines(220_000)
    _enough_for_batches(lines)
    rng = random.Random(7)
    for i in rng.sample(range(len(lines) - 40), 5_000):  # a row swapped with one up to 40 rows later
        j = i + rng.randint(1, 40)
        lines[i], lines[j] = lines[j], lines[i]
    text = _csv(lines)
    streamed = _read(text, whole=False)  # no OutOfOrder: sorted batch by batch
    assert streamed.equals(_read(text, whole=True)), "the rows, and their order, of a whole stable sort"
    times = streamed.column("transaction_time").to_pylist()
    assert times == sorted(times) and streamed.num_rows == len(lines)


def test_disorder_wider_than_a_batch_is_read_again_whole() -> None:
    lines = _lines(220_000)
    lines.append(lines.pop(10))  # a row of the first batch, at the end of the file
    text = _csv(lines)
    with pytest.raises(OutOfOrder):
        _read(text, whole=False)
    whole = _read(text, whole=True)
    times = whole.column("transaction_time").to_pylist()
    assert times == sorted(times) and whole.num_rows == len(lines)
