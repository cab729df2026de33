"""The native client: keep-alive connections to each origin, at most ``limit`` open, GETs sent and answered on them
(redirects followed, a connection the server closed while idle replaced once), and the bodies read from them."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urljoin

from binance_archive.common.urls import redact
from binance_archive.transports.http import errors
from binance_archive.transports.http.body import BodySettings, HttpBody
from binance_archive.transports.http.client import Request, read_whole
from binance_archive.transports.http.native import handover
from binance_archive.transports.http.native.connection import Connection, Lost, Origin
from binance_archive.transports.http.native.targets import Target, Targets
from binance_archive.transports.http.native.wire import ResponseHead, WireError
from binance_archive.transports.http.tls import ssl_context

__all__ = ["NativeClient"]

log = logging.getLogger(__name__)

_MAX_REDIRECTS = 10  # as the other clients
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class NativeClient:
    """Keep-alive connections of asyncio's own, at most ``limit`` open at once (see :class:`~.client.Client`)."""

    def __init__(self, *, limit: int, settings: BodySettings) -> None:
        self._settings = settings
        self._limit = limit
        self._slots = asyncio.Semaphore(limit)  # requests under way; each holds one connection
        self._idle: dict[Origin, list[Connection]] = {}
        self._open: set[Connection] = set()
        self._tls: ssl.SSLContext | None = None
        self._targets = Targets(settings.user_agent)
        self._closed = False

    def file(self, url: str, settings: BodySettings) -> _Request:
        return _Request(self, url, "file", settings)

    async def read(self, url: str, what: str, max_size: int) -> bytes:
        async with _Request(self, url, what, None) as exchange:
            connection, timeout = exchange.connection, self._settings.read_timeout

            async def whole() -> bytes:
                pieces: list[bytes] = []
                while more := await connection.take(timeout):
                    pieces += more
                exchange.finish()
                return b"".join(pieces)

            async def chunks() -> AsyncIterator[bytes]:
                while more := await connection.take(timeout):
                    for piece in more:
                        yield piece
                exchange.finish()

            try:
                return await read_whole(url, max_size, exchange.head.length, whole, chunks, self._settings)
            except (TimeoutError, Lost, WireError) as exc:
                raise _body_error(exc, url, None) from None

    async def close(self) -> None:
        self._closed = True
        for connection in list(self._open):
            connection.close()
        self._idle.clear()
        await asyncio.sleep(0)  # the transports' close callbacks run before the loop may end

    # -- connections ---------------------------------------------------------------------------------------------

    def _forget(self, connection: Connection) -> None:
        self._open.discard(connection)
        idle = self._idle.get(connection.origin)
        if idle and connection in idle:
            idle.remove(connection)

    def _put_back(self, connection: Connection) -> None:
        connection.busy = False
        if self._closed or not connection.reusable:
            connection.close()
        else:
            self._idle.setdefault(connection.origin, []).append(connection)

    async def _new_connection(self, origin: Origin, url: str) -> Connection:
        """A new connection to ``origin`` (the caller found no idle one)."""
        if len(self._open) >= self._limit:  # room for the new one: an idle connection to another origin goes
            for connections in self._idle.values():
                if connections:
                    connections[0].close()
                    break
        loop = asyncio.get_running_loop()
        scheme, host, port = origin
        tls = self._tls_context() if scheme == "https" else None
        try:
            async with asyncio.timeout(self._settings.connect_timeout):
                _, connection = await loop.create_connection(
                    lambda: Connection(origin, loop, self._forget),
                    host,
                    port,
                    ssl=tls,
                    server_hostname=host if tls else None,
                )
        except TimeoutError:
            raise errors.timed_out(url) from None
        except ssl.SSLCertVerificationError as exc:
            raise errors.tls_error(redact(url), exc.verify_message or str(exc)) from None
        except ssl.SSLError as exc:
            raise errors.tls_error(redact(url), exc.reason or str(exc)) from None
        except OSError as exc:
            raise errors.connection_failed(url, errors.reason(exc)) from None
        self._open.add(connection)
        if self._closed:
            connection.close()
            raise errors.request_failed(url, "the client was closed")
        return connection

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = ssl_context(self._settings.verify_ssl, self._settings.ca_pem)
        return self._tls

    async def exchange(self, url: str) -> tuple[Connection, ResponseHead]:
        """Send the GET of ``url`` (following redirects) and wait for the head of the last answer; the connection is
        the caller's until :meth:`_put_back`."""
        current = url
        for _ in range(_MAX_REDIRECTS + 1):
            target = self._targets.target(current, url)
            connection, head = await self._round_trip(target, current)
            if head.status in _REDIRECTS and (location := head.header("location")):
                connection.close()  # its body (a few words) is not worth reading
                current = urljoin(current, location)
                continue
            return connection, head
        raise errors.request_failed(url, f"redirected more than {_MAX_REDIRECTS} times")

    async def _round_trip(self, target: Target, url: str) -> tuple[Connection, ResponseHead]:
        for attempt in range(2):
            idle = self._idle.get(target.origin)
            if idle:  # the usual case, without a coroutine: a kept-alive connection
                connection, reused = idle.pop(), True
            else:
                connection, reused = await self._new_connection(target.origin, url), False
            try:
                connection.send(target.request)
                return connection, await connection.head(self._settings.read_timeout)
            except Lost as exc:
                connection.close()
                # A kept-alive connection the server had closed as the request went out: sent again once, on a new
                # one (a GET may be). A new connection closed unanswered is the server's failure.
                if reused and not exc.answered and attempt == 0:
                    continue
                raise errors.connection_failed(url, str(exc)) from None
            except TimeoutError:
                connection.close()
                raise errors.timed_out(url) from None
            except WireError as exc:
                connection.close()
                raise errors.connection_failed(url, f"the answer is not valid HTTP/1.1: {exc}") from None
            except BaseException:
                connection.close()
                raise
        raise AssertionError("unreachable")  # pragma: no cover


def _body_error(exc: BaseException, url: str, received: int | None) -> BaseException:
    if isinstance(exc, TimeoutError):
        return errors.timed_out(url, received=received, reading=True)
    if isinstance(exc, WireError):
        return errors.broke_off(url, f"the body is not valid HTTP/1.1: {exc}", received=received)
    return errors.broke_off(url, str(exc), received=received)


class _Exchange:
    """One GET under way, as the async context manager :class:`~.client.Request` enters: its connection and head.

    Its place among the client's ``limit`` is given back as soon as the body has been read to its end, not only
    when the request is left: the engine reads a zip's body and then waits for its sidecar inside the request, and
    with a limit of one the sidecar would wait for that place forever (aiohttp hands a connection back at the end
    of its body, too).
    """

    __slots__ = ("_client", "_done", "_url", "connection", "head")

    def __init__(self, client: NativeClient, url: str) -> None:
        self._client = client
        self._url = url
        self._done = True

    async def __aenter__(self) -> _Exchange:
        client = self._client
        await client._slots.acquire()
        try:
            self.connection, self.head = await client.exchange(self._url)
        except BaseException:
            client._slots.release()
            raise
        self._done = False
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.finish()

    def finish(self) -> None:
        """The connection back to the pool (closed unless its answer was read to the end), and the place freed."""
        if not self._done:
            self._done = True
            self._client._put_back(self.connection)
            self._client._slots.release()


class _NativeBody(HttpBody):
    """A file's body, in the pieces it arrived in."""

    def __init__(self, exchange: _Exchange, url: str, settings: BodySettings) -> None:
        super().__init__(url, exchange.head.length, settings)
        self._exchange = exchange
        self._connection = exchange.connection

    async def chunks(self) -> AsyncIterator[bytes]:
        guard = self._settings.guard(self._url)
        connection, timeout = self._connection, self._settings.read_timeout
        while True:
            try:
                pieces = await connection.take(timeout)
            except (TimeoutError, Lost, WireError) as exc:
                raise _body_error(exc, self._url, guard.received) from None
            if not pieces:
                break
            for piece in pieces:
                guard.count(len(piece))
                yield piece
        self._exchange.finish()
        guard.finish(self.size)

    @property
    def _hands_over(self) -> bool:
        """Whether the worker thread reads on from this connection's own socket: over plain HTTP, with a length."""
        head = self._connection.response
        return (
            handover.POSSIBLE
            and self._connection.origin[0] == "http"
            and self.size is not None
            and not (head is None or head.chunked)
        )

    def answered_slowly(self) -> None:
        if not self._hands_over:  # handed over, the body costs no second round trip however far the server is
            super().answered_slowly()

    def blocking_chunks(self) -> Iterator[bytes | memoryview]:
        """In the engine's worker thread: over plain HTTP, the rest of the body from this connection's own socket,
        handed over (see :mod:`.handover`); over TLS, or a body without a Content-Length, from a GET sent again."""
        size = self.size
        if size is None or not self._hands_over:
            return super().blocking_chunks()
        connection = self._connection
        take: concurrent.futures.Future[tuple[socket.socket | None, list[bytes], int]] = concurrent.futures.Future()
        url, exchange = self._url, self._exchange

        def detach() -> None:  # on the event loop's thread
            if take.set_running_or_notify_cancel():
                try:
                    take.set_result(connection.detach())
                except WireError as exc:
                    take.set_exception(_body_error(exc, url, None))
                except Exception as exc:
                    take.set_exception(exc)
            exchange.finish()  # the connection is closed: its place is free

        log.debug("%s: read on from the connection's own socket in a worker thread", redact(url))
        reader = handover.HandedOver(url, take)
        self._read_in_thread_by(reader)
        connection.loop.call_soon_threadsafe(detach)
        return reader.chunks(self._settings.guard(url), self._settings.read_timeout, size)


class _Request(Request):
    """One GET through the native client."""

    __slots__ = ("_client",)

    def __init__(self, client: NativeClient, url: str, what: str, body: BodySettings | None) -> None:
        super().__init__(url, what, body)
        self._client = client

    def _send(self) -> _Exchange:
        return _Exchange(self._client, self._url)

    def _status(self, response: _Exchange) -> tuple[int, str | None]:
        head = response.head
        return head.status, head.header("retry-after") if head.status != 200 else None  # only a refusal has one

    def _wrap(self, response: _Exchange, settings: BodySettings) -> HttpBody:
        return _NativeBody(response, self._url, settings)

    def _translate(self, exc: BaseException) -> BaseException:
        return exc  # the exchange raises the library's errors already (a failed write included: Connection.send)
