"""Real archive files (../shared/vectors): their keys parse and regenerate, their sidecars verify."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from binance_archive.core import ArchiveFile, Market, format_checksum, parse_checksum

from ._support import VECTORS, VECTORS_MISSING


def find_zips(root: Path) -> list[tuple[str, Path]]:
    """(key, path) of every zip under ``root/data``; skips the test, saying why, where there are none."""
    data = root / "data"
    if not data.is_dir():
        pytest.skip(
            VECTORS_MISSING
            if root == VECTORS
            else f"{root} not found: tests that read real archive files need ../shared/vectors"
        )
    found = sorted((path.relative_to(root).as_posix(), path) for path in data.rglob("*.zip"))
    if not found:
        pytest.skip(f"{data} holds no .zip: tests that read real archive files need ../shared/vectors")
    return found


@pytest.fixture(scope="module")
def zips() -> list[tuple[str, Path]]:
    return find_zips(VECTORS)


def test_missing_vectors_skip_saying_why(tmp_path: Path) -> None:
    with pytest.raises(
        pytest.skip.Exception, match=r"not found: tests that read real archive files need \.\./shared/vectors"
    ):
        find_zips(tmp_path / "absent")
    (tmp_path / "data").mkdir()
    with pytest.raises(pytest.skip.Exception, match=r"holds no \.zip"):
        find_zips(tmp_path)
    assert Path(__file__).resolve().parents[2].parent / "shared" / "vectors" == VECTORS


def test_vectors_hold_spot_and_futures_files(zips: list[tuple[str, Path]]) -> None:
    markets = {ArchiveFile.from_key(key).market for key, _ in zips}
    assert Market.SPOT in markets
    assert markets & {Market.FUTURES_UM, Market.FUTURES_CM}


def test_keys_parse_and_regenerate_exactly(zips: list[tuple[str, Path]]) -> None:
    for key, path in zips:
        f = ArchiveFile.from_key(key)
        assert f.key == key
        assert f.filename == path.name
        assert f.checksum_key == key + ".CHECKSUM"
        assert ArchiveFile.from_key(f.checksum_key) == f
        assert f.url() == "https://data.binance.vision/" + key  # these keys are ASCII


def test_known_vectors_parse_to_the_expected_fields(zips: list[tuple[str, Path]]) -> None:
    by_key = {key: ArchiveFile.from_key(key) for key, _ in zips}
    funding = by_key.get("data/futures/um/monthly/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2026-04.zip")
    if funding is not None:
        assert (funding.market.value, funding.data_type.value, funding.period.value) == (
            "futures/um",
            "fundingRate",
            "monthly",
        )
        assert funding.interval is None
        assert funding.date.isoformat() == "2026-04-01"
    agg = by_key.get("data/futures/cm/daily/aggTrades/BTCUSD_PERP/BTCUSD_PERP-aggTrades-2026-05-08.zip")
    if agg is not None:
        assert (agg.market.value, agg.symbol, agg.date.isoformat()) == ("futures/cm", "BTCUSD_PERP", "2026-05-08")
    assert funding is not None or agg is not None, "none of the vectors named in vectors/README.md was found"


def test_sidecars_match_the_sha256_of_the_zip(zips: list[tuple[str, Path]]) -> None:
    for key, path in zips:
        f = ArchiveFile.from_key(key)
        sidecar = VECTORS / f.checksum_key
        assert sidecar.is_file(), f"no sidecar for {key}"
        content = sidecar.read_bytes()
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert parse_checksum(content, filename=f.filename) == digest
        assert parse_checksum(content.decode("ascii")) == digest


def test_sidecar_newline_conventions(zips: list[tuple[str, Path]]) -> None:
    """ARCHIVE.md: spot sidecars have no trailing newline, futures ones end in a single newline."""
    for key, path in zips:
        f = ArchiveFile.from_key(key)
        content = (VECTORS / f.checksum_key).read_bytes()
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if f.market is Market.SPOT:
            assert not content.endswith(b"\n"), key
        else:
            assert f.market.is_futures
            assert content.endswith(b"\n"), key
            assert not content.endswith(b"\n\n"), key
        # and format_checksum writes exactly what Binance wrote
        assert format_checksum(digest, f.filename, newline=f.market.is_futures).encode() == content


def test_a_sidecar_naming_another_file_is_refused(zips: list[tuple[str, Path]]) -> None:
    from binance_archive.errors import VerificationError

    key, _ = zips[0]
    f = ArchiveFile.from_key(key)
    with pytest.raises(VerificationError, match="names"):
        parse_checksum((VECTORS / f.checksum_key).read_bytes(), filename="OTHER-" + f.filename)


def test_each_zip_holds_one_csv_named_after_it(zips: list[tuple[str, Path]]) -> None:
    for key, path in zips:
        with zipfile.ZipFile(path) as archive:
            assert archive.namelist() == [ArchiveFile.from_key(key).filename.removesuffix(".zip") + ".csv"]
