"""Record batches written to one Parquet file: zstd, row groups of 262,144 rows (as polars writes them: sized for
scans, and small enough that a file of any size converts in bounded memory), the source's key and digest in the
file's metadata.

Only text columns are dictionary-encoded: prices, quantities, ids and times are nearly all distinct, and building a
dictionary for them costs more than it saves (docs/performance.md). A file of several batches is written by a thread
of its own while the next batches are parsed, so that parsing and compressing overlap; a file of one batch (every
small file) is written where it was parsed: there is nothing to overlap, and a thread's start and hand-overs would
only add to the time (docs/performance.md).
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["ROW_GROUP_ROWS", "write_parquet"]

ROW_GROUP_ROWS = 262_144
_QUEUED = 2  # batches parsed ahead of the writer: memory stays a few blocks whatever the file's size


def write_parquet(batches: Iterable[pa.RecordBatch], path: str, schema: pa.Schema) -> int:
    """Write ``batches`` to the Parquet file ``path`` (a new local file); returns the rows written. An exception of
    ``batches`` (or of the writer) is raised here, the file left for the caller to remove."""
    batches = iter(batches)
    first = next(batches, None)
    second = next(batches, None) if first is not None else None
    if second is None:
        return _write_all([] if first is None else [first], path, schema)
    pending: queue.Queue[pa.RecordBatch | None] = queue.Queue(maxsize=_QUEUED)
    outcome: list[BaseException | int] = []
    writer = threading.Thread(target=_write, args=(pending, path, schema, outcome), name="binance-archive-parquet")
    writer.start()
    try:
        for batch in itertools.chain((first, second), batches):
            if outcome:  # the writer failed: stop parsing
                break
            pending.put(batch)
    finally:
        pending.put(None)
        writer.join()
    result = outcome[0]
    if isinstance(result, BaseException):
        raise result
    return result


def _write(pending: queue.Queue[pa.RecordBatch | None], path: str, schema: pa.Schema, outcome: list[object]) -> None:
    """The writer thread: the batches ``pending`` hands over until ``None``; the rows written, or the exception,
    into ``outcome``."""
    ended = False

    def received() -> Iterator[pa.RecordBatch]:
        nonlocal ended
        while (batch := pending.get()) is not None:
            yield batch
        ended = True

    try:
        outcome.append(_write_all(received(), path, schema))
    except BaseException as exc:  # handed to the caller's thread
        outcome.append(exc)
        # Let the producer finish its put()s; not once the end was taken (the last write or the close failed):
        # nothing more comes, and waiting would hang both threads.
        while not ended and pending.get() is not None:
            pass


def _write_all(batches: Iterable[pa.RecordBatch], path: str, schema: pa.Schema) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    text = [field.name for field in schema if pa.types.is_string(field.type)]
    rows = 0
    group: list[pa.RecordBatch] = []
    grouped = 0
    with pq.ParquetWriter(
        path, schema, compression="zstd", use_dictionary=text or False, write_statistics=True
    ) as writer:
        for batch in batches:
            group.append(batch)
            grouped += batch.num_rows
            if grouped >= ROW_GROUP_ROWS:
                writer.write_table(pa.Table.from_batches(group, schema=schema), row_group_size=ROW_GROUP_ROWS)
                rows += grouped
                group, grouped = [], 0
        if group or not rows:
            writer.write_table(pa.Table.from_batches(group, schema=schema), row_group_size=ROW_GROUP_ROWS)
            rows += grouped
    return rows
