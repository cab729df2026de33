"""Real archive files (../shared/vectors: spot 1h klines in µs, COIN-M aggTrades with a header, a USD-M monthly
fundingRate) converted, and read back by DuckDB and polars."""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

import pytest

from binance_archive import ArchiveFile
from binance_archive.core.schemas import schema_for

from .expected import expected_rows
from .scenario import convert

VECTORS = Path(__file__).parents[2].parent / "shared" / "vectors"
if not (VECTORS / "data").is_dir():
    pytest.skip(
        f"{VECTORS} not found: tests that read real archive files need ../shared/vectors", allow_module_level=True
    )
ZIPS = sorted(p.relative_to(VECTORS).as_posix() for p in VECTORS.glob("data/**/*.zip"))


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("vectors") / "tables"
    report = convert(VECTORS, out)
    assert report.ok and report.converted == len(ZIPS) >= 3, report.problems
    return out


def _csv(key: str) -> str:
    with zipfile.ZipFile(VECTORS / key) as archive:
        return archive.read(archive.namelist()[0]).decode()


@pytest.mark.parametrize("key", ZIPS)
def test_duckdb_reads_every_data_row_with_its_exact_time(tables: Path, key: str) -> None:
    duckdb = pytest.importorskip("duckdb", reason="DuckDB reads the tables independently ([test] installs it)")
    file = ArchiveFile.from_key(key)
    schema = schema_for(file.market, file.data_type)
    text = _csv(key)
    data_lines = [line for line in text.splitlines() if line and line[0].isdigit()]
    expected = expected_rows(text, schema)
    assert len(expected) == len(data_lines), "the header row (where there is one) is not a row"
    table = tables / file.market.value / file.data_type.value
    time = schema.table_time_column
    rows = duckdb.sql(
        f"select {time}, symbol, month from read_parquet('{table}/**/{file.filename[:-4]}.parquet', "
        f"hive_partitioning = true) order by {time}"
    ).fetchall()
    assert len(rows) == len(data_lines)
    raw = sorted(int(line.split(",")[schema.names.index(time)]) for line in data_lines)
    micros = [(r[0] - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1) for r in rows]
    unit = 1 if raw[0] > 10**14 else 1000
    assert micros == [v * unit for v in raw], "every time exact, in microseconds"
    assert {(r[1], r[2]) for r in rows} == {(file.symbol, f"{file.date:%Y-%m}")}


def test_polars_reads_the_documented_types(tables: Path) -> None:
    pl = pytest.importorskip("polars", reason="polars reads the tables independently ([test] installs it)")
    klines = pl.read_parquet(f"{tables}/spot/klines/**/*.parquet", hive_partitioning=True)
    assert klines.height == 48
    assert klines.schema["open_time"] == pl.Datetime("us", "UTC") and klines.schema["count"] == pl.Int64
    assert klines["open_time"].min() == dt.datetime(2026, 5, 8, tzinfo=dt.UTC)
    assert klines["close_time"].max() == dt.datetime(2026, 5, 9, 23, 59, 59, 999999, tzinfo=dt.UTC)
    agg = pl.read_parquet(f"{tables}/futures/cm/aggTrades/**/*.parquet", hive_partitioning=True)
    assert agg.schema["is_buyer_maker"] == pl.Boolean and agg.schema["price"] == pl.Float64
    assert (
        agg.height
        == len(_csv("data/futures/cm/daily/aggTrades/BTCUSD_PERP/BTCUSD_PERP-aggTrades-2026-05-08.zip").splitlines())
        - 1
    )
    assert 0 < agg["is_buyer_maker"].sum() < agg.height, "false is not truthy"
    funding = pl.read_parquet(f"{tables}/futures/um/fundingRate/**/*.parquet", hive_partitioning=True)
    assert funding.height == 90 and funding["funding_interval_hours"].unique().to_list() == [8]
