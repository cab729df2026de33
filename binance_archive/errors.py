"""The exceptions binance_archive raises.

Every error the library raises derives from :class:`BinanceArchiveError`, so a caller can catch them all at
once. Backends translate the errors of their own libraries (aiohttp, s5cmd, S3 clients) into these at their
boundary, so the engine and the user only ever see this tree::

    BinanceArchiveError
    ├── ConfigurationError        bad input: refused before any I/O (also a ValueError)
    │   └── InvalidKeyError       a string that is not a key of the archive
    ├── PluginError               a backend that cannot be found, loaded or registered
    ├── TransportError            fetching failed
    │   ├── RetryableError        worth another try: 5xx, 429, timeouts, resets, truncated bodies
    │   └── FileMissingError      the archive has no such file (HTTP 404): reported as missing, not failed
    ├── VerificationError         the bytes do not match Binance's .CHECKSUM sidecar
    └── StorageError              the destination refused a write or a read
        └── StorageFullError      no room left (disk full, quota, read-only): the run stops early

This module uses only the standard library, so the dependency-free core can raise these too.
"""

from __future__ import annotations

__all__ = [
    "BinanceArchiveError",
    "ConfigurationError",
    "FileMissingError",
    "InvalidKeyError",
    "PluginError",
    "RetryableError",
    "StorageError",
    "StorageFullError",
    "TransportError",
    "VerificationError",
]


class BinanceArchiveError(Exception):
    """Base class of every error raised by binance_archive."""


class ConfigurationError(BinanceArchiveError, ValueError):
    """The user's input is invalid: an unknown market, interval or date, an impossible combination.

    Raised before any I/O happens; the message names the bad value and the valid choices.
    """


class InvalidKeyError(ConfigurationError):
    """A string does not follow the archive's key layout (``data/{market}/{period}/...``)."""


class PluginError(BinanceArchiveError):
    """A transport or storage backend cannot be found, loaded or registered."""


class TransportError(BinanceArchiveError):
    """Fetching a file from the archive failed."""


class RetryableError(TransportError):
    """A transient failure (5xx, 429, timeout, reset, truncated body); the engine retries it.

    ``retry_after`` carries the server's Retry-After in seconds, where it sent one. ``throttled`` says the server
    turned the request away for load (HTTP 429 or 503, a connection refused or reset before any answer): where
    the engine finds its own number of files in flight, it takes fewer at once.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, throttled: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.throttled = throttled


class FileMissingError(TransportError):
    """The archive has no such file (HTTP 404). Reported as *missing*, which is not a failure."""


class VerificationError(BinanceArchiveError):
    """Downloaded bytes do not match the SHA-256 of Binance's ``.CHECKSUM`` sidecar (or the sidecar is bad)."""


class StorageError(BinanceArchiveError):
    """The storage backend could not write, read or inspect a file."""


class StorageFullError(StorageError):
    """The storage has no room left: the disk is full, a quota is exceeded, or it is read-only.

    No other file could be stored either, so a download stops starting new files (see ``Report.stopped``).
    """
