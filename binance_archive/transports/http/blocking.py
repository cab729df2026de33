"""A large body fetched again over a blocking connection of its own, read in the engine's worker thread.

Through an async client every chunk of a body crosses from the client's thread (pyreqwest's Tokio thread) or
loop (aiohttp's) to the thread that hashes and writes it, and pyreqwest copies each chunk once more on the way
out of its buffers. For bodies of a few hundred megabytes that costs more than the request it saves, so each
worker thread receives with one ``recv`` a megabyte, hashes it and writes it (the figures are in
docs/performance.md). Each thread receives into one buffer of its own, over and over: a new megabyte of
``bytes`` a ``recv`` cost page faults on memory the allocator had handed back to the system.

So when the first response's ``Content-Length`` says a body is large (the transport's ``large_body_bytes``) and
the engine reads it in a worker thread, the GET is sent again from that thread, here, and the first response is
released unread (its connection closed). One more request per large file: a round trip and a connection, small
beside the transfer of that many bytes. Both clients use it.

This GET behaves as the clients' do: the same User-Agent, credentials in the URL sent as Basic auth (to that
origin only, not to another host redirected to), up to 10 redirects followed, no proxy from the environment,
no decompression, certificates verified against the default trust store (``SSL_CERT_FILE`` and
``SSL_CERT_DIR`` honoured) and the ``ca_bundle`` option's certificates unless ``verify_ssl`` is off, the same
timeouts, speed guard and errors.
"""

from __future__ import annotations

import http.client
import ssl
from collections.abc import Iterator
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

from binance_archive.common.urls import basic_authorization, redact
from binance_archive.errors import RetryableError, TransportError
from binance_archive.transports.http.errors import (
    broke_off,
    connection_failed,
    reason,
    status_error,
    timed_out,
    tls_error,
)
from binance_archive.transports.http.stoppable import StoppableSocket
from binance_archive.transports.http.tls import ssl_context

if TYPE_CHECKING:
    from binance_archive.transports.http.body import BodySettings, SpeedGuard

__all__ = ["BlockingGet"]

_READ_SIZE = 1024 * 1024  # over loopback a 200 MB body came in ~230 reads of this size
_MAX_REDIRECTS = 10  # as the clients
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class BlockingGet:
    """One GET of ``url`` on a connection of its own; :meth:`chunks` blocks, for a worker thread.

    :meth:`interrupt` may be called from any other thread (the event loop, when the download is cancelled): it
    shuts the socket down, so a read blocked on it returns at once and the body ends in an error.
    """

    def __init__(self, url: str, settings: BodySettings) -> None:
        self._url = url
        self._settings = settings
        self._stop = StoppableSocket()

    def chunks(self, guard: SpeedGuard) -> Iterator[memoryview]:
        """The body's bytes, up to a megabyte at a time, each counted by ``guard`` (which gives up a body that
        drips, or that ends short of its Content-Length); raises the library's errors. Every chunk is a view of
        the same buffer: valid until the next one is asked for."""
        connection, response = self._answer(self._url, self._open(self._url))
        yield from self._body(connection, response, guard, response.length)

    def interrupt(self) -> None:
        """Stop the GET from another thread: a read under way fails at once, and none starts after."""
        self._stop.stop()

    def _body(
        self,
        connection: http.client.HTTPConnection,
        response: http.client.HTTPResponse,
        guard: SpeedGuard,
        length: int | None,
    ) -> Iterator[memoryview]:
        buffer = memoryview(bytearray(_READ_SIZE))
        try:
            while True:
                try:
                    count = _read_into(response, buffer)
                except BaseException as exc:
                    raise self._error(exc, self._url, body=True, received=guard.received) from None
                if not count:
                    break
                guard.count(count)
                yield buffer[:count]
            if self._stop.stopped:
                raise RetryableError(f"the GET of {redact(self._url)} was stopped after {guard.received} bytes")
            guard.finish(length)
        finally:
            self._close(connection)

    def _open(self, url: str) -> http.client.HTTPConnection:
        """A connection to ``url``'s host with the GET sent on it (the answer not read yet)."""
        connection = self._connect(url)
        try:
            parts = urlsplit(url)
            connection.putrequest("GET", f"{parts.path or '/'}{'?' + parts.query if parts.query else ''}")
            for name, value in self._headers(url):
                connection.putheader(name, value)
            connection.endheaders()
        except BaseException as exc:
            self._close(connection)
            raise self._error(exc, url, body=False, received=0) from None
        return connection

    def _answer(
        self, url: str, connection: http.client.HTTPConnection
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """The connection and its 200 answer, after redirects (as the clients follow them)."""
        for _ in range(_MAX_REDIRECTS + 1):
            try:
                response = connection.getresponse()
            except BaseException as exc:
                self._close(connection)
                raise self._error(exc, url, body=False, received=0) from None
            if response.status == 200:
                return connection, response
            self._close(connection)
            location = response.getheader("Location")
            if response.status in _REDIRECTS and location:
                url = urljoin(url, location)
                connection = self._open(url)
                continue
            raise status_error(response.status, url, "file", response.getheader("Retry-After"))
        raise TransportError(f"{redact(self._url)} redirected more than {_MAX_REDIRECTS} times")

    def _close(self, connection: http.client.HTTPConnection) -> None:
        self._stop.let_go()
        connection.close()

    def _headers(self, url: str) -> list[tuple[str, str]]:
        headers = [("User-Agent", self._settings.user_agent)]
        if (authorization := basic_authorization(self._url, urlsplit(url))) is not None:
            headers.append(("Authorization", authorization))
        return headers

    def _connect(self, url: str) -> http.client.HTTPConnection:
        settings = self._settings
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port
        connection: http.client.HTTPConnection
        if parts.scheme == "https":
            connection = http.client.HTTPSConnection(
                host, port, timeout=settings.connect_timeout, context=ssl_context(settings.verify_ssl, settings.ca_pem)
            )
        else:
            connection = http.client.HTTPConnection(host, port, timeout=settings.connect_timeout)
        try:
            connection.connect()
        except BaseException as exc:
            connection.close()
            raise self._error(exc, url, body=False, received=0) from None
        assert connection.sock is not None
        connection.sock.settimeout(settings.read_timeout)
        if not self._stop.hold(connection.sock):
            connection.close()
            raise RetryableError(f"the GET of {redact(url)} was stopped")
        return connection

    def _error(self, exc: BaseException, url: str, *, body: bool, received: int) -> BaseException:
        """The library's error for a failure of the socket or of http.client (anything else as it is)."""
        if isinstance(exc, RetryableError | TransportError):
            return exc
        if self._stop.stopped and isinstance(exc, OSError | http.client.HTTPException | ValueError):
            return RetryableError(f"the GET of {redact(url)} was stopped after {received} bytes")
        if isinstance(exc, TimeoutError):
            return timed_out(url, received=received) if body else timed_out(url)
        if isinstance(exc, ssl.SSLCertVerificationError):
            return tls_error(redact(url), exc.verify_message or str(exc))
        if isinstance(exc, OSError | http.client.HTTPException):
            return broke_off(url, reason(exc), received=received) if body else connection_failed(url, reason(exc))
        return exc


def _read_into(response: http.client.HTTPResponse, buffer: memoryview) -> int:
    """Up to ``len(buffer)`` bytes of the body into ``buffer``, with one ``recv`` when none are buffered.

    ``HTTPResponse.readinto`` would fill the whole buffer, ``recv`` after ``recv``: a body that drips would then
    reach the speed guard once a megabyte. So for a body of known length (the case here: the GET is sent again
    because its Content-Length was large) this reads as ``HTTPResponse.read1`` does, into the buffer; any other
    body (chunked, or delimited by the connection's close) goes through ``read1`` and a copy.
    """
    if response.chunked or response.length is None:
        chunk = response.read1(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)
    if not response.length:
        return 0
    assert response.fp is not None
    count = response.fp.readinto1(buffer[: response.length])
    response.length -= count
    return count
