"""The Parquet writer: a file of one batch written where it was parsed, a file of several by a thread of its own,
the same file either way; a failure of the writer raised, never waited for."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from binance_archive.tables.writer import write_parquet

SCHEMA = pa.schema(
    [("time", pa.timestamp("us", tz="UTC")), ("price", pa.float64()), ("side", pa.string())],
    metadata={"binance_archive.source": "data/spot/x.zip"},
)


def _table(rows: int) -> pa.Table:
    return pa.table(
        {
            "time": pa.array(range(rows), pa.int64()).cast(SCHEMA.field("time").type),
            "price": pa.array([i / 7 for i in range(rows)], pa.float64()),
            "side": pa.array(["BUY" if i % 3 else "SELL" for i in range(rows)]),
        },
        schema=SCHEMA,
    )


def _within(seconds: float, work: Any) -> Any:
    """``work()`` in a thread; its result or exception, or a failure if it has not ended within ``seconds``."""
    result: list[Any] = []

    def run() -> None:
        try:
            result.append(work())
        except BaseException as exc:
            result.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"still writing after {seconds} s: the writer and the parser wait for each other")
    return result[0]


@pytest.mark.parametrize("batches", [1, 4])
def test_one_batch_or_several_make_the_same_file(tmp_path: Path, batches: int) -> None:
    table = _table(1000)
    path = tmp_path / "t.parquet"
    rows = write_parquet(table.to_batches(max_chunksize=-(-1000 // batches)), str(path), SCHEMA)
    assert rows == 1000
    read = pq.read_table(path)
    assert read.equals(table) and read.schema.metadata == SCHEMA.metadata
    assert pq.ParquetFile(path).metadata.num_row_groups == 1


@pytest.mark.parametrize("batches", [1, 3])
def test_a_failure_of_the_last_write_is_raised_not_waited_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batches: int
) -> None:
    """A disk that fills up as the last row group is written (or as the file is closed): the error reaches the
    caller. With several batches the writer's thread had taken the end of the batches before it failed; waiting
    for more of them hung both threads."""

    def full(self: Any, *args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pq.ParquetWriter, "write_table", full)
    table = _table(300)
    outcome = _within(
        30, lambda: write_parquet(table.to_batches(max_chunksize=100)[:batches], str(tmp_path / "t"), SCHEMA)
    )
    assert isinstance(outcome, OSError) and outcome.errno == 28, outcome
