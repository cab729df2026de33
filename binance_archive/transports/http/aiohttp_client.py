"""The HTTP transport's aiohttp client (``client="aiohttp"``).

Imported only when this client is chosen: aiohttp costs about a quarter of a second to import (it builds two TLS
contexts, loading the system's certificates twice), which a run that sends no request need not pay.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import yarl  # aiohttp's URLs

from binance_archive.common.urls import redact
from binance_archive.transports.http import errors
from binance_archive.transports.http.body import BodySettings, HttpBody
from binance_archive.transports.http.client import Request, read_whole
from binance_archive.transports.http.tls import ssl_context

__all__ = ["AiohttpClient"]


class AiohttpClient:
    """One aiohttp session with the transport's settings (see :class:`~.client.Client`)."""

    def __init__(self, *, limit: int, settings: BodySettings) -> None:
        self._settings = settings
        # aiohttp's own default context unless certificates of the ca_bundle option are to be trusted beside it.
        tls: Any = settings.verify_ssl
        if settings.verify_ssl and settings.ca_pem:
            tls = ssl_context(True, settings.ca_pem)
        connector = aiohttp.TCPConnector(limit=limit, ssl=tls, enable_cleanup_closed=True)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(
                total=None, connect=settings.connect_timeout, sock_read=settings.read_timeout
            ),
            headers={"User-Agent": settings.user_agent},
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),  # the archive sets no cookies; a jar is filtered on every request
        )

    def file(self, url: str, settings: BodySettings) -> _Request:
        return _Request(self._session, url, "file", settings)

    async def read(self, url: str, what: str, max_size: int) -> bytes:
        async with _Request(self._session, url, what, None) as response:
            try:
                return await read_whole(
                    url,
                    max_size,
                    response.content_length,
                    response.read,
                    lambda: response.content.iter_chunked(65536),
                    self._settings,
                )
            except TimeoutError:
                raise errors.timed_out(url, reading=True) from None
            except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
                raise errors.broke_off(url, str(exc)) from None

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
            raise errors.timed_out(self._url, received=guard.received) from None
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
            raise errors.broke_off(self._url, str(exc), received=guard.received) from None
        guard.finish(self.size)


class _Request(Request):
    """One GET through aiohttp's session."""

    __slots__ = ("_session",)

    def __init__(self, session: aiohttp.ClientSession, url: str, what: str, body: BodySettings | None) -> None:
        super().__init__(url, what, body)
        self._session = session

    def _send(self) -> Any:
        url = self._url
        # An ASCII URL is sent as it is (keys are percent-encoded already, and a signed query string must keep its
        # exact bytes); anything else (an internationalised host) is left to yarl to encode.
        return self._session.get(yarl.URL(url, encoded=True) if url.isascii() else url, allow_redirects=True)

    def _status(self, response: aiohttp.ClientResponse) -> tuple[int, str | None]:
        return response.status, response.headers.get("Retry-After")

    def _wrap(self, response: aiohttp.ClientResponse, settings: BodySettings) -> HttpBody:
        return _ResponseBody(response, self._url, settings)

    def _translate(self, exc: BaseException) -> BaseException:
        return _translate(exc, self._url)


def _translate(exc: BaseException, url: str) -> BaseException:
    """The library's error for a failure of aiohttp (anything else, a cancellation say, as it is)."""
    if isinstance(exc, TimeoutError):  # before ClientConnectionError: aiohttp's timeouts are both
        return errors.timed_out(url)
    if isinstance(exc, aiohttp.ClientSSLError):  # before ClientConnectionError, which it is too: retrying cannot help
        return errors.tls_error(redact(url), _tls_reason(exc))
    if isinstance(exc, aiohttp.ClientConnectionError | aiohttp.ClientPayloadError):
        return errors.connection_failed(url, errors.reason(exc))
    if isinstance(exc, aiohttp.ClientError):
        return errors.request_failed(url, exc.__class__.__name__)
    return exc


def _tls_reason(exc: aiohttp.ClientSSLError) -> str:
    """What went wrong in the TLS handshake, in words (the certificate error, not aiohttp's wrapping)."""
    cause = getattr(exc, "certificate_error", None) or getattr(exc, "os_error", None) or exc
    return getattr(cause, "verify_message", None) or getattr(cause, "reason", None) or str(cause)
