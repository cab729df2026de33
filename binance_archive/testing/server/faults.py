"""What goes wrong on the fake server, and how often: :class:`Faults`, and the checks of its fields."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from binance_archive.core import CHECKSUM_SUFFIX, ArchiveFile

__all__ = ["Faults"]


def _keys(value: Iterable[str | ArchiveFile] | None) -> set[str]:
    """Keys from strings or :class:`ArchiveFile` objects (whose ``str`` is their key)."""
    return {str(item) for item in value or ()}


def _rate(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must be a fraction between 0 and 1, not {value}")


def _non_negative(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must not be negative, not {value}")


@attrs.define
class Faults:
    """What goes wrong, and how often. Mutable: tests change it while the server runs.

    Rates are fractions of requests (0 to 1). They are checked in this order, the first that fires wins:
    ``max_in_flight``, ``error_rate``, ``rate_429``, ``reset_rate``, ``fail_first``, ``missing_keys``; then a served
    GET may be stalled, truncated and/or corrupted.

    Attributes:
        latency: seconds added before answering every request (listings too).
        error_rate: fraction answered 500 or 503 (listings too).
        rate_429: fraction answered 429 with ``Retry-After: retry_after`` (drawn per key and try, so the same
            requests are refused however many are sent at once).
        retry_after: the Retry-After of those 429s (and of ``max_in_flight``'s), in seconds.
        max_in_flight: the most file requests the server takes at once (counted from their arrival, the
            ``latency`` included); one arriving beyond is answered 429 with ``Retry-After: retry_after`` after the
            ``latency``: a server shedding load, whose refusals grow with what a client sends at once. 0: no limit.
        reset_rate: fraction whose connection is reset (TCP RST) without any response.
        truncate_rate: fraction of GETs that send the full Content-Length but close after part of the body.
        corrupt_rate: fraction of GETs whose body has a few bytes flipped (the length stays right).
        corrupt_keys: keys whose GETs are always corrupted.
        missing_keys: keys answered 404 although on disk, and left out of listings: a missing date. The
            sidecar of a missing zip is missing too; list a sidecar key alone to lose only the sidecar.
        stall_keys: keys whose GETs send the headers and part of the body, then pause ``stall_seconds``
            before sending the rest (for client timeout tests).
        stall_seconds: how long those GETs pause.
        drip_keys: keys whose GETs send their body slowly, never pausing long: ``drip_rate`` bytes a second,
            in ten small writes a second (a server that never stalls outright, yet would take hours).
        drip_rate: bytes a second for those GETs.
        fail_first: each key's first N GETs are answered 503 (deterministic retry tests); counted since the
            server started or since :meth:`FakeArchiveServer.reset_attempts`.
        seed: seed of the random draws.
    """

    latency: float = attrs.field(default=0.0, validator=_non_negative)
    error_rate: float = attrs.field(default=0.0, validator=_rate)
    rate_429: float = attrs.field(default=0.0, validator=_rate)
    retry_after: int = attrs.field(default=1, validator=_non_negative)
    max_in_flight: int = attrs.field(default=0, validator=_non_negative)
    reset_rate: float = attrs.field(default=0.0, validator=_rate)
    truncate_rate: float = attrs.field(default=0.0, validator=_rate)
    corrupt_rate: float = attrs.field(default=0.0, validator=_rate)
    corrupt_keys: set[str] = attrs.field(factory=set, converter=_keys)
    missing_keys: set[str] = attrs.field(factory=set, converter=_keys)
    stall_keys: set[str] = attrs.field(factory=set, converter=_keys)
    stall_seconds: float = attrs.field(default=30.0, validator=_non_negative)
    drip_keys: set[str] = attrs.field(factory=set, converter=_keys)
    drip_rate: int = attrs.field(default=100, validator=_non_negative)
    fail_first: int = attrs.field(default=0, validator=_non_negative)
    seed: int = 0

    def is_missing(self, key: str) -> bool:
        """Whether ``key`` is hidden by ``missing_keys`` (directly, or as the sidecar of a hidden zip)."""
        if key in self.missing_keys:
            return True
        return key.endswith(CHECKSUM_SUFFIX) and key[: -len(CHECKSUM_SUFFIX)] in self.missing_keys
