"""The native HTTP transport: one aiohttp session, keep-alive pooling, streaming bodies, S3 listing."""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import ClassVar
from urllib.parse import urlencode, urlsplit, urlunsplit

import aiohttp

from binance_archive.backends import Body, Transport
from binance_archive.core.files import url_for_key
from binance_archive.core.listing import ListingPage, parse_listing
from binance_archive.errors import ConfigurationError, FileMissingError, RetryableError, TransportError
from binance_archive.hookspecs import hookimpl

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_LISTING_URL", "HttpTransport"]

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://data.binance.vision"
DEFAULT_LISTING_URL = "https://s3-ap-northeast-1.amazonaws.com/data.binance.vision"
_MAX_LISTING_BYTES = 16 * 1024 * 1024  # a real page of 1000 entries is ~300 KB
_READ_SIZE = 256 * 1024


def redact(url: str) -> str:
    """A URL without credentials or query string, for messages and logs (signed URLs carry secrets)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _check_url(url: str, what: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(f"invalid {what} {redact(url)!r}; expected an http:// or https:// URL")
    return url.rstrip("/")


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: rare here, and the backoff will do


class _ResponseBody(Body):
    def __init__(self, response: aiohttp.ClientResponse, url: str) -> None:
        self._response = response
        self._url = url
        self.size = response.content_length

    async def chunks(self) -> AsyncIterator[bytes]:
        received = 0
        try:
            async for chunk in self._response.content.iter_chunked(_READ_SIZE):
                received += len(chunk)
                yield chunk
        except TimeoutError:  # before ClientConnectionError: aiohttp's read timeouts are both
            raise RetryableError(f"reading {self._url} timed out after {received} bytes") from None
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
            raise RetryableError(f"the body of {self._url} broke off after {received} bytes: {exc}") from None
        if self.size is not None and received != self.size:
            raise RetryableError(f"{self._url} was truncated: {received} of {self.size} bytes")


class HttpTransport(Transport):
    """Fetches files over HTTP(S) from ``base_url`` and lists them through the public S3 listing.

    Args:
        base_url: where the files are (default ``https://data.binance.vision``).
        listing_url: the S3 bucket URL answering ListObjects (default: the archive's public bucket).
        connect_timeout: seconds to wait for a connection.
        read_timeout: seconds to wait for the next bytes of a response (a stalled server fails after this).
        limit: most connections open at once (default: the engine's concurrency, plus headroom for sidecars).
        verify_ssl: check TLS certificates (on by default; turn off only for a test server).
        user_agent: the User-Agent header.
    """

    name: ClassVar[str] = "http"
    default_concurrency: ClassVar[int] = 64

    def __init__(
        self,
        *,
        base_url: str = DEFAULT_BASE_URL,
        listing_url: str = DEFAULT_LISTING_URL,
        connect_timeout: float = 10.0,
        read_timeout: float = 30.0,
        limit: int | None = None,
        verify_ssl: bool = True,
        user_agent: str | None = None,
    ) -> None:
        self.base_url = _check_url(base_url, "base URL")
        self.listing_url = _check_url(listing_url, "listing URL")
        if connect_timeout <= 0 or read_timeout <= 0:
            raise ConfigurationError("timeouts must be positive numbers of seconds")
        self._timeout = aiohttp.ClientTimeout(total=None, connect=connect_timeout, sock_read=read_timeout)
        self._limit = limit
        self._verify_ssl = verify_ssl
        from binance_archive import __version__

        self._headers = {"User-Agent": user_agent or f"binance-archive/{__version__}"}
        self._session: aiohttp.ClientSession | None = None

    def size_for(self, concurrency: int) -> None:
        """Called by the engine: each file in flight may hold two connections (zip and sidecar)."""
        if self._limit is None:
            self._limit = 2 * concurrency

    async def open(self) -> None:
        if self._session is not None:
            return
        ssl_context: ssl.SSLContext | bool = bool(self._verify_ssl)
        connector = aiohttp.TCPConnector(limit=self._limit or 128, ssl=ssl_context, enable_cleanup_closed=True)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=self._timeout, headers=self._headers, auto_decompress=False
        )

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise TransportError("the HTTP transport is not open; use it inside 'async with'")
        return self._session

    @asynccontextmanager
    async def _request(self, url: str, *, what: str) -> AsyncIterator[aiohttp.ClientResponse]:
        shown = redact(url)
        try:
            async with self.session.get(url, allow_redirects=True) as response:
                status = response.status
                if status == 404:
                    raise FileMissingError(f"{what} not found: {shown}")
                if status == 429 or status >= 500:
                    retry_after = _retry_after(response.headers.get("Retry-After"))
                    raise RetryableError(f"HTTP {status} for {shown}", retry_after=retry_after)
                if status != 200:
                    raise TransportError(f"HTTP {status} for {shown}")
                yield response
        except TimeoutError:  # before ClientConnectionError: aiohttp's timeouts are both
            raise RetryableError(f"timed out waiting for {shown}") from None
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            raise RetryableError(f"connection failed for {shown}: {exc.__class__.__name__}: {exc}") from None
        except aiohttp.ClientError as exc:
            raise TransportError(f"request for {shown} failed: {exc.__class__.__name__}") from None

    @asynccontextmanager
    async def get(self, key: str) -> AsyncIterator[Body]:
        url = url_for_key(self.base_url, key)
        async with self._request(url, what="file") as response:
            yield _ResponseBody(response, redact(url))

    async def get_bytes(self, key: str, *, max_size: int) -> bytes:
        # Sidecars are tiny: read them in one go rather than through the chunk iterator.
        url = url_for_key(self.base_url, key)
        async with self._request(url, what="file") as response:
            return await _read_limited(response, max_size, redact(url))

    async def list(self, prefix: str, *, delimiter: str | None = "/") -> AsyncIterator[ListingPage]:
        marker: str | None = None
        while True:
            query = {"prefix": prefix}
            if delimiter:
                query["delimiter"] = delimiter
            if marker:
                query["marker"] = marker
            url = f"{self.listing_url}?{urlencode(query)}"
            async with self._request(url, what="listing") as response:
                page = parse_listing(await _read_limited(response, _MAX_LISTING_BYTES, redact(url)))
            yield page
            if not page.is_truncated or not page.next_marker or page.next_marker == marker:
                return
            marker = page.next_marker


async def _read_limited(response: aiohttp.ClientResponse, max_size: int, url: str) -> bytes:
    """Read a whole small body, refusing one that is (or claims to be) larger than ``max_size``."""
    from binance_archive.errors import VerificationError

    if response.content_length is not None and response.content_length > max_size:
        raise VerificationError(f"{url} is {response.content_length} bytes; at most {max_size} expected")
    data = bytearray()
    try:
        async for chunk in response.content.iter_chunked(65536):
            data += chunk
            if len(data) > max_size:
                raise VerificationError(f"{url} is larger than the {max_size} bytes expected")
    except TimeoutError:
        raise RetryableError(f"reading {url} timed out") from None
    except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
        raise RetryableError(f"the body of {url} broke off: {exc}") from None
    if response.content_length is not None and len(data) != response.content_length:
        raise RetryableError(f"{url} was truncated: {len(data)} of {response.content_length} bytes")
    return bytes(data)


@hookimpl
def register_transports() -> list[type[Transport]]:
    return [HttpTransport]
