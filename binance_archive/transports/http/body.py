"""What the bodies of every client share: the settings a body is read with, the guard against a body that
drips or ends short, the limits of a small body read whole, and the blocking GET of a large body."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Protocol

from binance_archive.backends import Body
from binance_archive.common.urls import redact
from binance_archive.errors import RetryableError, VerificationError

__all__ = ["REFETCH_WITHIN", "WHOLE_UP_TO", "BodySettings", "HttpBody", "SpeedGuard", "check_small"]

log = logging.getLogger(__name__)

WHOLE_UP_TO = 1024 * 1024
"""A body of known length up to this size may be read whole, in one go (the engine hashes it on the event loop
anyway, and holds it whole until its commit); within the time :func:`~.client.read_whole` allows."""

REFETCH_WITHIN = 0.02
"""The transport's default ``refetch_within``: seconds within which a large body's first answer must have come for
its GET to be sent again (a server on the same machine, network or region; see :meth:`HttpBody.answered_slowly`)."""


class _Interruptible(Protocol):
    """A read of a body in a worker thread that another thread can stop: the blocking GET (:mod:`.blocking`), or
    the native client's socket handed over (:mod:`.native.handover`)."""

    def interrupt(self) -> None: ...


class BodySettings:
    """How the transport reads a file's body, with any client: the speed guard's limits, and when and how a large
    body is fetched again on a blocking connection in the engine's worker thread (see :mod:`.blocking`)."""

    __slots__ = (
        "ca_pem",
        "connect_timeout",
        "large_body_bytes",
        "min_speed",
        "read_timeout",
        "refetch_within",
        "user_agent",
        "verify_ssl",
    )

    def __init__(
        self,
        *,
        min_speed: float,
        read_timeout: float,
        connect_timeout: float,
        large_body_bytes: int,
        verify_ssl: bool,
        user_agent: str,
        ca_pem: str | None = None,
        refetch_within: float = REFETCH_WITHIN,
    ) -> None:
        self.min_speed = min_speed
        self.read_timeout = read_timeout  # also the speed guard's window
        self.connect_timeout = connect_timeout
        self.large_body_bytes = large_body_bytes
        self.verify_ssl = verify_ssl
        self.user_agent = user_agent
        self.ca_pem = ca_pem  # the ca_bundle option's certificates (PEM), trusted beside the default store
        self.refetch_within = refetch_within  # seconds: a first answer slower than this is read, not fetched again

    def guard(self, url: str) -> SpeedGuard:
        return SpeedGuard(url, min_speed=self.min_speed, window=self.read_timeout)


class SpeedGuard:
    """Counts a body's bytes and gives it up when it comes too slowly or ends short (for every client).

    The read timeout catches a server that stops sending; this catches one that sends a few bytes now and then,
    forever (each read is quick, the body never ends): below ``min_speed`` bytes a second over a whole window of
    ``window`` (the read timeout) seconds, the body is given up and retried, like curl's speed limit.
    """

    __slots__ = ("_bytes", "_min_speed", "_start", "_url", "_window", "received")

    def __init__(self, url: str, *, min_speed: float, window: float) -> None:
        self._url = url  # unredacted: redact() runs only when a message is built
        self._min_speed = min_speed
        self._window = window
        self._start = time.monotonic()
        self._bytes = 0
        self.received = 0

    def count(self, size: int) -> None:
        """Count ``size`` more bytes; raises RetryableError when the last window was below ``min_speed``."""
        self.received += size
        if self._min_speed:
            self._bytes += size
            elapsed = time.monotonic() - self._start
            if elapsed >= self._window:
                if self._bytes < self._min_speed * elapsed:
                    raise RetryableError(
                        f"{redact(self._url)} came too slowly: {self._bytes} bytes in {elapsed:.0f} s "
                        f"(at least {self._min_speed:g} bytes/s expected; see the min_speed option)"
                    )
                self._start, self._bytes = time.monotonic(), 0

    def finish(self, size: int | None) -> None:
        """At the end of the body: raises RetryableError when it is shorter or longer than ``size`` said."""
        if size is not None and self.received != size:
            raise RetryableError(f"{redact(self._url)} was truncated: {self.received} of {size} bytes")


def check_small(url: str, max_size: int, length: int | None, data: bytes | bytearray | None = None) -> None:
    """The limits of a small body read whole (a sidecar, a listing page), for every client: refused when it is
    (or its Content-Length says it is) larger than ``max_size``, retried when it came shorter than it said."""
    if data is None:
        if length is not None and length > max_size:
            raise VerificationError(f"{redact(url)} is {length} bytes; at most {max_size} expected")
    elif length is None and len(data) > max_size:
        raise VerificationError(f"{redact(url)} is larger than the {max_size} bytes expected")
    elif length is not None and len(data) != length:
        raise RetryableError(f"{redact(url)} was truncated: {len(data)} of {length} bytes")


class HttpBody(Body):
    """A file's body, with whichever client: a large one (over ``large_body_bytes``) is, for the engine's worker
    thread, fetched again on a blocking connection of its own (:meth:`blocking_chunks`)."""

    def __init__(self, url: str, size: int | None, settings: BodySettings) -> None:
        self._url = url  # unredacted: redact() runs only when a message is built, not for every file
        self.size = size
        self._settings = settings
        self._blocking_get: _Interruptible | None = None
        self._released = False
        limit = settings.large_body_bytes
        self.blocking = bool(limit) and size is not None and size > limit

    def answered_slowly(self) -> None:
        """The first answer's head took longer than ``refetch_within``: the server is far, and a second GET would
        cost more in round trips (a connection, a TLS handshake, a request) than the CPU its blocking read saves.
        The body is then read from this answer (in a worker thread where the client allows it, else in batches
        from the loop)."""
        self.blocking = False

    def blocking_chunks(self) -> Iterator[bytes | memoryview]:
        from binance_archive.transports.http.blocking import BlockingGet  # http.client: ~10 ms to import

        log.debug("%s: fetched again on a blocking connection", redact(self._url))
        get = BlockingGet(self._url, self._settings)
        self._read_in_thread_by(get)
        return get.chunks(self._settings.guard(self._url))

    def _read_in_thread_by(self, reader: _Interruptible) -> None:
        """``reader`` reads this body in the worker thread: :meth:`release` stops it, at once where the request was
        released (the download cancelled) before this thread got here."""
        self._blocking_get = reader
        if self._released:
            reader.interrupt()

    def stop_reading(self) -> None:
        self.release()
        super().stop_reading()

    def release(self) -> None:
        """Called when the request is left: a blocking GET under way in a worker thread fails at once."""
        self._released = True
        if self._blocking_get is not None:
            self._blocking_get.interrupt()
