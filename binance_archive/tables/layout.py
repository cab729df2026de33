"""Where a table's files go: a hive-partitioned tree that DuckDB, polars, pandas and ``pyarrow.dataset`` read with
nothing but hive partitioning turned on.

    {market}/{data_type}/[interval={I}/]symbol={S}/month={YYYY-MM}/{stem}.parquet

with the archive's market paths (``spot``, ``futures/um``, ``futures/cm``, ``option``) and ``stem`` the source zip's
(``BTCUSDT-1h-2024-01-05``, or ``BTCUSDT-1h-2024-01`` for a monthly file). A month folder holds either its monthly
file's table or its daily files' tables, never both, and a manifest (``_manifest.json``, which readers skip: its
name starts with ``_``) of where each came from.
"""

from __future__ import annotations

from binance_archive.core.files import ArchiveFile
from binance_archive.core.schemas import TableSchema

__all__ = ["MANIFEST", "SUFFIX", "dataset_folder", "month_folder", "table_key", "table_name"]

MANIFEST = "_manifest.json"
SUFFIX = ".parquet"


def dataset_folder(schema: TableSchema) -> str:
    """The folder of one market and data type's dataset: ``futures/um/aggTrades``."""
    return f"{schema.market.value}/{schema.data_type.value}"


def month_folder(file: ArchiveFile) -> str:
    """The partition folder of ``file``'s month."""
    interval = f"interval={file.interval.value}/" if file.interval is not None else ""
    month = f"{file.date.year:04d}-{file.date.month:02d}"
    return f"{file.market.value}/{file.data_type.value}/{interval}symbol={file.symbol}/month={month}"


def table_name(file: ArchiveFile) -> str:
    """The table file's name: the zip's, as Parquet."""
    return file.filename.removesuffix(".zip") + SUFFIX


def table_key(file: ArchiveFile) -> str:
    """Where ``file``'s table goes."""
    return f"{month_folder(file)}/{table_name(file)}"
