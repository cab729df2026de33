"""The HTTP transport's pyreqwest client (``client="pyreqwest"``): the same requests, through Rust's reqwest.

`pyreqwest <https://pypi.org/project/pyreqwest/>`_ runs the HTTP work (connections, parsing, TLS) on its own
Tokio thread and hands the event loop finished responses and chunks. A mirror of small files is bound by the
CPU of the event loop's thread, and there a request through pyreqwest costs about half of one through aiohttp
(measured: 0.35 against 0.75 CPU-ms for a file's zip and sidecar; see docs/performance.md).

This module is imported only when that client is chosen. Its requests behave as the aiohttp client's do: the
same statuses turned into the same errors, no proxy from the environment, no cookies, no decompression, the
same timeouts and the same guard against a body that drips.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any

from binance_archive.errors import RetryableError, TransportError
from binance_archive.transports.http import (  # loaded already: it imports this
    BodySettings,
    HttpBody,
    release,
    status_error,
    tls_error,
)

__all__ = ["ReqwestClient"]


class ReqwestClient:
    """One pyreqwest client, with the HTTP transport's settings."""

    def __init__(
        self, *, limit: int, connect_timeout: float, read_timeout: float, verify_ssl: bool, user_agent: str
    ) -> None:
        from pyreqwest.client import ClientBuilder

        builder = (
            ClientBuilder()
            .max_connections(limit)
            .connect_timeout(dt.timedelta(seconds=connect_timeout))
            .read_timeout(dt.timedelta(seconds=read_timeout))
            .user_agent(user_agent)
            .no_proxy()  # as aiohttp's session: proxies from the environment are not used
            .default_cookie_store(False)
            .gzip(False)  # bodies are stored as sent: a zip is hashed byte for byte against its sidecar
            .brotli(False)
            .zstd(False)
            .deflate(False)
            .follow_redirects(True)
            .max_redirects(10)
        )
        if not verify_ssl:
            builder = builder.danger_accept_invalid_certs(True)
        self._client = builder.build()

    def request(self, url: str, what: str, *, body: BodySettings | None = None, redact: Any) -> ReqwestRequest:
        return ReqwestRequest(self._client, url, what, body=body, redact=redact)

    async def close(self) -> None:
        await self._client.close()


class ReqwestResponse:
    """A small response read whole (a sidecar, a listing page): what ``_read_limited`` uses of aiohttp's."""

    def __init__(self, response: Any, url: str, redact: Any) -> None:
        self._response = response
        self._url = url
        self._redact = redact
        self.content_length = _content_length(response)

    @property
    def content(self) -> ReqwestResponse:
        """``response.content.iter_chunked(n)``, as aiohttp's (a property: an attribute would be a reference
        cycle, freed only by the garbage collector, with the response's buffers)."""
        return self

    async def read(self) -> bytes:
        try:
            return bytes(await self._response.body_reader.bytes())
        except BaseException as exc:
            raise _translate(exc, self._url, self._redact, body=True) from None

    async def iter_chunked(self, _size: int) -> AsyncIterator[bytes]:
        reader = self._response.body_reader
        while True:
            try:
                chunk = await reader.read_chunk()
            except BaseException as exc:
                raise _translate(exc, self._url, self._redact, body=True) from None
            if chunk is None:
                return
            yield bytes(chunk)


class ReqwestBody(HttpBody):
    """A file's body, chunk by chunk as received."""

    # pyreqwest reads on its Tokio thread and completes each read on whichever event loop awaited it.
    loop_free = True

    def __init__(self, response: Any, url: str, redact: Any, settings: BodySettings) -> None:
        super().__init__(url, _content_length(response), settings)
        self._response = response
        self._redact = redact

    async def chunks(self) -> AsyncIterator[bytes]:
        reader = self._response.body_reader
        guard = self._settings.guard(self._url)
        while True:
            try:
                chunk = await reader.read_chunk()
            except BaseException as exc:
                raise _translate(exc, self._url, self._redact, body=True, received=guard.received) from None
            if chunk is None:
                break
            data = bytes(chunk)
            guard.count(len(data))
            yield data
        guard.finish(self.size)


class ReqwestRequest:
    """One GET as an async context manager, like the aiohttp client's ``_Request``."""

    __slots__ = ("_body", "_client", "_context", "_made", "_redact", "_url", "_what")

    def __init__(self, client: Any, url: str, what: str, *, body: BodySettings | None, redact: Any) -> None:
        self._client = client
        self._url = url
        self._what = what
        self._body = body
        self._redact = redact
        self._context: Any = None
        self._made: ReqwestBody | None = None

    async def __aenter__(self) -> Any:
        url, redact = self._url, self._redact
        try:
            # Entered as soon as the headers are in, as aiohttp's: pyreqwest would otherwise read up to 64 KB on
            # entering, before the status and the length are looked at (a listing claiming a gigabyte is refused
            # unread) and where no speed check runs (a body dripping a byte at a time would be waited out).
            self._context = self._client.get(url).streamed_read_buffer_limit(0).build_streamed()
            response = await self._context.__aenter__()
        except BaseException as exc:
            self._context = None
            raise _translate(exc, url, redact) from None
        status = response.status
        if status != 200:
            context, self._context = self._context, None
            await context.__aexit__(None, None, None)
            raise status_error(status, url, self._what, response.get_header("Retry-After"))
        if self._body is not None:
            self._made = ReqwestBody(response, url, redact, self._body)
            return self._made
        return ReqwestResponse(response, url, redact)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        context, self._context = self._context, None
        body, self._made = self._made, None
        await release(context, exc_type, exc, tb, lambda error: _translate(error, self._url, self._redact), body)


def _content_length(response: Any) -> int | None:
    value = response.get_header("Content-Length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _causes(exc: BaseException) -> str:
    """The causes pyreqwest gives, less any that quote a URL: those carry the credentials and the signed query
    string of the request ("error sending request for url (...)"), and the message names the URL redacted."""
    details = getattr(exc, "details", None) or {}
    messages = (str(c.get("message") or "") for c in details.get("causes") or [])
    return "; ".join(m for m in messages if m and "://" not in m)


def _translate(exc: BaseException, url: str, redact: Any, *, body: bool = False, received: int = 0) -> BaseException:
    """The library's error for a failure of pyreqwest (anything else, a cancellation say, as it is)."""
    from pyreqwest import exceptions as rq

    if not isinstance(exc, rq.PyreqwestError):
        return exc
    where = redact(url)
    reason = _causes(exc) or exc.__class__.__name__
    if isinstance(exc, rq.RequestTimeoutError):
        if body:
            return RetryableError(f"reading {where} timed out after {received} bytes")
        return RetryableError(f"timed out waiting for {where}")
    lowered = reason.lower()
    if isinstance(exc, rq.ConnectError) and ("certificate" in lowered or "tls" in lowered or "ssl" in lowered):
        return tls_error(where, reason)
    if isinstance(exc, rq.RedirectError | rq.BuilderError | rq.StatusError | rq.ClientClosedError) or not isinstance(
        exc, rq.RequestError
    ):
        return TransportError(f"request for {where} failed: {exc.__class__.__name__}: {reason}")
    # The rest is the network's doing (a refused or reset connection, a body cut short): worth another try.
    if body or isinstance(exc, rq.DecodeError | rq.ReadError) or "body" in lowered:
        return RetryableError(f"the body of {where} broke off after {received} bytes: {reason}")
    return RetryableError(f"connection failed for {where}: {exc.__class__.__name__}: {reason}")
