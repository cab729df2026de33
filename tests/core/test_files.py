"""ArchiveFile: keys, sidecar keys, URLs, from_key, and symbols that could escape a path."""

from __future__ import annotations

import datetime as dt
from urllib.parse import unquote, urlsplit

import pytest

from binance_archive.core import (
    CHECKSUM_SUFFIX,
    ArchiveFile,
    DataType,
    Interval,
    Market,
    Period,
    normalize_symbol,
    validate_symbol,
)
from binance_archive.core.symbols import closest_symbols
from binance_archive.errors import ConfigurationError, InvalidKeyError

JAN1 = dt.date(2024, 1, 1)


def spot_1m(symbol: str = "BTCUSDT", day: dt.date = JAN1) -> ArchiveFile:
    return ArchiveFile(Market.SPOT, DataType.KLINES, symbol, Period.DAILY, day, Interval.M1)


# -- keys --------------------------------------------------------------------------------------------------


def test_key_of_a_daily_kline() -> None:
    f = spot_1m()
    assert f.key == "data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-01-01.zip"
    assert str(f) == f.key
    assert f.filename == "BTCUSDT-1m-2024-01-01.zip"
    assert f.folder == "data/spot/daily/klines/BTCUSDT/1m"
    assert f.date_text == "2024-01-01"


@pytest.mark.parametrize(
    ("file", "key"),
    [
        (
            ArchiveFile(Market.FUTURES_UM, DataType.FUNDING_RATE, "BTCUSDT", Period.MONTHLY, dt.date(2026, 4, 1)),
            "data/futures/um/monthly/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2026-04.zip",
        ),
        (
            ArchiveFile(Market.OPTION, DataType.BVOL_INDEX, "BTCBVOLUSDT", Period.DAILY, dt.date(2023, 7, 1)),
            "data/option/daily/BVOLIndex/BTCBVOLUSDT/BTCBVOLUSDT-BVOLIndex-2023-07-01.zip",
        ),
        (
            ArchiveFile(Market.FUTURES_CM, DataType.AGG_TRADES, "BTCUSD_PERP", Period.DAILY, dt.date(2026, 5, 8)),
            "data/futures/cm/daily/aggTrades/BTCUSD_PERP/BTCUSD_PERP-aggTrades-2026-05-08.zip",
        ),
        (
            ArchiveFile(
                Market.FUTURES_CM,
                DataType.INDEX_PRICE_KLINES,
                "ETHUSD",
                Period.MONTHLY,
                dt.date(2024, 2, 1),
                Interval.H1,
            ),
            "data/futures/cm/monthly/indexPriceKlines/ETHUSD/1h/ETHUSD-1h-2024-02.zip",
        ),
        (
            ArchiveFile(Market.SPOT, DataType.KLINES, "BTCUSDT", Period.MONTHLY, dt.date(2024, 3, 1), Interval.MO1),
            "data/spot/monthly/klines/BTCUSDT/1mo/BTCUSDT-1mo-2024-03.zip",
        ),
    ],
)
def test_keys_follow_the_archive_layout(file: ArchiveFile, key: str) -> None:
    assert file.key == key
    assert file.checksum_key == key + ".CHECKSUM"
    assert ArchiveFile.from_key(key) == file


def test_checksum_key_and_suffix() -> None:
    f = spot_1m()
    assert CHECKSUM_SUFFIX == ".CHECKSUM"
    assert f.checksum_key == "data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-01-01.zip.CHECKSUM"
    assert ArchiveFile.from_key(f.checksum_key) == f


def test_the_month_interval_is_written_1mo_even_when_given_as_1M() -> None:
    f = ArchiveFile(Market.SPOT, DataType.KLINES, "BTCUSDT", Period.MONTHLY, JAN1, Interval.parse("1M"))
    assert "/1mo/" in f.key
    assert f.filename == "BTCUSDT-1mo-2024-01.zip"
    assert "1M" not in f.key


# -- URLs --------------------------------------------------------------------------------------------------


def test_url_of_an_ascii_key() -> None:
    f = spot_1m()
    assert f.url() == "https://data.binance.vision/data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-01-01.zip"
    assert f.url("https://mirror.example/") == "https://mirror.example/" + f.key
    assert f.checksum_url("http://x") == "http://x/" + f.key + ".CHECKSUM"


def test_url_percent_encodes_non_ascii_symbols() -> None:
    symbol = "币安人生USDT"
    f = ArchiveFile(Market.FUTURES_UM, DataType.AGG_TRADES, symbol, Period.DAILY, JAN1)
    encoded = "%E5%B8%81%E5%AE%89%E4%BA%BA%E7%94%9FUSDT"  # UTF-8 bytes of 币安人生, percent-encoded
    assert f.url() == (
        f"https://data.binance.vision/data/futures/um/daily/aggTrades/{encoded}/{encoded}-aggTrades-2024-01-01.zip"
    )
    assert f.url().isascii()
    assert f.checksum_url().endswith(f"{encoded}-aggTrades-2024-01-01.zip.CHECKSUM")
    assert unquote(urlsplit(f.url()).path) == "/" + f.key
    # the key itself stays in Unicode
    assert symbol in f.key


# -- construction errors -----------------------------------------------------------------------------------


def test_kline_types_need_an_interval_and_others_refuse_one() -> None:
    with pytest.raises(ConfigurationError, match="klines needs an interval"):
        ArchiveFile(Market.SPOT, DataType.KLINES, "BTCUSDT", Period.DAILY, JAN1)
    with pytest.raises(ConfigurationError, match="trades takes no interval"):
        ArchiveFile(Market.SPOT, DataType.TRADES, "BTCUSDT", Period.DAILY, JAN1, Interval.M1)


def test_a_monthly_file_is_dated_the_first_of_its_month() -> None:
    with pytest.raises(ConfigurationError, match="first of its month"):
        ArchiveFile(Market.SPOT, DataType.TRADES, "BTCUSDT", Period.MONTHLY, dt.date(2024, 1, 2))


# -- symbols -----------------------------------------------------------------------------------------------

ESCAPING_SYMBOLS = [
    ("BTC/USDT", "path separator"),
    ("/etc", "path separator"),
    ("BTC\\USDT", "path separator"),
    ("..", "escape"),
    ("A..B", "escape"),
    (".hidden", "escape"),
    ("A\x00B", "U+0000"),
    ("A\nB", "U+000A"),
    ("A\rB", "U+000D"),
    ("A\x7fB", "U+007F"),
    ("BTC\u200b", "U+200B"),  # zero-width space: invisible
    ("BTC USDT", "white space"),
    ("BTC\u3000USDT", "white space"),  # ideographic space
    ("BTC:USDT", "':'"),
    ("BTC%2FUSDT", "'%'"),
]


@pytest.mark.parametrize(("symbol", "why"), ESCAPING_SYMBOLS)
def test_symbols_that_could_escape_a_path_are_refused(symbol: str, why: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        ArchiveFile(Market.SPOT, DataType.TRADES, symbol, Period.DAILY, JAN1)
    assert why in str(info.value)
    with pytest.raises(ConfigurationError):
        validate_symbol(symbol)


def test_empty_and_too_long_symbols_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="empty"):
        validate_symbol("")
    with pytest.raises(ConfigurationError, match="longer than 64"):
        validate_symbol("A" * 65)
    assert validate_symbol("A" * 64) == "A" * 64


@pytest.mark.parametrize(
    "symbol", ["BTCUSDT", "BTCUSD_PERP", "BTCUSDT_240628", "币安人生USDT", "LUNA2SETTLED", "A-B.C"]
)
def test_real_symbols_are_accepted(symbol: str) -> None:
    assert validate_symbol(symbol) == symbol
    assert ArchiveFile(Market.SPOT, DataType.TRADES, symbol, Period.DAILY, JAN1).symbol == symbol


def test_non_string_symbols_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="must be a string"):
        validate_symbol(42)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="must be a string"):
        normalize_symbol(None)  # type: ignore[arg-type]


def test_normalize_symbol_strips_and_upper_cases() -> None:
    assert normalize_symbol("  btcusdt ") == "BTCUSDT"
    assert normalize_symbol("币安人生usdt") == "币安人生USDT"
    with pytest.raises(ConfigurationError):
        normalize_symbol("btc/usdt")


# -- from_key ----------------------------------------------------------------------------------------------


def test_from_key_parses_every_field() -> None:
    f = ArchiveFile.from_key("data/futures/um/daily/markPriceKlines/BTCUSDT_240628/4h/BTCUSDT_240628-4h-2024-06-01.zip")
    assert f.market is Market.FUTURES_UM
    assert f.data_type is DataType.MARK_PRICE_KLINES
    assert f.symbol == "BTCUSDT_240628"
    assert f.period is Period.DAILY
    assert f.date == dt.date(2024, 6, 1)
    assert f.interval is Interval.H4


def test_from_key_non_ascii_symbol() -> None:
    key = "data/futures/um/daily/trades/币安人生USDT/币安人生USDT-trades-2025-10-09.zip"
    f = ArchiveFile.from_key(key)
    assert f.symbol == "币安人生USDT"
    assert f.key == key


BAD_KEYS = [
    ("spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-01-01.zip", "data/"),
    ("data/spot/daily/klines", "data/"),
    ("data/margin/daily/trades/BTCUSDT/BTCUSDT-trades-2024-01-01.zip", "market"),
    ("data/futures/xm/daily/trades/BTCUSDT/BTCUSDT-trades-2024-01-01.zip", "market"),
    ("data/um/daily/trades/BTCUSDT/BTCUSDT-trades-2024-01-01.zip", "spelled"),  # alias, not the archive's path
    ("data/futures/UM/daily/trades/BTCUSDT/BTCUSDT-trades-2024-01-01.zip", "spelled"),
    ("data/spot/Daily/trades/BTCUSDT/BTCUSDT-trades-2024-01-01.zip", "spelled"),
    ("data/spot/daily/Trades/BTCUSDT/BTCUSDT-trades-2024-01-01.zip", "spelled"),
    ("data/spot/weekly/trades/BTCUSDT/BTCUSDT-trades-2024-01-01.zip", "period"),
    ("data/spot/daily/candles/BTCUSDT/BTCUSDT-candles-2024-01-01.zip", "data type"),
    ("data/spot/daily/klines/BTCUSDT/1M/BTCUSDT-1M-2024-01-01.zip", "1mo"),  # 1M is never written
    ("data/spot/daily/klines/BTCUSDT/2m/BTCUSDT-2m-2024-01-01.zip", "interval"),
    ("data/spot/daily/klines/BTCUSDT/BTCUSDT-1m-2024-01-01.zip", "expected 3 parts"),
    ("data/spot/daily/trades/BTCUSDT/1m/BTCUSDT-trades-2024-01-01.zip", "expected 2 parts"),
    ("data/spot/daily/trades/BTCUSDT/ETHUSDT-trades-2024-01-01.zip", "BTCUSDT-trades-"),
    ("data/spot/daily/trades/BTCUSDT/BTCUSDT-aggTrades-2024-01-01.zip", "BTCUSDT-trades-"),
    ("data/spot/daily/trades/BTCUSDT/BTCUSDT-trades-2024-01-01.csv", "BTCUSDT-trades-"),
    ("data/spot/daily/trades/BTCUSDT/BTCUSDT-trades-2024-01.zip", "not a daily date"),
    ("data/spot/monthly/trades/BTCUSDT/BTCUSDT-trades-2024-01-01.zip", "not a monthly date"),
    ("data/spot/daily/trades/BTCUSDT/BTCUSDT-trades-2023-02-29.zip", "day is out of range"),
    ("data/spot/monthly/trades/BTCUSDT/BTCUSDT-trades-2024-13.zip", "month must be in 1..12"),
    ("data/spot/daily/trades/BTCUSDT/BTCUSDT-trades-24-01-01.zip", "not a daily date"),
    ("data/spot/daily/trades/../..-trades-2024-01-01.zip", "escape"),
    ("data/spot/daily/trades/A\\B/A\\B-trades-2024-01-01.zip", "path separator"),
    ("data/spot/daily/trades/A\x00B/A\x00B-trades-2024-01-01.zip", "U+0000"),
    ("data/spot/daily/trades//-trades-2024-01-01.zip", "empty"),
    ("data/spot/daily/trades/BTCUSDT/BTCUSDT-trades-2024-01-01.zip/", "expected 2 parts"),
]


@pytest.mark.parametrize(("key", "why"), BAD_KEYS)
def test_from_key_refuses_what_is_not_an_archive_key(key: str, why: str) -> None:
    with pytest.raises(InvalidKeyError) as info:
        ArchiveFile.from_key(key)
    assert why in str(info.value)
    assert isinstance(info.value, ConfigurationError)


def test_from_key_refuses_non_strings() -> None:
    with pytest.raises(InvalidKeyError, match="must be a string"):
        ArchiveFile.from_key(b"data/spot/daily/trades/X/X-trades-2024-01-01.zip")  # type: ignore[arg-type]


# -- value semantics ---------------------------------------------------------------------------------------


def test_files_are_hashable_comparable_and_frozen() -> None:
    a, b = spot_1m(day=JAN1), spot_1m(day=dt.date(2024, 1, 2))
    assert a == spot_1m(day=JAN1)
    assert len({a, b, spot_1m(day=JAN1)}) == 2
    assert sorted([b, a]) == [a, b]
    with pytest.raises(AttributeError):
        a.symbol = "ETHUSDT"  # type: ignore[misc]


def test_the_cached_key_follows_changes_and_survives_pickling() -> None:
    import pickle

    import attrs

    f = spot_1m()
    moved = attrs.evolve(f, date=dt.date(2024, 1, 2), symbol="ETHUSDT")
    assert moved.key == "data/spot/daily/klines/ETHUSDT/1m/ETHUSDT-1m-2024-01-02.zip"
    assert f.key == "data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2024-01-01.zip"
    copy = pickle.loads(pickle.dumps(moved))
    assert copy == moved
    assert copy.key == moved.key
    with pytest.raises(ConfigurationError):
        attrs.evolve(f, symbol="../x")


@pytest.mark.parametrize(
    ("symbol", "known", "closest"),
    [
        ("BTC", ["BTCBVOLUSDT", "ETHBVOLUSDT"], ["BTCBVOLUSDT"]),  # a part of the real name
        ("btcustd", ["BTCUSDT", "ETHUSDT", "BNBUSDT"], ["BTCUSDT"]),  # a slip of the keys
        ("BTCBVOLUSTD", ["BTCBVOLUSDT", "ETHBVOLUSDT"], ["BTCBVOLUSDT"]),  # not ETH's, which is further off
        ("BTCUSD", ["BTCUSD_PERP", "BTCUSD_240329", "ETHUSD_PERP", "BTCUSDT"], ["BTCUSDT", "BTCUSD_PERP"]),
        ("XRP", ["BTCBVOLUSDT", "ETHBVOLUSDT"], []),
        ("BTC", [], []),
    ],
)
def test_closest_symbols(symbol: str, known: list[str], closest: list[str]) -> None:
    assert closest_symbols(symbol, known, limit=2) == closest
