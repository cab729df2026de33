"""Writing a fake archive to disk in the real layout: ``root/data/{market}/{period}/...zip`` and its sidecar."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from binance_archive.core import ArchiveFile, DataType, Interval, Period, Selection, plan
from binance_archive.testing.content import make_csv, make_sidecar, make_zip, published_at

__all__ = [
    "MaxRows",
    "build_archive",
    "build_demo",
    "demo_files",
    "demo_max_rows",
    "is_safe_key",
    "key_path",
    "replace_file",
    "write_file",
]

logger = logging.getLogger("binance_archive.testing")

MaxRows = int | None | Callable[[ArchiveFile], int | None]
"""A row cap for every file, none, or a function choosing one per file."""


def key_path(root: str | os.PathLike[str], key: str) -> Path:
    """The path of ``key`` under ``root``.

    Raises:
        ValueError: for a key that could leave ``root`` (empty, ``.`` or ``..`` segments, backslashes, NUL).
    """
    if not is_safe_key(key):
        raise ValueError(f"{key!r} is not a safe key")
    return Path(root, *key.split("/"))


def is_safe_key(key: str) -> bool:
    """Whether ``key`` stays inside the root: no empty, ``.`` or ``..`` segment, no backslash or NUL."""
    wrapped = f"/{key}/"
    return (
        bool(key)
        and "//" not in wrapped
        and "/./" not in wrapped
        and "/../" not in wrapped
        and not ("\\" in key or "\0" in key)
    )


def _cap(max_rows: MaxRows, file: ArchiveFile) -> int | None:
    return max_rows(file) if callable(max_rows) else max_rows


def _write_atomic(path: Path, content: bytes, mtime: float) -> None:
    # Written beside the target under a dot name (the server's index skips those) and renamed into place,
    # so a server running meanwhile never serves half a file.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(content)
    os.utime(tmp, (mtime, mtime))
    os.replace(tmp, path)


def write_file(
    root: str | os.PathLike[str],
    file: ArchiveFile,
    *,
    max_rows: int | None = None,
    seed: int = 0,
    mtime: float | None = None,
    member: bytes | None = None,
) -> str:
    """Write one zip and its ``.CHECKSUM`` under ``root``; return the zip's SHA-256.

    Both get the file's publication time as modification time (the server's Last-Modified) unless ``mtime``
    is given. ``member`` is the zipped CSV's content instead of generated rows (incompressible bytes make a
    large file of a chosen size, say).
    """
    csv = make_csv(file, max_rows=max_rows, seed=seed) if member is None else member
    zip_bytes = make_zip(file, csv)
    stamp = published_at(file).timestamp() if mtime is None else mtime
    _write_atomic(key_path(root, file.key), zip_bytes, stamp)
    _write_atomic(key_path(root, file.checksum_key), make_sidecar(file, zip_bytes), stamp)
    return hashlib.sha256(zip_bytes).hexdigest()


def build_archive(
    root: str | os.PathLike[str],
    files: Iterable[ArchiveFile],
    *,
    max_rows: MaxRows = None,
    seed: int = 0,
) -> int:
    """Write every file of ``files`` (zip and sidecar) under ``root``, one at a time; return how many.

    ``files`` may be a lazy plan: nothing is held in memory beyond the file being written. ``max_rows`` caps
    the rows of every file, or is a function of the file (see :func:`demo_max_rows`).
    """
    count = 0
    for file in files:
        write_file(root, file, max_rows=_cap(max_rows, file), seed=seed)
        count += 1
        if count % 1000 == 0:
            logger.info("wrote %d files under %s", count, root)
    logger.info("wrote %d files under %s", count, root)
    return count


def replace_file(root: str | os.PathLike[str], file: ArchiveFile, *, seed: int = 1, max_rows: int | None = None) -> str:
    """Rewrite one file with different content and a matching new sidecar, as Binance's re-uploads do.

    The new modification time is now (and always later than the old one), so Last-Modified and the ETag
    both change. If ``seed`` happens to give the bytes already on disk, the next seeds are tried. Returns
    the new zip's SHA-256. A server already running serves the new bytes at once; call its ``refresh()``
    for its listing to show them too (sizes and ETags are read fresh, but the key index is cached).
    """
    path = key_path(root, file.key)
    old = path.read_bytes() if path.exists() else None
    old_mtime = path.stat().st_mtime if old is not None else 0.0
    while True:
        zip_bytes = make_zip(file, make_csv(file, max_rows=max_rows, seed=seed))
        if zip_bytes != old:
            break
        seed += 1
    stamp = max(time.time(), old_mtime + 1)
    _write_atomic(path, zip_bytes, stamp)
    _write_atomic(key_path(root, file.checksum_key), make_sidecar(file, zip_bytes), stamp)
    logger.debug("replaced %s (seed %d)", file.key, seed)
    return hashlib.sha256(zip_bytes).hexdigest()


# --------------------------------------------------------------------------------------------- demo


def demo_selections(today: dt.date | None = None) -> list[Selection]:
    """A realistic small selection of the archive, as the demo downloads it.

    It spans from the 20th of the month two months before ``today`` to yesterday: in ``periods="auto"`` the
    first and last months come as daily files and the whole month between as monthly files. Markets and
    types: spot klines (1m BTCUSDT, 1h BTCUSDT and ETHUSDT) and aggTrades; USD-M klines 1h (BTCUSDT and the
    non-ASCII 币安人生USDT), fundingRate (monthly only) and metrics (daily only); COIN-M aggTrades
    BTCUSD_PERP; option BVOLIndex.
    """
    today = today or dt.datetime.now(dt.UTC).date()
    first = today.replace(day=1)
    for _ in range(2):
        first = (first - dt.timedelta(days=1)).replace(day=1)
    start = first + dt.timedelta(days=19)
    selections = [
        Selection(markets="spot", data_types="klines", symbols="BTCUSDT", intervals=("1m", "1h")),
        Selection(markets="spot", data_types="klines", symbols="ETHUSDT", intervals="1h"),
        Selection(markets="spot", data_types="aggTrades", symbols="BTCUSDT"),
        Selection(markets="futures/um", data_types="klines", symbols=("BTCUSDT", "币安人生USDT"), intervals="1h"),
        Selection(markets="futures/um", data_types=("fundingRate", "metrics"), symbols="BTCUSDT"),
        Selection(markets="futures/cm", data_types="aggTrades", symbols="BTCUSD_PERP"),
        Selection(markets="option", data_types="BVOLIndex", symbols="BTCBVOLUSDT"),
    ]
    return [selection.with_(start=start) for selection in selections]


def demo_files(today: dt.date | None = None) -> Iterator[ArchiveFile]:
    """The files of :func:`demo_selections`, planned for ``today``."""
    today = today or dt.datetime.now(dt.UTC).date()
    for selection in demo_selections(today):
        yield from plan(selection, today=today)


def demo_max_rows(file: ArchiveFile) -> int | None:
    """The demo's row caps: trades stay small, and no file holds more than a day of 1m candles.

    Daily 1m files are complete (1,440 rows); a monthly 1m file holds only its first day, which keeps the
    demo tree to a few MB.
    """
    if file.data_type in (DataType.TRADES, DataType.AGG_TRADES):
        return 300
    if file.interval is Interval.M1 and file.period is Period.MONTHLY:
        return 1440
    return None


def build_demo(root: str | os.PathLike[str], today: dt.date | None = None, *, seed: int = 0) -> int:
    """Write :func:`demo_files` under ``root`` with :func:`demo_max_rows`; return how many files."""
    return build_archive(root, demo_files(today), max_rows=demo_max_rows, seed=seed)
