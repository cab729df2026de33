"""Record batches written to one Parquet file: zstd, row groups of about a million rows (sized for scans: a
column chunk of a few megabytes), the source's key and digest in the file's metadata."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["ROW_GROUP_ROWS", "write_parquet"]

ROW_GROUP_ROWS = 1_000_000


def write_parquet(batches: Iterable[pa.RecordBatch], path: str, schema: pa.Schema) -> int:
    """Write ``batches`` to the Parquet file ``path`` (a new local file); returns the rows written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = 0
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    with pq.ParquetWriter(path, schema, compression="zstd", write_statistics=True) as writer:
        for batch in batches:
            pending.append(batch)
            pending_rows += batch.num_rows
            if pending_rows >= ROW_GROUP_ROWS:
                writer.write_table(pa.Table.from_batches(pending, schema=schema), row_group_size=ROW_GROUP_ROWS)
                rows += pending_rows
                pending, pending_rows = [], 0
        if pending or not rows:
            writer.write_table(pa.Table.from_batches(pending, schema=schema), row_group_size=ROW_GROUP_ROWS)
            rows += pending_rows
    return rows
