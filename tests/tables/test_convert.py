"""Every market and data type converted from the fake archive and read back, by pyarrow, DuckDB and polars."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from binance_archive import read_table
from binance_archive.core.schemas import schema_for
from binance_archive.tables.arrow import arrow_schema
from binance_archive.tables.layout import table_key

from .expected import expected_rows
from .scenario import build, convert, csv_text, every_kind

FILES = every_kind()


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("every-kind")
    mirror, tables = build(root / "mirror", FILES), root / "tables"
    report = convert(mirror, tables)
    assert report.ok and report.converted == len(FILES), report.problems
    return mirror, tables


@pytest.mark.parametrize("file", FILES, ids=lambda f: f.key.removeprefix("data/"))
def test_every_file_becomes_its_rows_typed(converted: tuple[Path, Path], file: object) -> None:
    from binance_archive.core import ArchiveFile

    assert isinstance(file, ArchiveFile)
    mirror, tables = converted
    schema = schema_for(file.market, file.data_type)
    table = pq.read_table(tables / table_key(file))
    assert table.schema.equals(arrow_schema(schema)), table.schema
    expected = expected_rows(csv_text(mirror, file), schema)
    assert expected, "the test tests little"
    assert table.to_pylist() == expected
    metadata = pq.read_metadata(tables / table_key(file)).metadata
    assert metadata[b"binance_archive.source"].decode() == file.key


def test_headers_units_duplicates_and_disorder_were_all_met(converted: tuple[Path, Path]) -> None:
    """The scenario covers what the reader must handle: with and without header rows, ms and µs, duplicates, and
    rows out of order (else the parametrized test above would prove less than it says)."""
    mirror, _ = converted
    texts = {f.key: csv_text(mirror, f) for f in FILES}
    assert any(t[0].isdigit() for t in texts.values()) and any(not t[0].isdigit() for t in texts.values())
    spot = [t for k, t in texts.items() if k.startswith("data/spot/daily/trades/")]
    assert sorted(len(t.split(",", 5)[4]) for t in spot) == [13, 16], "a file in ms and one in µs"
    metrics = next(t for k, t in texts.items() if "/metrics/" in k).splitlines()[1:]
    assert len(set(metrics)) < len(metrics) and metrics != sorted(metrics)


def test_duckdb_reads_the_tables_as_written(converted: tuple[Path, Path]) -> None:
    duckdb = pytest.importorskip("duckdb", reason="DuckDB reads the tables independently ([test] installs it)")
    mirror, tables = converted
    klines = [f for f in FILES if f.key.startswith("data/spot/daily/klines/")]
    expected = [row for f in klines for row in expected_rows(csv_text(mirror, f), schema_for(f.market, f.data_type))]
    query = (
        f"select open_time, close, count, interval, symbol, month from read_parquet("
        f"'{tables}/spot/klines/**/*.parquet', hive_partitioning = true) order by open_time"
    )
    rows = duckdb.sql(query).fetchall()
    assert len(rows) == len(expected)
    assert [(r[0], r[1], r[2]) for r in rows] == [(e["open_time"], e["close"], e["count"]) for e in expected]
    assert {(r[3], r[4]) for r in rows} == {(klines[0].interval.value, "BTCUSDT")}  # type: ignore[union-attr]
    assert {r[5] for r in rows} == {"2024-12", "2025-01"}
    described = duckdb.sql(f"describe select * from read_parquet('{tables}/spot/klines/**/*.parquet')").fetchall()
    types = {row[0]: row[1] for row in described}
    assert types["open_time"] == "TIMESTAMP WITH TIME ZONE" and types["close"] == "DOUBLE"
    assert types["count"] == "BIGINT"


def test_polars_reads_the_tables_as_written(converted: tuple[Path, Path]) -> None:
    pl = pytest.importorskip("polars", reason="polars reads the tables independently ([test] installs it)")
    mirror, tables = converted
    files = [f for f in FILES if f.key.startswith("data/futures/um/daily/aggTrades/")]
    frame = pl.scan_parquet(f"{tables}/futures/um/aggTrades/**/*.parquet", hive_partitioning=True).collect()
    expected = [row for f in files for row in expected_rows(csv_text(mirror, f), schema_for(f.market, f.data_type))]
    assert frame.height == len(expected)
    assert frame.schema["transact_time"] == pl.Datetime("us", "UTC") and frame.schema["price"] == pl.Float64
    assert frame.schema["is_buyer_maker"] == pl.Boolean
    got = frame.sort("transact_time").select("agg_trade_id", "transact_time", "is_buyer_maker").rows()
    want = sorted((e["agg_trade_id"], e["transact_time"], e["is_buyer_maker"]) for e in expected)
    assert sorted(got) == want


def test_read_table_filters_symbols_intervals_and_dates(converted: tuple[Path, Path]) -> None:
    mirror, tables = converted
    kline = next(f for f in FILES if f.key.startswith("data/spot/daily/klines/"))
    table = read_table(tables, market="spot", data_type="klines", symbols="BTCUSDT", interval=kline.interval,
                       start=kline.date, end=kline.date)  # fmt: skip
    expected = expected_rows(csv_text(mirror, kline), schema_for(kline.market, kline.data_type))
    assert table.num_rows == len(expected) and table.column("open_time").to_pylist() == [
        e["open_time"] for e in expected
    ]
    assert set(table.column("month").to_pylist()) == {f"{kline.date:%Y-%m}"}
    assert read_table(tables, market="spot", data_type="klines", symbols="ETHUSDT").num_rows == 0
    metrics = read_table(tables, market="um", data_type="metrics", columns=["create_time", "symbol"])
    times = metrics.column("create_time").to_pylist()
    assert metrics.column_names == ["create_time", "symbol"] and times == sorted(times) and len(times) > 100


def test_the_manifest_names_each_table_s_source_and_digest(converted: tuple[Path, Path]) -> None:
    from binance_archive.core import parse_checksum
    from binance_archive.testing import key_path

    mirror, tables = converted
    file = FILES[0]
    folder = (tables / table_key(file)).parent
    manifest = json.loads((folder / "_manifest.json").read_text())
    entry = manifest["files"][table_key(file).rsplit("/", 1)[1]]
    assert entry["key"] == file.key
    assert entry["sha256"] == parse_checksum(key_path(mirror, file.checksum_key).read_bytes())
    assert entry["rows"] == len(expected_rows(csv_text(mirror, file), schema_for(file.market, file.data_type)))


NO_PANDAS = """
import asyncio, json, sys, traceback
from binance_archive import Archive

attempts = []

class Watch:
    def find_spec(self, name, path=None, target=None):
        if name == "pandas":
            attempts.append("".join(traceback.format_stack(limit=6)))
        return None  # watch, do not block: where pandas is installed, it would be imported

sys.meta_path.insert(0, Watch())
report = asyncio.run(Archive(sys.argv[1], entry_points=False).convert(to=sys.argv[2]))
print(json.dumps({"ok": report.ok, "converted": report.converted, "attempts": attempts}))
"""


def test_a_conversion_never_imports_pandas(converted: tuple[Path, Path], tmp_path: Path) -> None:
    """pyarrow imports pandas, where it is installed, the first time a Python number becomes an Arrow scalar or a
    ``group_by`` runs: ~0.2 s in the middle of the first file. Every kind of file (duplicates and disorder too)
    converts without once asking for it; the watch sees the attempt whether pandas is installed or not."""
    import subprocess
    import sys

    mirror, _ = converted
    done = subprocess.run(
        [sys.executable, "-c", NO_PANDAS, str(mirror), str(tmp_path / "tables")],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["ok"] and result["converted"] == len(FILES), result
    assert result["attempts"] == [], "\n".join(result["attempts"])
