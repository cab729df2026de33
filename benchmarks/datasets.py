"""The generated archive trees the benchmarks download: written once, cached, and checked by a manifest.

Every dataset lives in one tree whose first level is the bucket (``TREE/BUCKET/data/...``), so one server
serves them all; their keys never overlap. Zips and sidecars are written by
:func:`binance_archive.testing.write_file` (real-format CSV in a real zip, a correct ``.CHECKSUM``), except the
large files, which hold pseudo-random (incompressible) bytes in a real zip, with a correct sidecar.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import multiprocessing
import os
import random
import zipfile
from pathlib import Path
from typing import Any

from binance_archive.core import ArchiveFile, Selection, plan
from binance_archive.testing import key_path, write_file
from binance_archive.testing.content import make_sidecar, published_at

BUCKET = "data.binance.vision"
TODAY = dt.date(2026, 1, 1)
FORMAT = 1  # bump to regenerate every cached tree


class Dataset:
    """A named list of selections, and what generating their files takes."""

    def __init__(
        self, name: str, selections: list[Selection], *, max_rows: int | None = None, large_bytes: int | None = None
    ) -> None:
        self.name = name
        self.selections = selections
        self.max_rows = max_rows
        self.large_bytes = large_bytes

    def files(self) -> list[ArchiveFile]:
        return [f for s in self.selections for f in plan(s, today=TODAY)]

    def spec(self) -> list[dict[str, Any]]:
        """The selections as JSON, for the worker processes."""
        return [
            {
                "markets": [m.value for m in s.markets],
                "data_types": [t.value for t in s.data_types],
                "symbols": list(s.symbols),
                "intervals": [i.value for i in s.intervals],
                "start": s.start.isoformat() if s.start else None,
                "end": s.end.isoformat() if s.end else None,
                "periods": s.periods if isinstance(s.periods, str) else [p.value for p in s.periods],
            }
            for s in self.selections
        ]

    def identity(self) -> dict[str, Any]:
        return {"format": FORMAT, "spec": self.spec(), "max_rows": self.max_rows, "large_bytes": self.large_bytes}


def selections_from_spec(spec: list[dict[str, Any]]) -> list[Selection]:
    return [Selection(**item) for item in spec]


def _days(start: dt.date, count: int) -> tuple[str, str]:
    return start.isoformat(), (start + dt.timedelta(days=count - 1)).isoformat()


SMALL_SYMBOLS = ["BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT"]


def small(count: int) -> Dataset:
    """(a) daily 1m klines of four symbols: ``count`` zips of ~60-80 KB (1,440 candles each) and their sidecars."""
    per_symbol = count // len(SMALL_SYMBOLS)
    start, end = _days(dt.date(2023, 1, 1), per_symbol)
    return Dataset(
        f"small-{count}",
        [
            Selection(
                markets="spot",
                data_types="klines",
                symbols=SMALL_SYMBOLS,
                intervals="1m",
                start=start,
                end=end,
                periods="daily",
            )
        ],
    )


def large(count: int, size: int) -> Dataset:
    """(b) ``count`` daily spot trades files of ``size`` bytes of pseudo-random content each."""
    start, end = _days(dt.date(2024, 1, 1), count)
    return Dataset(
        f"large-{count}x{size >> 20}MB",
        [Selection(markets="spot", data_types="trades", symbols="BTCUSDT", start=start, end=end, periods="daily")],
        large_bytes=size,
    )


def many(count: int) -> Dataset:
    """The scale test: ``count`` daily 1h klines (24 candles, ~1.6 KB, like the real ones) of 50 symbols."""
    symbols = [f"B{i:03d}USDT" for i in range(50)]
    per_symbol = count // len(symbols)
    start, end = _days(dt.date(2019, 1, 1), per_symbol)
    return Dataset(
        f"many-{count}",
        [
            Selection(
                markets="spot",
                data_types="klines",
                symbols=symbols,
                intervals="1h",
                start=start,
                end=end,
                periods="daily",
            )
        ],
    )


def _write_small(args: tuple[str, str, int | None]) -> int:
    root, key, max_rows = args
    file = ArchiveFile.from_key(key)
    if not key_path(root, file.checksum_key).exists():  # the sidecar is written last: it marks a whole file
        write_file(root, file, max_rows=max_rows)
    return key_path(root, file.key).stat().st_size


def _write_large(root: str, file: ArchiveFile, size: int) -> int:
    """A real zip holding one stored member ``{stem}.csv`` of ``size`` pseudo-random bytes, and its sidecar."""
    path = key_path(root, file.key)
    if key_path(root, file.checksum_key).exists():
        return path.stat().st_size
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(file.key)
    stem = file.filename[: -len(".zip")]
    info = zipfile.ZipInfo(f"{stem}.csv", date_time=(2024, 1, 2, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o100644 << 16
    tmp = path.with_name(f".{path.name}.tmp")
    with zipfile.ZipFile(tmp, "w") as archive, archive.open(info, "w", force_zip64=True) as member:
        left = size
        while left > 0:
            n = min(left, 4 << 20)
            member.write(rng.randbytes(n))
            left -= n
    data = tmp.read_bytes()
    stamp = published_at(file).timestamp()
    sidecar = key_path(root, file.checksum_key)
    sidecar_tmp = sidecar.with_name(f".{sidecar.name}.tmp")
    sidecar_tmp.write_bytes(make_sidecar(file, data))
    for p in (tmp, sidecar_tmp):
        os.utime(p, (stamp, stamp))
    os.replace(tmp, path)
    os.replace(sidecar_tmp, sidecar)
    return len(data)


def ensure(dataset: Dataset, tree: Path, log: Any) -> dict[str, Any]:
    """Write the dataset's files under ``tree/BUCKET`` unless a matching manifest says they are there."""
    root = tree / BUCKET
    manifest = tree / "manifests" / f"{dataset.name}.json"
    if manifest.exists():
        data = json.loads(manifest.read_text())
        if data.get("identity") == dataset.identity():
            log(f"data: {dataset.name}: {data['files']} files cached in {tree}")
            return dict(data)
    files = dataset.files()
    log(f"data: writing {dataset.name}: {len(files)} files (and sidecars) under {root} ...")
    if dataset.large_bytes is not None:
        sizes = [_write_large(str(root), f, dataset.large_bytes) for f in files]
    else:
        jobs = [(str(root), f.key, dataset.max_rows) for f in files]
        with multiprocessing.get_context("fork").Pool(max(1, os.cpu_count() or 1)) as pool:
            sizes = list(pool.imap(_write_small, jobs, chunksize=256))
    sidecar_bytes = sum(key_path(root, f.checksum_key).stat().st_size for f in files)
    data = {
        "identity": dataset.identity(),
        "files": len(files),
        "zip_bytes": sum(sizes),
        "sidecar_bytes": sidecar_bytes,
        "mean_zip_bytes": sum(sizes) / max(1, len(files)),
    }
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps(data, indent=1))
    return data


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
