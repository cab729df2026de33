"""The native HTTP transport: one aiohttp session, keep-alive pooling, streaming bodies, S3 listing.

aiohttp is imported, and the session made, on the first request: importing aiohttp costs about a quarter of a
second (it builds two TLS contexts, loading the system's certificates twice), which a run that sends no request
(a resume of a complete mirror, ``plan``, ``verify``) need not pay.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import AsyncIterator, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlencode, urlsplit, urlunsplit

from binance_archive.backends import Body, Transport
from binance_archive.core.files import url_for_key
from binance_archive.core.listing import ListingPage, parse_listing
from binance_archive.errors import ConfigurationError, FileMissingError, RetryableError, TransportError
from binance_archive.hookspecs import hookimpl

if TYPE_CHECKING:
    import aiohttp
    import yarl

    from binance_archive.transports._reqwest import ReqwestClient
else:
    aiohttp = yarl = None  # the modules, once _load_aiohttp() has imported them (before the first request)

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_LISTING_URL", "HttpTransport"]

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://data.binance.vision"
DEFAULT_LISTING_URL = "https://s3-ap-northeast-1.amazonaws.com/data.binance.vision"
_MAX_LISTING_BYTES = 16 * 1024 * 1024  # a real page of 1000 entries is ~300 KB


def _load_aiohttp() -> Any:
    global aiohttp, yarl
    if aiohttp is None:
        import aiohttp as module
        import yarl as urls  # aiohttp's URLs

        yarl = urls
        aiohttp = module
    return aiohttp


def redact(url: str) -> str:
    """A URL without credentials or query string, for messages and logs (signed URLs carry secrets)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _check_url(url: object, what: str) -> str:
    if not isinstance(url, str):
        raise ConfigurationError(f"the {what} must be an http:// or https:// URL, not {url!r}")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for a port that is not a number
    except ValueError:
        parts, port = None, None
    # Refused here, before any I/O, rather than as a failure of every file: no host, white space or control
    # characters in it, a port that is not one, a backslash in the host part (which aiohttp's yarl refuses;
    # checked here so that yarl, 8 ms to import, is not needed unless aiohttp is).
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or "\\" in parts.netloc
        or any(c.isspace() or not c.isprintable() for c in url)
        or (port is not None and not 0 < port < 65536)
    ):
        raise ConfigurationError(f"invalid {what} {_as_typed(url)!r}; expected an http:// or https:// URL")
    return url if parts.query else url.rstrip("/")


def _as_typed(url: str) -> str:
    """``url`` as the user typed it (control characters and all, for the message) less its secrets: no
    ``user:password@`` and no query string. (``urlsplit`` would silently drop tabs and newlines.)"""
    text = url.partition("?")[0]
    scheme, sep, rest = text.partition("://") if "://" in text else ("", "", text)
    host, slash, path = rest.partition("/")
    return f"{scheme}{sep}{host.rpartition('@')[2]}{slash}{path}"


def _split_query(url: str) -> tuple[str, str]:
    """``(url without its query, query)``: a signed base URL keeps its signature on every request."""
    base, _, query = url.partition("?")
    return base.rstrip("/"), query


_CLIENTS = ("aiohttp", "pyreqwest", "auto")


def _check_client(value: object) -> str:
    """The client library to use: ``auto`` resolved to pyreqwest when it is installed, else aiohttp."""
    if value not in _CLIENTS:
        raise ConfigurationError(f"client must be one of {', '.join(_CLIENTS)}, not {value!r}")
    if value == "aiohttp":
        return "aiohttp"
    import importlib.util

    if importlib.util.find_spec("pyreqwest") is None:
        if value == "pyreqwest":
            raise ConfigurationError("client='pyreqwest' needs pyreqwest: pip install 'binance-archive[fast]'")
        return "aiohttp"
    return "pyreqwest"


def _positive(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0 or value == float("inf"):
        raise ConfigurationError(f"{name} must be a positive number of seconds, not {value!r}")
    return float(value)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: rare here, and the backoff will do


class BodySettings:
    """How the transport reads a file's body, with either client: the speed guard's limits, and when and how a
    large body is fetched again on a blocking connection in the engine's worker thread (see ``_blocking``)."""

    __slots__ = ("connect_timeout", "large_body_bytes", "min_speed", "read_timeout", "user_agent", "verify_ssl")

    def __init__(
        self,
        *,
        min_speed: float,
        read_timeout: float,
        connect_timeout: float,
        large_body_bytes: int,
        verify_ssl: bool,
        user_agent: str,
    ) -> None:
        self.min_speed = min_speed
        self.read_timeout = read_timeout  # also the speed guard's window
        self.connect_timeout = connect_timeout
        self.large_body_bytes = large_body_bytes
        self.verify_ssl = verify_ssl
        self.user_agent = user_agent

    def guard(self, url: str) -> SpeedGuard:
        return SpeedGuard(url, min_speed=self.min_speed, window=self.read_timeout)


class HttpBody(Body):
    """What the bodies of both clients share: the speed guard, and the blocking GET of a large body."""

    def __init__(self, url: str, size: int | None, settings: BodySettings) -> None:
        self._url = url  # unredacted: redact() runs only when a message is built, not for every file
        self.size = size
        self._settings = settings
        self._blocking_get: Any = None
        self._released = False
        limit = settings.large_body_bytes
        self.blocking = bool(limit) and size is not None and size > limit

    def blocking_chunks(self) -> Iterator[bytes | memoryview]:
        from binance_archive.transports._blocking import BlockingGet  # http.client: ~10 ms to import

        get = self._blocking_get = BlockingGet(self._url, self._settings, redact=redact)
        if self._released:  # released (the download cancelled) before this thread got here
            get.interrupt()
        return get.chunks(self._settings.guard(self._url))

    def release(self) -> None:
        """Called when the request is left: a blocking GET under way in a worker thread fails at once."""
        self._released = True
        get = self._blocking_get
        if get is not None:
            get.interrupt()


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
            raise RetryableError(f"reading {redact(self._url)} timed out after {guard.received} bytes") from None
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
            raise RetryableError(
                f"the body of {redact(self._url)} broke off after {guard.received} bytes: {exc}"
            ) from None
        guard.finish(self.size)


class SpeedGuard:
    """Counts a body's bytes and gives it up when it comes too slowly or ends short (for both clients).

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
        await release(context, exc_type, exc, tb, lambda error: _translate(error, self._url), body)


async def release(
    context: Any,
    exc_type: type[BaseException] | None,
    exc: BaseException | None,
    tb: TracebackType | None,
    translate: Any,
    body: HttpBody | None,
) -> None:
    """Leave a client's request context (for both clients); releasing the connection failing is a failure of the
    request, turned into the library's error by ``translate``. A blocking GET of ``body`` is stopped first."""
    if body is not None:
        body.release()
    if context is not None:
        try:
            await context.__aexit__(exc_type, exc, tb)
        except Exception as error:
            raise translate(error) from None


def tls_error(where: str, reason: str) -> TransportError:
    """The library's error for a certificate that failed verification (for every client): not retried."""
    return TransportError(
        f"TLS failed for {where}: {reason}; the server's certificate must be valid for its host "
        "(pass verify_ssl=False only for a test server you trust)"
    )


def status_error(status: int, url: str, what: str, retry_after: str | None) -> Exception:
    """The library's error for a status other than 200 (for both clients): 404 is missing, 429 and 5xx are
    retried (honouring Retry-After), anything else fails."""
    if status == 404:
        return FileMissingError(f"{what} not found: {redact(url)}")
    if status == 429 or status >= 500:
        return RetryableError(f"HTTP {status} for {redact(url)}", retry_after=_retry_after(retry_after))
    return TransportError(f"HTTP {status} for {redact(url)}")


def _translate(exc: BaseException, url: str) -> BaseException:
    """The library's error for a failure of aiohttp (anything else, a cancellation say, as it is)."""
    if isinstance(exc, TimeoutError):  # before ClientConnectionError: aiohttp's timeouts are both
        return RetryableError(f"timed out waiting for {redact(url)}")
    if isinstance(exc, aiohttp.ClientSSLError):  # before ClientConnectionError, which it is too: retrying cannot help
        return tls_error(redact(url), _tls_reason(exc))
    if isinstance(exc, aiohttp.ClientConnectionError | aiohttp.ClientPayloadError):
        return RetryableError(f"connection failed for {redact(url)}: {exc.__class__.__name__}: {exc}")
    if isinstance(exc, aiohttp.ClientError):
        return TransportError(f"request for {redact(url)} failed: {exc.__class__.__name__}")
    return exc


class HttpTransport(Transport):
    """Fetches files over HTTP(S) from ``base_url`` and lists them through the public S3 listing.

    Args:
        base_url: where the files are (default ``https://data.binance.vision``).
        listing_url: the S3 bucket URL answering ListObjects (default: the archive's public bucket).
        connect_timeout: seconds to wait for a connection.
        read_timeout: seconds to wait for the next bytes of a response (a stalled server fails after this).
        min_speed: bytes per second a body must average over each ``read_timeout`` window; a slower one (a
            server dripping a few bytes at a time) is given up and retried. 0 turns the check off.
        limit: most connections open at once (default: the engine's concurrency, plus headroom for sidecars).
        verify_ssl: check TLS certificates (on by default; turn off only for a test server).
        user_agent: the User-Agent header.
        client: the HTTP client library: ``auto`` (the default: pyreqwest when it is installed, else aiohttp),
            ``aiohttp``, or ``pyreqwest`` (Rust's reqwest on a thread of its own: about half the event loop's CPU
            per request; ``pip install 'binance-archive[fast]'``).
        large_body_bytes: a file whose response says it is larger than this (8 MiB by default) is fetched again
            on a blocking connection of its own in a worker thread, when the storage can write from one (the
            local file system): one more request, and a large body received for less CPU (see
            docs/performance.md). 0 turns it off.
    """

    name: ClassVar[str] = "http"
    # Small files are bound by latency: each file in flight holds one round trip (zip and sidecar together), so
    # files/s grows with files in flight until the CPU is the limit. On 2 cores at 50 ms a request (pyreqwest),
    # 64 / 72 / 80 / 88 files in flight gave 1,030 / 1,120 / 1,210 / 1,300 files/s, 81 / 78 / 76 / 74% of
    # the bound (docs/performance.md): 80 is about the most that still keeps three quarters of every slot busy.
    default_concurrency: ClassVar[int] = 80

    def __init__(
        self,
        *,
        base_url: str = DEFAULT_BASE_URL,
        listing_url: str = DEFAULT_LISTING_URL,
        connect_timeout: float = 10.0,
        read_timeout: float = 30.0,
        min_speed: float = 1024.0,
        limit: int | None = None,
        verify_ssl: bool = True,
        user_agent: str | None = None,
        client: str = "auto",
        large_body_bytes: int = 8 * 1024 * 1024,
    ) -> None:
        self.base_url = _check_url(base_url, "base URL")
        self.listing_url = _check_url(listing_url, "listing URL")
        self._base, self._base_query = _split_query(self.base_url)
        self._connect_timeout = _positive(connect_timeout, "connect_timeout")
        self._read_timeout = _positive(read_timeout, "read_timeout")
        if isinstance(min_speed, bool) or not isinstance(min_speed, int | float) or not 0 <= min_speed < float("inf"):
            raise ConfigurationError(f"min_speed must be a number of bytes per second (0 or more), not {min_speed!r}")
        self._min_speed = float(min_speed)
        # Options arrive from command lines and configuration files: refuse a wrong type here, naming it, rather
        # than fail later inside aiohttp with a TypeError.
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise ConfigurationError(f"limit must be a whole number of connections of at least 1, not {limit!r}")
        if not isinstance(verify_ssl, bool):
            raise ConfigurationError(f"verify_ssl must be true or false, not {verify_ssl!r}")
        if user_agent is not None and not isinstance(user_agent, str):
            raise ConfigurationError(f"user_agent must be a string, not {user_agent!r}")
        if isinstance(large_body_bytes, bool) or not isinstance(large_body_bytes, int) or large_body_bytes < 0:
            raise ConfigurationError(
                f"large_body_bytes must be a whole number of bytes (0 turns it off), not {large_body_bytes!r}"
            )
        self._auto_client = client == "auto"
        self.client = _check_client(client)
        self._limit = limit
        self._verify_ssl = verify_ssl
        from binance_archive import __version__

        self._headers = {"User-Agent": user_agent or f"binance-archive/{__version__}"}
        self._body_settings = BodySettings(
            min_speed=self._min_speed,
            read_timeout=self._read_timeout,
            connect_timeout=self._connect_timeout,
            large_body_bytes=large_body_bytes,
            verify_ssl=verify_ssl,
            user_agent=self._headers["User-Agent"],
        )
        self._session: aiohttp.ClientSession | None = None
        self._reqwest: ReqwestClient | None = None
        self._opened = False

    def size_for(self, concurrency: int) -> None:
        """Called by the engine: each file in flight may hold two connections (zip and sidecar)."""
        if self._limit is None:
            self._limit = 2 * concurrency

    async def open(self) -> None:
        self._opened = True  # the session is made on the first request (see the module's docstring)

    def import_dependencies(self) -> None:
        if self.client == "pyreqwest":
            import pyreqwest.client  # noqa: F401  (a client is made only after the fork: it starts a thread)
        else:
            _load_aiohttp()

    async def close(self) -> None:
        self._opened = False
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()
        if self._reqwest is not None:
            reqwest, self._reqwest = self._reqwest, None
            await reqwest.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        """The aiohttp session, made on first use while the transport is open."""
        if self._session is None:
            if not self._opened:
                raise TransportError("the HTTP transport is not open; use it inside 'async with'")
            self._session = self._new_session()
        return self._session

    def _new_session(self) -> aiohttp.ClientSession:
        lib = _load_aiohttp()
        ssl_context: ssl.SSLContext | bool = bool(self._verify_ssl)
        connector = lib.TCPConnector(limit=self._limit or 128, ssl=ssl_context, enable_cleanup_closed=True)
        session: aiohttp.ClientSession = lib.ClientSession(
            connector=connector,
            timeout=lib.ClientTimeout(total=None, connect=self._connect_timeout, sock_read=self._read_timeout),
            headers=self._headers,
            auto_decompress=False,
            cookie_jar=lib.DummyCookieJar(),  # the archive sets no cookies; a jar is filtered on every request
        )
        return session

    def _request(self, url: str, *, what: str, body: BodySettings | None = None) -> Any:
        """``async with self._request(url, what=...) as response``: a 200 response (a Body with ``body``), or the
        library's error; through the chosen client."""
        if self.client == "pyreqwest":
            client = self._reqwest_client()
            if client is not None:
                return client.request(url, what, body=body, redact=redact)
        return _Request(self.session, url, what, body=body)

    def _reqwest_client(self) -> ReqwestClient | None:
        """The pyreqwest client, made on first use; ``None`` when ``auto`` had to fall back to aiohttp."""
        if self._reqwest is None:
            if not self._opened:
                raise TransportError("the HTTP transport is not open; use it inside 'async with'")
            from binance_archive.transports._reqwest import ReqwestClient

            try:
                self._reqwest = ReqwestClient(
                    limit=self._limit or 128,
                    connect_timeout=self._connect_timeout,
                    read_timeout=self._read_timeout,
                    verify_ssl=self._verify_ssl,
                    user_agent=self._headers["User-Agent"],
                )
            except RuntimeError as exc:
                # pyreqwest refuses to run in a process forked after it made a client (its Tokio runtime does not
                # survive a fork): a multiprocessing child of an application, say.
                if not self._auto_client:
                    raise TransportError(f"the pyreqwest client cannot run here: {exc}; use client='aiohttp'") from None
                log.info("pyreqwest cannot run in this process (%s); using aiohttp", exc)
                self.client = "aiohttp"
                return None
        return self._reqwest

    def _url(self, key: str) -> str:
        url = url_for_key(self._base, key)
        return f"{url}?{self._base_query}" if self._base_query else url

    def get(self, key: str) -> Any:
        return self._request(self._url(key), what="file", body=self._body_settings)

    async def get_bytes(self, key: str, *, max_size: int) -> bytes:
        # Sidecars are tiny: read them in one go rather than through the chunk iterator.
        url = self._url(key)
        async with self._request(url, what="file") as response:
            return await _read_limited(response, max_size, url)

    async def list(self, prefix: str, *, delimiter: str | None = "/") -> AsyncIterator[ListingPage]:
        marker: str | None = None
        while True:
            query = {"prefix": prefix}
            if delimiter:
                query["delimiter"] = delimiter
            if marker:
                query["marker"] = marker
            base, signed = _split_query(self.listing_url)
            url = f"{base}?{signed + '&' if signed else ''}{urlencode(query)}"
            async with self._request(url, what="listing") as response:
                page = parse_listing(await _read_limited(response, _MAX_LISTING_BYTES, url))
            yield page
            if not page.is_truncated or not page.next_marker:
                return
            if marker is not None and page.next_marker <= marker:
                # S3 lists in key order, so markers only grow; a listing that goes back would loop forever.
                raise TransportError(f"the listing of {prefix!r} went back from {marker!r} to {page.next_marker!r}")
            marker = page.next_marker


async def _read_limited(response: aiohttp.ClientResponse, max_size: int, url: str) -> bytes:
    """Read a whole small body, refusing one that is (or claims to be) larger than ``max_size``.

    ``url`` is redacted here, only for a message.
    """
    from binance_archive.errors import VerificationError

    length = response.content_length
    if length is not None and length > max_size:
        raise VerificationError(f"{redact(url)} is {length} bytes; at most {max_size} expected")
    try:
        if length is not None:
            # The size is known and bounded: one read (a sidecar is ~100 bytes), not a loop of chunks.
            data = await response.read()
        else:
            buffer = bytearray()
            async for chunk in response.content.iter_chunked(65536):
                buffer += chunk
                if len(buffer) > max_size:
                    raise VerificationError(f"{redact(url)} is larger than the {max_size} bytes expected")
            data = bytes(buffer)
    except TimeoutError:
        raise RetryableError(f"reading {redact(url)} timed out") from None
    except Exception as exc:
        # aiohttp's errors (the pyreqwest client raises the library's own); aiohttp may not even be imported.
        if aiohttp is not None and isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ClientConnectionError):
            raise RetryableError(f"the body of {redact(url)} broke off: {exc}") from None
        raise
    if length is not None and len(data) != length:
        raise RetryableError(f"{redact(url)} was truncated: {len(data)} of {length} bytes")
    return data


def _tls_reason(exc: aiohttp.ClientSSLError) -> str:
    """What went wrong in the TLS handshake, in words (the certificate error, not aiohttp's wrapping)."""
    cause = getattr(exc, "certificate_error", None) or getattr(exc, "os_error", None) or exc
    return getattr(cause, "verify_message", None) or getattr(cause, "reason", None) or str(cause)


@hookimpl
def register_transports() -> list[type[Transport]]:
    return [HttpTransport]
