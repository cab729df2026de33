"""The bytes of a file: the CSV inside its zip, the zip around it, and the ``.CHECKSUM`` sidecar.

Also when Binance would have published the file: the zip member's time stamp and the fake server's Last-Modified.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import zipfile

from binance_archive.core import ArchiveFile, Market, Period, format_checksum
from binance_archive.core.periods import next_month
from binance_archive.testing.content.columns import columns, has_header
from binance_archive.testing.content.rows import csv_rows

__all__ = ["make_csv", "make_sidecar", "make_zip", "published_at"]


def published_at(file: ArchiveFile) -> dt.datetime:
    """When Binance would have published the file (UTC): its Last-Modified on the fake server.

    Daily files appear the next day (spot ~02:50, futures ~08:30); monthly ones early in the next month.
    """
    if file.period is Period.MONTHLY:
        day = next_month(file.date) + dt.timedelta(days=1)
        at = dt.time(8, 30)
    else:
        day = file.date + dt.timedelta(days=1)
        at = dt.time(2, 50) if file.market is Market.SPOT else dt.time(8, 30)
    return dt.datetime.combine(day, at, tzinfo=dt.UTC)


def make_csv(file: ArchiveFile, *, max_rows: int | None = None, seed: int = 0) -> bytes:
    """The CSV inside the file's zip: LF line ends, a final newline, a header where the real file has one."""
    out = io.StringIO()
    if has_header(file):
        out.write(",".join(columns(file)) + "\n")
    for row in csv_rows(file, max_rows=max_rows, seed=seed):
        out.write(",".join(row))
        out.write("\n")
    return out.getvalue().encode("utf-8")


def make_zip(file: ArchiveFile, csv_bytes: bytes) -> bytes:
    """A zip like Binance's: one deflated member ``{stem}.csv``, written on Unix with mode 0644.

    The member's time stamp is fixed by the file (shortly before publication), so the bytes are reproducible.
    """
    stem = file.filename[: -len(".zip")]
    stamp = published_at(file) - dt.timedelta(hours=2)
    info = zipfile.ZipInfo(f"{stem}.csv", date_time=stamp.timetuple()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3  # Unix, as in the real files
    info.external_attr = 0o100644 << 16
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(info, csv_bytes)
    return buffer.getvalue()


def make_sidecar(file: ArchiveFile, zip_bytes: bytes) -> bytes:
    """The ``.CHECKSUM`` content: ``<sha256>  <zip name>``, with a final newline except for spot files."""
    digest = hashlib.sha256(zip_bytes).hexdigest()
    return format_checksum(digest, file.filename, newline=file.market is not Market.SPOT).encode("utf-8")
