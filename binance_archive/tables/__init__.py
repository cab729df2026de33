"""Tables: the mirror's zips as typed, hive-partitioned Parquet that DuckDB, polars, pandas and ``pyarrow.dataset``
read directly (the "silver" zone, the mirror being the "bronze" one). Needs pyarrow:
``pip install 'binance-archive[tables]'``.

- :func:`read_table`: one market and data type back as a ``pyarrow.Table``, filtered by symbols, interval, dates;
- :func:`convert`: a mirror's stored files converted (most callers use :meth:`binance_archive.Archive.convert`, or
  ``binance-archive convert``);
- :class:`ConvertReport`: what a conversion did.

The rooms inside: :mod:`.sources` (what the mirror stores, a month at a time), :mod:`.reader` (one zip to typed
record batches), :mod:`.writer` (batches to Parquet), :mod:`.manifest` (what each table file came from),
:mod:`.layout` (where table files go), :mod:`.convert` (the run), :mod:`.query` (reading back), :mod:`.arrow` (the
core's schemas in Arrow's types). Importing this package imports no pyarrow; using it does.
"""

from binance_archive.tables.convert import convert
from binance_archive.tables.query import read_table
from binance_archive.tables.report import ConvertProblem, ConvertReport

__all__ = ["ConvertProblem", "ConvertReport", "convert", "read_table"]
