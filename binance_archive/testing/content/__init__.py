"""Real-format content for any file of the archive: its CSV rows, the zip around them, and the sidecar.

Everything here is a pure function of ``(file.key, seed)``: the same file always gets the same bytes, so a
test can rebuild a tree and compare digests. The formats follow the real files (see the project's ARCHIVE
notes and the real sample files): spot files never have a header and switch to microseconds on 2025-01-01;
futures kline, trade and aggTrade files have a header from 2022-08-11 on; the other futures and option types
always have one. Numbers are plausible (a random walk around a per-symbol price), not real.

- :mod:`.columns`: the column layouts of every market and data type, the header rule and the time unit;
- :mod:`.prices`: plausible price levels, traded notional and tick decimals per symbol;
- :mod:`.rows`: the row generators, one row format per data type;
- :mod:`.files`: the bytes of a file (CSV, zip, ``.CHECKSUM``) and when it was published.
"""

from binance_archive.testing.content.columns import HEADER_SINCE, MICROSECONDS_SINCE, columns, has_header, time_unit
from binance_archive.testing.content.files import make_csv, make_sidecar, make_zip, published_at
from binance_archive.testing.content.rows import csv_rows

__all__ = [
    "HEADER_SINCE",
    "MICROSECONDS_SINCE",
    "columns",
    "csv_rows",
    "has_header",
    "make_csv",
    "make_sidecar",
    "make_zip",
    "published_at",
    "time_unit",
]
