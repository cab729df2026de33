"""binance_archive: mirror Binance's public market-data archive (data.binance.vision), fast, completely and
verifiably.

Importing the package loads only the dependency-free core; the engine and its backends (aiohttp, pluggy)
load on first use of :class:`Archive`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from binance_archive.core import (
    DEFAULT_CATALOG,
    ArchiveFile,
    Availability,
    Catalog,
    DataType,
    Interval,
    Market,
    Period,
    Selection,
    plan,
)
from binance_archive.errors import (
    BinanceArchiveError,
    ConfigurationError,
    FileMissingError,
    InvalidKeyError,
    PluginError,
    RetryableError,
    StorageError,
    StorageFullError,
    TransportError,
    VerificationError,
)

if TYPE_CHECKING:
    from binance_archive.api import convert, download, verify
    from binance_archive.archive import Archive
    from binance_archive.backends import Storage, Transport
    from binance_archive.engine.retry import RetryPolicy
    from binance_archive.report import FileOutcome, Report
    from binance_archive.tables.query import read_table

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_CATALOG",
    "Archive",
    "ArchiveFile",
    "Availability",
    "BinanceArchiveError",
    "Catalog",
    "ConfigurationError",
    "DataType",
    "FileMissingError",
    "FileOutcome",
    "Interval",
    "InvalidKeyError",
    "Market",
    "Period",
    "PluginError",
    "Report",
    "RetryPolicy",
    "RetryableError",
    "Selection",
    "Storage",
    "StorageError",
    "StorageFullError",
    "Transport",
    "TransportError",
    "VerificationError",
    "__version__",
    "convert",
    "download",
    "plan",
    "read_table",
    "verify",
]

# Names served on first access, so that `import binance_archive` stays as light as the core.
_LAZY = {
    "Archive": "binance_archive.archive",
    "Transport": "binance_archive.backends",
    "Storage": "binance_archive.backends",
    "Report": "binance_archive.report",
    "FileOutcome": "binance_archive.report",
    "RetryPolicy": "binance_archive.engine.retry",
    "convert": "binance_archive.api",
    "download": "binance_archive.api",
    "read_table": "binance_archive.tables.query",
    "verify": "binance_archive.api",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'binance_archive' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
