"""The tables' logical types (:mod:`binance_archive.core.schemas`) mapped to Arrow's, and pyarrow imported with a
message saying how to install it where it is missing."""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any

from binance_archive.core.schemas import ColumnType, TableSchema
from binance_archive.errors import ConfigurationError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["INSTALL_HINT", "arrow_schema", "csv_types", "import_pyarrow", "int_scalar"]

INSTALL_HINT = "pip install 'binance-archive[tables]' (or pip install pyarrow)"
TIMESTAMP_UNIT = "us"
TIMEZONE = "UTC"


def import_pyarrow() -> ModuleType:
    """pyarrow, with its CSV, compute and Parquet modules loaded.

    Raises:
        ConfigurationError: where pyarrow is not installed, saying how to install it.
    """
    try:
        import pyarrow
        import pyarrow.compute
        import pyarrow.csv
        import pyarrow.parquet
    except ImportError as exc:
        raise ConfigurationError(f"the tables need pyarrow: {INSTALL_HINT}") from exc
    module: ModuleType = pyarrow
    return module


def int_scalar(value: int, kind: pa.DataType | None = None) -> pa.Scalar:
    """An Arrow scalar of a 64-bit integer type (int64 by default, or a timestamp: ``value`` in its unit), made
    from its bytes.

    ``pa.scalar(value)``, and a compute function given a Python number, convert through pyarrow's pandas shim,
    which imports pandas wherever it is installed: once a process, in the middle of the first file, and slow
    (docs/performance.md, *Tables: converting the mirror to Parquet*). The conversion makes its scalars this way
    and never imports pandas.
    """
    import pyarrow as pa

    data = pa.py_buffer(value.to_bytes(8, "little", signed=True))
    return pa.Array.from_buffers(kind or pa.int64(), 1, [None, data])[0]


def _table_type(kind: ColumnType) -> pa.DataType:
    import pyarrow as pa

    if kind.is_time:
        return pa.timestamp(TIMESTAMP_UNIT, tz=TIMEZONE)
    return {
        ColumnType.INT: pa.int64(),
        ColumnType.FLOAT: pa.float64(),
        ColumnType.BOOL: pa.bool_(),
        ColumnType.TEXT: pa.string(),
    }[kind]


def arrow_schema(schema: TableSchema, metadata: dict[str, str] | None = None) -> pa.Schema:
    """The Arrow schema of ``schema``'s table (its partition columns, in the folder names, excluded)."""
    import pyarrow as pa

    return pa.schema([pa.field(name, _table_type(kind)) for name, kind in schema.table_columns], metadata=metadata)


def csv_types(schema: TableSchema) -> dict[str, Any]:
    """The Arrow type each source column is read as: integer times as int64 (their unit is told apart by size
    later), text times and dates as second-resolution timestamps, the rest as in the table."""
    import pyarrow as pa

    types: dict[str, Any] = {}
    for column in schema.columns:
        if column.type is ColumnType.TIME:
            types[column.name] = pa.int64()
        elif column.type in (ColumnType.TIME_TEXT, ColumnType.DATE_TEXT):
            types[column.name] = pa.timestamp("s")
        else:
            types[column.name] = _table_type(column.type)
    return types
