"""The archive of the transport contract: :data:`CONTRACT_FILES` written on disk and held in memory."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable
from pathlib import Path

import attrs

from binance_archive.core import ArchiveFile, DataType, Interval, Market, Period
from binance_archive.testing.tree import build_archive, key_path

__all__ = ["CONTRACT_FILES", "ContractArchive", "build_contract_archive"]


def _daily(market: str, data_type: str, symbol: str, day: str, interval: str | None = "1h") -> ArchiveFile:
    return ArchiveFile(
        Market.parse(market),
        DataType.parse(data_type),
        symbol,
        Period.DAILY,
        dt.date.fromisoformat(day),
        Interval.parse(interval) if interval else None,
    )


def _monthly(market: str, data_type: str, symbol: str, month: str, interval: str | None = None) -> ArchiveFile:
    return ArchiveFile(
        Market.parse(market),
        DataType.parse(data_type),
        symbol,
        Period.MONTHLY,
        dt.date.fromisoformat(month + "-01"),
        Interval.parse(interval) if interval else None,
    )


CONTRACT_FILES: tuple[ArchiveFile, ...] = (
    _daily("spot", "klines", "BTCUSDT", "2024-01-01"),
    _daily("spot", "klines", "BTCUSDT", "2024-01-02"),
    _daily("spot", "klines", "BTCUSDT", "2024-01-03"),
    _daily("spot", "klines", "ETHUSDT", "2024-01-01"),
    _monthly("spot", "klines", "BTCUSDT", "2023-12", "1h"),
    _daily("futures/um", "klines", "币安人生USDT", "2024-01-01"),
    _monthly("futures/um", "fundingRate", "BTCUSDT", "2024-01"),
)
"""The files of the contract archive: daily and monthly, with and without interval, a non-ASCII symbol."""


@attrs.frozen
class ContractArchive:
    """A small archive on disk (``root/data/...``, zips and ``.CHECKSUM`` sidecars) and its objects in memory."""

    root: Path
    files: tuple[ArchiveFile, ...]
    objects: dict[str, bytes]
    """Every object of the archive: key -> bytes (zips and sidecars)."""

    @property
    def missing_key(self) -> str:
        """A well-formed key the archive does not have (in a folder that exists)."""
        return _daily("spot", "klines", "BTCUSDT", "2000-01-01").key

    def keys_under(self, prefix: str) -> list[str]:
        """The object keys starting with ``prefix``, in S3 order."""
        return sorted(k for k in self.objects if k.startswith(prefix))


def build_contract_archive(
    root: str | os.PathLike[str], files: Iterable[ArchiveFile] = CONTRACT_FILES
) -> ContractArchive:
    """Write ``files`` under ``root`` (small real-format zips with their sidecars) and describe them."""
    chosen = tuple(files)
    build_archive(root, chosen, max_rows=24)
    objects: dict[str, bytes] = {}
    for file in chosen:
        for key in (file.key, file.checksum_key):
            objects[key] = key_path(root, key).read_bytes()
    return ContractArchive(Path(root), chosen, objects)
