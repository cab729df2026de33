"""Re-runs convert only what changed; a month comes from its monthly file or its daily files, never both."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from binance_archive import ArchiveFile, Selection, plan
from binance_archive.core import Interval, Market, Period
from binance_archive.core.schemas import schema_for
from binance_archive.tables.layout import month_folder, table_key
from binance_archive.testing import replace_file, write_file

from .expected import expected_rows
from .scenario import build, convert, csv_text

TODAY = dt.date(2024, 3, 20)
DAILY = list(plan(
    Selection(markets="spot", data_types="klines", symbols="BTCUSDT", intervals="1h", start="2024-02-01",
              end="2024-02-05", periods="daily"),
    today=TODAY,
))  # fmt: skip
MONTHLY = ArchiveFile(Market.SPOT, DAILY[0].data_type, "BTCUSDT", Period.MONTHLY, dt.date(2024, 2, 1), Interval.H1)


def _tables_in(tables: Path, file: ArchiveFile) -> list[str]:
    return sorted(p.name for p in (tables / month_folder(file)).glob("*.parquet"))


def test_a_re_run_converts_nothing_and_a_re_upload_converts_only_that_file(tmp_path: Path) -> None:
    mirror, tables = build(tmp_path / "mirror", list(DAILY)), tmp_path / "tables"
    assert convert(mirror, tables).converted == len(DAILY)
    stamps = {f.key: os.stat(tables / table_key(f)).st_mtime_ns for f in DAILY}
    again = convert(mirror, tables)
    assert (again.converted, again.skipped, again.failed) == (0, len(DAILY), 0)
    assert {f.key: os.stat(tables / table_key(f)).st_mtime_ns for f in DAILY} == stamps, "nothing rewritten"

    changed = DAILY[2]
    replace_file(mirror, changed, seed=7, max_rows=24)  # Binance's re-upload, as download --refresh stores it
    third = convert(mirror, tables)
    assert (third.converted, third.skipped) == (1, len(DAILY) - 1)
    table = pq.read_table(tables / table_key(changed))
    assert table.to_pylist() == expected_rows(csv_text(mirror, changed), schema_for(changed.market, changed.data_type))
    assert {k: v for k, v in stamps.items() if k != changed.key} == {
        f.key: os.stat(tables / table_key(f)).st_mtime_ns for f in DAILY if f != changed
    }
    assert convert(mirror, tables, force=True).converted == len(DAILY)


def test_a_new_daily_file_adds_its_table_and_the_monthly_file_replaces_the_month(tmp_path: Path) -> None:
    mirror, tables = build(tmp_path / "mirror", list(DAILY[:3])), tmp_path / "tables"
    convert(mirror, tables)
    first = {n: os.stat(tables / month_folder(DAILY[0]) / n).st_ino for n in _tables_in(tables, DAILY[0])}
    write_file(mirror, DAILY[3], max_rows=24)
    report = convert(mirror, tables)
    assert (report.converted, report.skipped) == (1, 3)
    names = _tables_in(tables, DAILY[0])
    assert len(names) == 4 and all(os.stat(tables / month_folder(DAILY[0]) / n).st_ino == i for n, i in first.items())

    write_file(mirror, MONTHLY, max_rows=200)
    report = convert(mirror, tables)
    assert (report.converted, report.replaced) == (1, 4)
    assert _tables_in(tables, MONTHLY) == ["BTCUSDT-1h-2024-02.parquet"], "a finished month is one file"
    manifest = json.loads((tables / month_folder(MONTHLY) / "_manifest.json").read_text())
    assert list(manifest["files"]) == ["BTCUSDT-1h-2024-02.parquet"]
    rows = pq.read_table(tables / table_key(MONTHLY)).num_rows
    assert rows == 200, "the month's rows once: the monthly file's, none of the daily ones"


def test_daily_files_never_join_a_month_whose_table_came_from_its_monthly_file(tmp_path: Path) -> None:
    mirror, tables = build(tmp_path / "mirror", [MONTHLY]), tmp_path / "tables"
    assert convert(mirror, tables).converted == 1
    (mirror / MONTHLY.key).unlink()  # the monthly zip gone from the mirror (pruned), its table kept
    for file in DAILY[:2]:
        write_file(mirror, file, max_rows=24)
    report = convert(mirror, tables)
    assert (report.converted, report.skipped) == (0, 2)
    assert _tables_in(tables, MONTHLY) == ["BTCUSDT-1h-2024-02.parquet"]


def test_a_table_an_interrupted_run_published_without_its_manifest_entry_is_removed(tmp_path: Path) -> None:
    mirror, tables = build(tmp_path / "mirror", list(DAILY[:2])), tmp_path / "tables"
    convert(mirror, tables)
    stray = tables / month_folder(DAILY[0]) / "BTCUSDT-1h-2024-02-09.parquet"
    stray.write_bytes((tables / table_key(DAILY[0])).read_bytes())
    report = convert(mirror, tables)
    assert report.replaced == 1 and not stray.exists()


def test_a_selection_narrows_series_and_months(tmp_path: Path) -> None:
    other = [f for f in plan(Selection(markets="spot", data_types="klines", symbols="ETHUSDT", intervals="1h",
                                       start="2024-01-30", end="2024-02-02", periods="daily"), today=TODAY)]  # fmt: skip
    mirror, tables = build(tmp_path / "mirror", [*DAILY, *other]), tmp_path / "tables"
    only = Selection(markets="spot", data_types="klines", symbols="ETHUSDT", intervals="1h", start="2024-02")
    report = convert(mirror, tables, only)
    assert report.converted == 2 and report.ok, "ETHUSDT's February days only"
    assert not (tables / month_folder(DAILY[0])).exists()
    assert (
        convert(mirror, tables, Selection(markets="spot", data_types="klines", intervals="1h")).converted
        == len(DAILY) + 2
    )


def test_nothing_to_convert_is_not_a_failure(tmp_path: Path) -> None:
    (tmp_path / "mirror").mkdir()
    report = convert(tmp_path / "mirror", tmp_path / "tables")
    assert report.ok and report.converted == report.skipped == 0


def test_a_mirror_that_does_not_exist_or_a_data_type_that_does_not_exist_is_refused_before_any_work(
    tmp_path: Path,
) -> None:
    from binance_archive import ConfigurationError

    with pytest.raises(ConfigurationError, match="does not exist"):
        convert(tmp_path / "nowhere", tmp_path / "tables")
    (tmp_path / "mirror").mkdir()
    with pytest.raises(ConfigurationError, match="valid choices"):
        convert(tmp_path / "mirror", tmp_path / "tables", Selection(markets="spot", data_types="candles"))
    assert not (tmp_path / "tables").exists()


def test_kline_types_whose_files_share_a_name_convert_side_by_side(tmp_path: Path) -> None:
    # The four kline types name their files alike (BTCUSDT-5m-2024-02-01.zip: the type is only in the folder), and
    # months of different types are converted at once: their tables in progress must not share a name. Before,
    # one type's cleanup removed another's staged table (seen as "No such file or directory" under load).
    kinds = ["klines", "indexPriceKlines", "markPriceKlines", "premiumIndexKlines"]
    files = list(plan(
        Selection(markets="um", data_types=kinds, symbols="BTCUSDT", intervals="5m", start="2023-01-01",
                  end="2023-08-31", periods="monthly"),
        today=TODAY,
    ))  # fmt: skip
    mirror, tables = build(tmp_path / "mirror", files, max_rows=2000), tmp_path / "tables"
    report = convert(mirror, tables, concurrency=len(files))
    assert report.ok and report.converted == len(files), report.problems
    for file in files:
        assert pq.read_metadata(tables / table_key(file)).num_rows > 0
