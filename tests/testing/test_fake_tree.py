"""Writing fake archive trees: the layout, the sidecars, re-uploads and the demo selection."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from binance_archive.core import ArchiveFile, DataType, Interval, Market, Period, parse_checksum
from binance_archive.testing import (
    build_archive,
    demo_files,
    demo_max_rows,
    key_path,
    published_at,
    replace_file,
    write_file,
)

FILE = ArchiveFile(Market.SPOT, DataType.KLINES, "BTCUSDT", Period.DAILY, dt.date(2026, 5, 8), Interval.H1)


def _verify(root: Path, file: ArchiveFile) -> str:
    zip_bytes = key_path(root, file.key).read_bytes()
    digest = parse_checksum(key_path(root, file.checksum_key).read_bytes(), filename=file.filename)
    assert digest == hashlib.sha256(zip_bytes).hexdigest()
    return digest


def test_build_archive_writes_zips_and_sidecars_lazily(tmp_path: Path) -> None:
    taken: list[ArchiveFile] = []

    def files() -> Iterator[ArchiveFile]:
        for day in (1, 2, 3):
            file = ArchiveFile(Market.FUTURES_UM, DataType.METRICS, "BTCUSDT", Period.DAILY, dt.date(2024, 1, day))
            taken.append(file)
            yield file

    assert build_archive(tmp_path, files(), max_rows=5) == 3
    assert len(taken) == 3
    for file in taken:
        _verify(tmp_path, file)
        assert key_path(tmp_path, file.key).stat().st_mtime == published_at(file).timestamp()
    on_disk = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert on_disk == sorted([f.key for f in taken] + [f.checksum_key for f in taken])


def test_build_archive_is_reproducible(tmp_path: Path) -> None:
    first = write_file(tmp_path / "a", FILE)
    assert first == write_file(tmp_path / "b", FILE)
    assert first != write_file(tmp_path / "c", FILE, seed=7)


def test_max_rows_may_be_chosen_per_file(tmp_path: Path) -> None:
    other = ArchiveFile(Market.SPOT, DataType.KLINES, "ETHUSDT", Period.DAILY, dt.date(2026, 5, 8), Interval.H1)
    build_archive(tmp_path, [FILE, other], max_rows=lambda f: 2 if f.symbol == "BTCUSDT" else None)
    small, full = (key_path(tmp_path, f.key).stat().st_size for f in (FILE, other))
    assert small < full


def test_replace_file_changes_content_sidecar_and_date(tmp_path: Path) -> None:
    old = write_file(tmp_path, FILE)
    old_mtime = key_path(tmp_path, FILE.key).stat().st_mtime
    new = replace_file(tmp_path, FILE, seed=0)  # the seed it was built with: the next one is taken
    assert new != old
    assert _verify(tmp_path, FILE) == new
    assert key_path(tmp_path, FILE.key).stat().st_mtime > old_mtime
    assert not [p for p in tmp_path.rglob(".*")]  # no temporary files left behind


def test_key_path_refuses_keys_that_leave_the_root(tmp_path: Path) -> None:
    for bad in ("data/../x.zip", "/etc/passwd", "data//x", "data/a\\b"):
        with pytest.raises(ValueError, match="not a safe key"):
            key_path(tmp_path, bad)


def test_demo_files_span_monthly_and_daily_files_of_several_markets() -> None:
    files = list(demo_files(dt.date(2026, 5, 20)))
    assert len(files) == len(set(files))
    assert {f.market for f in files} == set(Market)
    assert {f.period for f in files} == {Period.DAILY, Period.MONTHLY}
    kinds = {(f.market, f.data_type, f.period) for f in files}
    assert (Market.FUTURES_UM, DataType.FUNDING_RATE, Period.MONTHLY) in kinds
    assert (Market.FUTURES_UM, DataType.METRICS, Period.DAILY) in kinds
    assert (Market.SPOT, DataType.KLINES, Period.MONTHLY) in kinds
    assert max(f.date for f in files) == dt.date(2026, 5, 19)
    assert min(f.date for f in files) == dt.date(2026, 3, 1)  # the monthly fundingRate of March
    assert any(not f.symbol.isascii() for f in files)
    spot_1m = [f for f in files if f.interval is Interval.M1]
    assert [f.period for f in spot_1m].count(Period.MONTHLY) == 1  # April, whole
    assert ArchiveFile.from_key(files[0].key) == files[0]


def test_demo_caps_keep_the_tree_small(tmp_path: Path) -> None:
    sample = [f for f in demo_files(dt.date(2026, 5, 20)) if f.date in (dt.date(2026, 4, 1), dt.date(2026, 5, 1))]
    build_archive(tmp_path, sample, max_rows=demo_max_rows)
    sizes = {f.key: key_path(tmp_path, f.key).stat().st_size for f in sample}
    assert max(sizes.values()) < 200_000
    assert demo_max_rows(next(f for f in sample if f.data_type is DataType.AGG_TRADES)) == 300
