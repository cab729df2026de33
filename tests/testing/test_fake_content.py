"""The fake's file content against the real sample files, and its own rules."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import itertools
import zipfile
from pathlib import Path
from typing import Any

import pytest

from binance_archive.core import (
    DEFAULT_CATALOG,
    ArchiveFile,
    DataType,
    Interval,
    Market,
    Period,
    parse_checksum,
)
from binance_archive.testing import (
    columns,
    csv_rows,
    has_header,
    make_csv,
    make_sidecar,
    make_zip,
    time_unit,
)

VECTORS = Path(__file__).resolve().parents[2].parent / "shared" / "vectors"


def _vector_keys() -> list[Any]:
    if not VECTORS.is_dir():
        return [pytest.param(None, id="no-vectors")]
    return sorted(p.relative_to(VECTORS).as_posix() for p in VECTORS.glob("data/**/*.zip"))


def _only_member(zip_bytes: bytes) -> tuple[zipfile.ZipInfo, bytes]:
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as archive:
        infos = archive.infolist()
        assert len(infos) == 1
        return infos[0], archive.read(infos[0])


def _shape(file: ArchiveFile, csv_bytes: bytes) -> tuple[str | None, int, int]:
    """(header line or None, columns of a data row, digits of its first timestamp)."""
    lines = csv_bytes.decode("utf-8").split("\n")
    assert lines[-1] == "", "the CSV ends with a newline"
    header = lines[0] if not lines[0][:1].isdigit() else None
    row = lines[1 if header else 0].split(",")
    time_index = next(i for i, name in enumerate(columns(file)) if name.endswith("time"))
    return header, len(row), len(row[time_index])


@pytest.mark.parametrize("key", _vector_keys())
def test_matches_real_vector(key: str | None) -> None:
    if key is None:
        pytest.skip(f"the real sample files are not here ({VECTORS}); they live beside the project, not in it")
    file = ArchiveFile.from_key(key)
    real_zip = (VECTORS / key).read_bytes()
    real_sidecar = (VECTORS / (key + ".CHECKSUM")).read_bytes()
    assert parse_checksum(real_sidecar, filename=file.filename) == hashlib.sha256(real_zip).hexdigest()

    fake_zip = make_zip(file, make_csv(file, max_rows=50))
    fake_sidecar = make_sidecar(file, fake_zip)

    real_info, real_csv = _only_member(real_zip)
    fake_info, fake_csv = _only_member(fake_zip)
    assert fake_info.filename == real_info.filename == file.filename.removesuffix(".zip") + ".csv"
    assert fake_info.compress_type == real_info.compress_type
    assert fake_info.create_system == real_info.create_system
    assert fake_info.external_attr == real_info.external_attr
    assert _shape(file, fake_csv) == _shape(file, real_csv)  # header line, column count, timestamp unit
    assert fake_sidecar.endswith(b"\n") == real_sidecar.endswith(b"\n")
    assert fake_sidecar.count(b"  ") == real_sidecar.count(b"  ") == 1
    assert parse_checksum(fake_sidecar, filename=file.filename) == hashlib.sha256(fake_zip).hexdigest()


def _kline(
    market: Market, day: dt.date, interval: Interval = Interval.M1, period: Period = Period.DAILY
) -> ArchiveFile:
    symbol = "BTCUSD_PERP" if market is Market.FUTURES_CM else "BTCUSDT"
    return ArchiveFile(market, DataType.KLINES, symbol, period, day, interval)


def test_same_key_and_seed_give_same_bytes() -> None:
    file = _kline(Market.SPOT, dt.date(2025, 3, 1))
    first = make_zip(file, make_csv(file))
    assert first == make_zip(file, make_csv(file))
    assert first != make_zip(file, make_csv(file, seed=1))
    other_day = _kline(Market.SPOT, dt.date(2025, 3, 2))
    assert make_csv(other_day) != make_csv(file)


def test_daily_1m_klines_have_one_row_per_minute_capped_by_max_rows() -> None:
    file = _kline(Market.SPOT, dt.date(2024, 6, 1))
    rows = list(csv_rows(file))
    assert len(rows) == 1440
    opens = [int(r[0]) for r in rows]
    assert opens[0] == int(dt.datetime(2024, 6, 1, tzinfo=dt.UTC).timestamp() * 1000)
    assert all(b - a == 60_000 for a, b in itertools.pairwise(opens))
    assert all(int(r[6]) == int(r[0]) + 59_999 for r in rows)  # close_time
    assert all(float(r[3]) <= min(float(r[1]), float(r[4])) <= float(r[2]) for r in rows)  # low <= o,c <= high
    assert len(list(csv_rows(file, max_rows=10))) == 10
    assert rows[:10] == list(csv_rows(file, max_rows=10))


def test_monthly_klines_cover_the_month() -> None:
    month = dt.date(2024, 2, 1)
    assert len(list(csv_rows(_kline(Market.SPOT, month, Interval.H1, period=Period.MONTHLY)))) == 29 * 24
    (candle,) = csv_rows(_kline(Market.SPOT, month, Interval.MO1, period=Period.MONTHLY))
    assert int(candle[6]) + 1 == int(dt.datetime(2024, 3, 1, tzinfo=dt.UTC).timestamp() * 1000)
    weeks = list(csv_rows(_kline(Market.SPOT, month, Interval.W1, period=Period.MONTHLY)))
    assert [dt.datetime.fromtimestamp(int(w[0]) / 1000, dt.UTC).weekday() for w in weeks] == [0] * len(weeks)


@pytest.mark.parametrize(
    ("market", "day", "digits"),
    [
        (Market.SPOT, dt.date(2024, 12, 31), 13),
        (Market.SPOT, dt.date(2025, 1, 1), 16),
        (Market.FUTURES_UM, dt.date(2025, 1, 1), 13),
        (Market.FUTURES_CM, dt.date(2026, 1, 1), 13),
    ],
)
def test_spot_switches_to_microseconds_in_2025(market: Market, day: dt.date, digits: int) -> None:
    file = _kline(market, day)
    row = next(csv_rows(file))
    assert len(row[0]) == len(row[6]) == digits
    assert time_unit(file) == (1_000_000 if digits == 16 else 1_000)


@pytest.mark.parametrize(
    ("market", "data_type", "day", "header"),
    [
        (Market.SPOT, DataType.KLINES, dt.date(2026, 1, 1), False),
        (Market.SPOT, DataType.TRADES, dt.date(2026, 1, 1), False),
        (Market.FUTURES_UM, DataType.KLINES, dt.date(2022, 8, 10), False),
        (Market.FUTURES_UM, DataType.KLINES, dt.date(2022, 8, 11), True),
        (Market.FUTURES_CM, DataType.AGG_TRADES, dt.date(2021, 1, 1), False),
        (Market.FUTURES_CM, DataType.AGG_TRADES, dt.date(2023, 1, 1), True),
        (Market.FUTURES_UM, DataType.MARK_PRICE_KLINES, dt.date(2022, 1, 1), False),
        (Market.FUTURES_UM, DataType.FUNDING_RATE, dt.date(2020, 1, 1), True),
        (Market.FUTURES_UM, DataType.METRICS, dt.date(2021, 1, 1), True),
        (Market.FUTURES_UM, DataType.BOOK_DEPTH, dt.date(2023, 1, 1), True),
        (Market.FUTURES_UM, DataType.BOOK_TICKER, dt.date(2021, 1, 1), True),
        (Market.OPTION, DataType.BVOL_INDEX, dt.date(2023, 7, 1), True),
    ],
)
def test_header_rows_where_the_real_files_have_them(
    market: Market, data_type: DataType, day: dt.date, header: bool
) -> None:
    interval = Interval.H1 if data_type.has_interval else None
    file = ArchiveFile(market, data_type, "BTCUSDT", Period.DAILY, day, interval)
    first_line = make_csv(file, max_rows=3).split(b"\n")[0].decode()
    assert has_header(file) is header
    assert (first_line == ",".join(columns(file))) is header


def test_every_catalog_entry_gives_well_formed_rows() -> None:
    for entry in DEFAULT_CATALOG:
        period = entry.periods[-1]
        intervals = entry.intervals[period] or (None,)
        day = dt.date(2023, 3, 1)
        symbol = "BTCBVOLUSDT" if entry.data_type is DataType.BVOL_INDEX else "BTCUSDT"
        file = ArchiveFile(entry.market, entry.data_type, symbol, period, day, intervals[0])
        rows = list(csv_rows(file, max_rows=500))
        assert rows, file.key
        width = len(columns(file))
        assert all(len(r) == width for r in rows), file.key
        assert all("" not in r for r in rows), file.key


def test_event_files_are_ordered_within_their_day_and_max_rows_spreads_them() -> None:
    file = ArchiveFile(Market.FUTURES_UM, DataType.AGG_TRADES, "BTCUSDT", Period.DAILY, dt.date(2025, 5, 8))
    rows = list(csv_rows(file, max_rows=100))
    assert len(rows) == 100
    times = [int(r[5]) for r in rows]
    start = int(dt.datetime(2025, 5, 8, tzinfo=dt.UTC).timestamp() * 1000)
    assert times == sorted(times)
    assert start <= times[0]
    assert times[-1] < start + 86_400_000
    assert times[-1] > start + 80_000_000  # spread over the day, not the first 100 trades of it
    ids = [int(r[0]) for r in rows]
    assert ids == list(range(ids[0], ids[0] + 100))
    assert all(int(r[3]) <= int(r[4]) < int(n[3]) for r, n in itertools.pairwise(rows))


def test_spot_trades_write_python_booleans_and_futures_lowercase() -> None:
    spot = ArchiveFile(Market.SPOT, DataType.TRADES, "ETHUSDT", Period.DAILY, dt.date(2025, 5, 8))
    um = ArchiveFile(Market.FUTURES_UM, DataType.TRADES, "ETHUSDT", Period.DAILY, dt.date(2025, 5, 8))
    assert {r[-1] for r in csv_rows(spot, max_rows=50)} == {"True"}  # is_best_match
    assert {r[-1] for r in csv_rows(um, max_rows=50)} <= {"true", "false"}


def test_metrics_and_funding_rate_grids() -> None:
    metrics = ArchiveFile(Market.FUTURES_UM, DataType.METRICS, "BTCUSDT", Period.DAILY, dt.date(2024, 1, 1))
    rows = sorted(set(csv_rows(metrics)))  # the file's own rows come with the real files' quirks (see below)
    assert len(rows) == 288
    assert rows[1][0] == "2024-01-01 00:05:00"
    funding = ArchiveFile(Market.FUTURES_UM, DataType.FUNDING_RATE, "BTCUSDT", Period.MONTHLY, dt.date(2026, 4, 1))
    assert len(list(csv_rows(funding))) == 90


def test_zip_and_sidecar_format() -> None:
    spot = _kline(Market.SPOT, dt.date(2026, 5, 8), Interval.H1)
    zip_bytes = make_zip(spot, make_csv(spot))
    info, _ = _only_member(zip_bytes)
    assert info.filename == "BTCUSDT-1h-2026-05-08.csv"
    assert info.compress_type == zipfile.ZIP_DEFLATED
    digest = hashlib.sha256(zip_bytes).hexdigest()
    assert make_sidecar(spot, zip_bytes) == f"{digest}  BTCUSDT-1h-2026-05-08.zip".encode()
    um = _kline(Market.FUTURES_UM, dt.date(2026, 5, 8), Interval.H1)
    assert make_sidecar(um, b"x").endswith(b"  BTCUSDT-1h-2026-05-08.zip\n")
    option = ArchiveFile(Market.OPTION, DataType.BVOL_INDEX, "ETHBVOLUSDT", Period.DAILY, dt.date(2023, 7, 1))
    assert make_sidecar(option, b"x").endswith(b"\n")


def test_max_rows_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="max_rows"):
        csv_rows(_kline(Market.SPOT, dt.date(2024, 1, 1)), max_rows=-1)


@pytest.mark.parametrize(
    ("market", "data_type", "duplicated", "out_of_order"),
    [
        (Market.FUTURES_UM, DataType.METRICS, True, True),
        (Market.FUTURES_CM, DataType.LIQUIDATION_SNAPSHOT, True, False),
        (Market.FUTURES_UM, DataType.BOOK_TICKER, False, True),
        (Market.FUTURES_UM, DataType.AGG_TRADES, False, False),
    ],
)
def test_files_carry_the_real_files_duplicates_and_disorder(
    market: Market, data_type: DataType, duplicated: bool, out_of_order: bool
) -> None:
    """metrics come out of order and with exact duplicates, liquidation snapshots with duplicates, book tickers now
    and then out of order; the rest neither (the tables layer must put them right)."""
    from binance_archive.testing.content import columns

    file = ArchiveFile(market, data_type, "BTCUSDT", Period.DAILY, dt.date(2023, 3, 1))
    rows = list(csv_rows(file))
    time = columns(file).index({DataType.METRICS: "create_time", DataType.BOOK_TICKER: "transaction_time",
                                DataType.AGG_TRADES: "transact_time"}.get(data_type, "time"))  # fmt: skip
    times = [r[time] if data_type is DataType.METRICS else int(r[time]) for r in rows]
    assert (len(set(rows)) < len(rows)) is duplicated
    assert (times != sorted(times)) is out_of_order
