"""The HTTP transport's aiohttp client (``client="aiohttp"``, and ``auto`` where pyreqwest is not installed).

Imported only when this client is chosen: aiohttp costs about a quarter of a second to import (it builds two TLS
contexts, loading the system's certificates twice), which a run that sends no request need not pay.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any

import aiohttp
import yarl  # aiohttp's URLs

from binance_archive.common.urls import redact
from binance_archive.transports.http.body import BodySettings, HttpBody, check_small
from binance_archive.transports.http.client import leave
from binance_archive.transports.http.errors import (
    broke_off,
    connection_failed,
    request_failed,
    status_error,
    timed_out,
    tls_error,
)

__all__ = ["AiohttpClient"]


class AiohttpClient:
    """One aiohttp session with the transport's settings (see :class:`~.client.Client`)."""

    def __init__(self, *, limit: int, settings: BodySettings) -> None:
        connect_timeout, read_timeout = settings.connect_timeout, settings.read_timeout
        verify_ssl, user_agent = settings.verify_ssl, settings.user_agent
        connector = aiohttp.TCPConnector(limit=limit, ssl=bool(verify_ssl), enable_cleanup_closed=True)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=None, connect=connect_timeout, sock_read=read_timeout),
            headers={"User-Agent": user_agent},
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),  # the archive sets no cookies; a jar is filtered on every request
        )

    def file(self, url: str, settings: BodySettings) -> _Request:
        return _Request(self._session, url, "file", body=settings)

    async def read(self, url: str, what: str, max_size: int) -> bytes:
        async with _Request(self._session, url, what) as response:
            length = response.content_length
            check_small(url, max_size, length)
            try:
                if length is not None:
                    # The size is known and bounded: one read (a sidecar is ~100 bytes), not a loop of chunks.
                    data: bytes = await response.read()
                else:
                    buffer = bytearray()
                    async for chunk in response.content.iter_chunked(65536):
                        buffer += chunk
                        check_small(url, max_size, None, buffer)
                    data = bytes(buffer)
            except TimeoutError:
                raise timed_out(url, reading=True) from None
            except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
                raise broke_off(url, str(exc)) from None
            check_small(url, max_size, length, data)
            return data

    async def close(self) -> None:
        await self._session.close()


class _ResponseBody(HttpBody):
    def __init__(self, response: aiohttp.ClientResponse, url: str, settings: BodySettings) -> None:
        super().__init__(url, response.content_length, settings)
        self._response = response

    async def chunks(self) -> AsyncIterator[bytes]:
        guard = self._settings.guard(self._url)
        try:
            # Chunks as they arrived (readchunk pops aiohttp's buffer; iter_chunked(n) would join what is
            # buffered into a copy of up to n bytes).
            async for chunk, _ in self._response.content.iter_chunks():
                if chunk:
                    guard.count(len(chunk))
                    yield chunk
        except TimeoutError:  # before ClientConnectionError: aiohttp's read timeouts are both
            raise timed_out(self._url, received=guard.received) from None
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
            raise broke_off(self._url, str(exc), received=guard.received) from None
        guard.finish(self.size)


class _Request:
    """One GET as an async context manager: entering yields the 200 response (or, for a file, its
    :class:`_ResponseBody`), and turns aiohttp's failures and other statuses into the library's errors.

    A class rather than a generator-based context manager: the engine makes two of these per file, and the
    generator machinery cost more than the rest of this wrapper.
    """

    __slots__ = ("_body", "_context", "_made", "_session", "_url", "_what")

    def __init__(
        self, session: aiohttp.ClientSession, url: str, what: str, *, body: BodySettings | None = None
    ) -> None:
        self._session = session
        self._url = url  # unredacted: redact() (a URL parse) runs only when a message is built
        self._what = what
        self._body = body  # set when the caller wants a Body, not the response
        self._context: Any = None
        self._made: HttpBody | None = None

    async def __aenter__(self) -> Any:
        url = self._url
        try:
            # An ASCII URL is sent as it is (keys are percent-encoded already, and a signed query string must keep
            # its exact bytes); anything else (an internationalised host) is left to yarl to encode.
            target = yarl.URL(url, encoded=True) if url.isascii() else url
            self._context = self._session.get(target, allow_redirects=True)
            response = await self._context.__aenter__()
        except BaseException as exc:
            self._context = None
            raise _translate(exc, url) from None
        status = response.status
        if status != 200:
            context, self._context = self._context, None
            await context.__aexit__(None, None, None)
            raise status_error(status, url, self._what, response.headers.get("Retry-After"))
        if self._body is not None:
            self._made = _ResponseBody(response, url, self._body)
            return self._made
        return response

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        context, self._context = self._context, None
        body, self._made = self._made, None
        await leave(context, exc_type, exc, tb, lambda error: _translate(error, self._url), body)


def _translate(exc: BaseException, url: str) -> BaseException:
    """The library's error for a failure of aiohttp (anything else, a cancellation say, as it is)."""
    if isinstance(exc, TimeoutError):  # before ClientConnectionError: aiohttp's timeouts are both
        return timed_out(url)
    if isinstance(exc, aiohttp.ClientSSLError):  # before ClientConnectionError, which it is too: retrying cannot help
        return tls_error(redact(url), _tls_reason(exc))
    if isinstance(exc, aiohttp.ClientConnectionError | aiohttp.ClientPayloadError):
        return connection_failed(url, f"{exc.__class__.__name__}: {exc}")
    if isinstance(exc, aiohttp.ClientError):
        return request_failed(url, exc.__class__.__name__)
    return exc


def _tls_reason(exc: aiohttp.ClientSSLError) -> str:
    """What went wrong in the TLS handshake, in words (the certificate error, not aiohttp's wrapping)."""
    cause = getattr(exc, "certificate_error", None) or getattr(exc, "os_error", None) or exc
    return getattr(cause, "verify_message", None) or getattr(cause, "reason", None) or str(cause)
