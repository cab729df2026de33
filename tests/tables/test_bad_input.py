"""Files that cannot become tables: each named with its line, nothing of it published, the others converted."""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile
from pathlib import Path

import pytest

from binance_archive import ArchiveFile
from binance_archive.cli import main
from binance_archive.core import DataType, Interval, Market, Period
from binance_archive.tables.layout import table_key
from binance_archive.testing import key_path, make_csv, make_sidecar, make_zip, write_file

from .scenario import convert

DAY = dt.date(2024, 2, 3)
AGG = ArchiveFile(Market.FUTURES_UM, DataType.AGG_TRADES, "BTCUSDT", Period.DAILY, DAY)
KLINE = ArchiveFile(Market.SPOT, DataType.KLINES, "BTCUSDT", Period.DAILY, DAY, Interval.H1)
GOOD = ArchiveFile(Market.SPOT, DataType.KLINES, "ETHUSDT", Period.DAILY, DAY, Interval.H1)


def _lines(file: ArchiveFile, rows: int = 8) -> list[str]:
    return make_csv(file, max_rows=rows).decode().splitlines()


def _with(file: ArchiveFile, change: object) -> bytes:
    lines = _lines(file)
    assert callable(change)
    change(lines)
    return ("\n".join(lines) + "\n").encode()


def _short_row(lines: list[str]) -> None:
    lines[4] = lines[4].rsplit(",", 1)[0]  # line 5 (the header is line 1)


def _bad_price(lines: list[str]) -> None:
    cells = lines[2].split(",")
    cells[1] = "abc"
    lines[2] = ",".join(cells)


def _strange_header(lines: list[str]) -> None:
    lines[0] = "Aggregate tradeId,Price,Quantity,First tradeId,Last tradeId,Timestamp,Was the buyer the maker"


def _seconds_not_ms(lines: list[str]) -> None:
    cells = lines[5].split(",")
    cells[0] = str(int(cells[0]) // 1000)  # 1970: a unit mistake
    lines[5] = ",".join(cells)


CSV_CASES = [
    pytest.param(AGG, _short_row, 5, "11 columns|6 columns where 7", id="a row short of a column"),
    pytest.param(AGG, _bad_price, 3, "price is 'abc', not a float64", id="a price that is not a number"),
    pytest.param(AGG, _strange_header, 1, "a header row never seen", id="a header row never seen"),
    pytest.param(KLINE, _seconds_not_ms, 6, "outside the file's period", id="a time outside the file's day"),
]


@pytest.mark.parametrize(("file", "change", "line", "reason"), CSV_CASES)
def test_a_bad_csv_is_named_with_its_line_and_nothing_of_it_is_published(
    tmp_path: Path, file: ArchiveFile, change: object, line: int, reason: str
) -> None:
    mirror, tables = tmp_path / "mirror", tmp_path / "tables"
    write_file(mirror, file, member=_with(file, change))
    write_file(mirror, GOOD, max_rows=24)
    report = convert(mirror, tables)
    assert (report.converted, report.failed) == (1, 1), report
    [problem] = report.problems
    assert problem.key == file.key and problem.line == line, problem
    import re

    assert re.search(reason, problem.reason), problem.reason
    assert not (tables / table_key(file)).exists()
    assert (tables / table_key(GOOD)).exists()
    assert not [p for p in tables.rglob("*") if p.name.startswith(".binance-archive-")], "nothing temporary left"


@pytest.mark.parametrize("compression", [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED], ids=["deflated", "stored"])
def test_a_zip_whose_content_is_broken_under_a_matching_sidecar_is_refused(tmp_path: Path, compression: int) -> None:
    """Binance has published zips whose sidecar matched and whose content was broken: a stored member's CRC
    catches a flipped byte that decompression cannot."""
    mirror, tables = tmp_path / "mirror", tmp_path / "tables"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        archive.writestr(KLINE.filename.replace(".zip", ".csv"), make_csv(KLINE, max_rows=24))
    broken = bytearray(buffer.getvalue())
    header = 30 + len(KLINE.filename.replace(".zip", ".csv"))
    broken[header + 40] ^= 0x01  # a byte of the member's data: the zip's directory is intact
    key_path(mirror, KLINE.key).parent.mkdir(parents=True)
    key_path(mirror, KLINE.key).write_bytes(bytes(broken))
    key_path(mirror, KLINE.checksum_key).write_bytes(make_sidecar(KLINE, bytes(broken)))
    report = convert(mirror, tables)
    assert report.failed == 1 and report.converted == 0
    assert "a broken zip" in report.problems[0].reason, report.problems
    if compression == zipfile.ZIP_STORED:
        assert "CRC" in report.problems[0].reason
    assert not (tables / table_key(KLINE)).exists()


def test_stored_bytes_that_do_not_match_their_sidecar_are_not_converted(tmp_path: Path) -> None:
    mirror, tables = tmp_path / "mirror", tmp_path / "tables"
    write_file(mirror, KLINE, max_rows=24)
    other = make_zip(KLINE, make_csv(KLINE, max_rows=24, seed=3))
    key_path(mirror, KLINE.key).write_bytes(other)  # the zip replaced after its sidecar was stored
    report = convert(mirror, tables)
    assert report.failed == 1 and "does not match its sidecar" in report.problems[0].reason
    assert not (tables / table_key(KLINE)).exists()


def test_a_zip_of_two_files_is_refused(tmp_path: Path) -> None:
    mirror, tables = tmp_path / "mirror", tmp_path / "tables"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.csv", make_csv(KLINE, max_rows=2))
        archive.writestr("b.csv", make_csv(KLINE, max_rows=2))
    key_path(mirror, KLINE.key).parent.mkdir(parents=True)
    key_path(mirror, KLINE.key).write_bytes(buffer.getvalue())
    key_path(mirror, KLINE.checksum_key).write_bytes(make_sidecar(KLINE, buffer.getvalue()))
    report = convert(mirror, tables)
    assert report.failed == 1 and "holds a.csv, b.csv" in report.problems[0].reason


def test_the_command_names_every_failed_file_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mirror, tables = tmp_path / "mirror", tmp_path / "tables"
    write_file(mirror, AGG, member=_with(AGG, _short_row))
    write_file(mirror, GOOD, max_rows=24)
    out = io.StringIO()
    assert main(["convert", "--from", str(mirror), "--to", str(tables)], out=out) == 1
    text = out.getvalue()
    assert f"failed: {AGG.key}, line 5:" in text and "1 converted" in text
    out = io.StringIO()
    assert main(["convert", "--from", str(mirror), "--to", str(tables), "--json"], out=out) == 1
    report = json.loads(out.getvalue())
    assert report["failed"] == 1 and report["skipped"] == 1 and report["problems"][0]["line"] == 5
    assert main(["convert", "--from", str(mirror), "--to", str(tables), "--market", "spot"], out=io.StringIO()) == 2
    assert "--data-type is required" in capsys.readouterr().err
