"""The HTTP transport: one client (pyreqwest, the native one or aiohttp), keep-alive pooling, streaming bodies,
S3 listing.

The client is made on the first request, and its library imported then: a run that sends no request (a resume of a
complete mirror, ``plan``, ``verify``) pays for neither.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, ClassVar, Self

from binance_archive.backends import Transport, TransportContext
from binance_archive.common.options import flag, non_negative, seconds, whole_number
from binance_archive.common.urls import check_http_url, split_query
from binance_archive.core.files import url_for_key
from binance_archive.core.listing import ListingPage
from binance_archive.errors import ConfigurationError, TransportError
from binance_archive.hookspecs import hookimpl
from binance_archive.transports.http.body import REFETCH_WITHIN, BodySettings, HttpBody
from binance_archive.transports.http.client import Client
from binance_archive.transports.http.listing import MAX_LISTING_BYTES, listing_pages
from binance_archive.transports.http.tls import load_ca_bundle

__all__ = ["BASE_URL_ENV", "DEFAULT_BASE_URL", "DEFAULT_LISTING_URL", "LISTING_URL_ENV", "HttpTransport"]

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://data.binance.vision"
DEFAULT_LISTING_URL = "https://s3-ap-northeast-1.amazonaws.com/data.binance.vision"
BASE_URL_ENV = "BINANCE_ARCHIVE_BASE_URL"
"""The environment variable that gives ``base_url`` where no option does (set once for workers, containers)."""
LISTING_URL_ENV = "BINANCE_ARCHIVE_LISTING_URL"
"""The environment variable that gives ``listing_url`` where no option does."""
_CLIENTS = ("aiohttp", "pyreqwest", "native", "auto")
_DEFAULT_LIMIT = 128


def _check_client(value: object, base_url: str) -> str:
    """The client to use. ``auto``: over HTTPS, pyreqwest where it is installed, whose work (TLS included) runs on a
    thread of its own, so that one process uses a second core; over plain HTTP (a mirror or proxy of one's own), or
    where pyreqwest is not installed, the native client, which spends the least CPU and memory per file of the
    three (docs/performance.md has the measurements)."""
    if value not in _CLIENTS:
        raise ConfigurationError(f"client must be one of {', '.join(_CLIENTS)}, not {value!r}")
    if value in ("native", "aiohttp"):
        return value
    if value == "auto" and not base_url.lower().startswith("https:"):
        return "native"
    installed = importlib.util.find_spec("pyreqwest") is not None  # a search of sys.path: only where it decides
    if value == "auto":
        return "pyreqwest" if installed else "native"
    if not installed:
        raise ConfigurationError("client='pyreqwest' needs pyreqwest: pip install 'binance-archive[fast]'")
    return value


class HttpTransport(Transport):
    """Fetches files over HTTP(S) from ``base_url`` and lists them through the public S3 listing.

    Args:
        base_url: where the files are (default: the ``BINANCE_ARCHIVE_BASE_URL`` environment variable where it is
            set, else ``https://data.binance.vision``).
        listing_url: the S3 bucket URL answering ListObjects (default: ``BINANCE_ARCHIVE_LISTING_URL`` where it is
            set, else the archive's public bucket). Where ``base_url`` is one of the user's own and the listing is
            the public bucket's, the listing may describe another archive: named symbols are then not checked
            against it (see :attr:`~binance_archive.backends.Transport.listing_is_authoritative`).
        connect_timeout: seconds to wait for a connection.
        read_timeout: seconds to wait for the next bytes of a response (a stalled server fails after this).
        min_speed: bytes per second a body must average over each ``read_timeout`` window; a slower one (a
            server dripping a few bytes at a time) is given up and retried. 0 turns the check off.
        limit: most connections open at once (default: twice the most files the engine keeps in flight, for their
            zips and sidecars, when an Archive builds the transport; else 128).
        verify_ssl: check TLS certificates (on by default; turn off only for a test server).
        ca_bundle: the path of a PEM file of CA certificates to trust in addition to the default trust store (a
            server with a self-signed or private CA's certificate, a TLS-inspecting proxy), for every client alike.
            The default trust store honours ``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` too.
        user_agent: the User-Agent header.
        client: the HTTP client: ``auto`` (the default: over HTTPS pyreqwest where it is installed; over plain
            HTTP, or without pyreqwest, ``native``),
            ``native`` (HTTP/1.1 on asyncio's own connections, the least CPU per file; see :mod:`.native`),
            ``aiohttp``, or ``pyreqwest`` (Rust's reqwest, its work and TLS on a thread of its own;
            ``pip install 'binance-archive[fast]'``). All behave alike; docs/performance.md compares them.
        large_body_bytes: a file whose response says it is larger than this (8 MiB by default) is received in a
            worker thread, when the storage can write from one (the local file system): over plain HTTP the native
            client hands the connection's own socket to the thread; otherwise the GET is sent again on a blocking
            connection of the thread's own, where ``refetch_within`` allows (one more request, and a large body
            received for less CPU; see docs/performance.md). 0 turns it off.
        refetch_within: seconds (0.02 by default) within which a large file's first answer must have come for its
            GET to be sent again: from a server farther away, the round trips of a second GET (a connection, a TLS
            handshake, a request) cost more than the CPU its blocking read saves, so the first answer is read.
            0: never sent again.
    """

    name: ClassVar[str] = "http"
    # Small files are bound by latency: each file in flight holds one round trip (zip and sidecar together), so
    # files/s grows with files in flight until the CPU is the limit. How many that takes depends on the link (80 on
    # loopback at 50 ms, 256 at 200 ms), so the engine starts at 128 and finds the level, up to 256 (s5cmd's
    # workers): from 128 a far link reaches 256 one round earlier than from 80, and where the CPU is the limit
    # the two starts measured alike; docs/performance.md has the measurements that chose these.
    default_concurrency: ClassVar[int] = 128
    default_max_concurrency: ClassVar[int | None] = 256

    def __init__(
        self,
        *,
        base_url: str | None = None,
        listing_url: str | None = None,
        connect_timeout: float = 10.0,
        read_timeout: float = 30.0,
        min_speed: float = 1024.0,
        limit: int | None = None,
        verify_ssl: bool = True,
        ca_bundle: str | os.PathLike[str] | None = None,
        user_agent: str | None = None,
        client: str = "auto",
        large_body_bytes: int = 8 * 1024 * 1024,
        refetch_within: float = REFETCH_WITHIN,
    ) -> None:
        # Options win; the environment gives what they leave out (workers and containers set it once for all).
        self.base_url = _configured_url(base_url, BASE_URL_ENV, DEFAULT_BASE_URL, "base URL")
        self.listing_url = _configured_url(listing_url, LISTING_URL_ENV, DEFAULT_LISTING_URL, "listing URL")
        # Files from a base URL of the user's own, listed by the public bucket: the listing may be of another
        # archive than the files (a partial mirror, a test server), so it cannot call a symbol unknown there.
        self._listing_is_authoritative = self.listing_url != DEFAULT_LISTING_URL or self.base_url == DEFAULT_BASE_URL
        self._base, self._base_query = split_query(self.base_url)
        connect_timeout = seconds(connect_timeout, "connect_timeout")
        read_timeout = seconds(read_timeout, "read_timeout")
        # Options arrive from command lines and configuration files: a wrong type is refused here, naming it,
        # rather than failing later inside a client library with a TypeError.
        if limit is not None:
            whole_number(limit, "limit", what="a whole number of connections of at least 1", at_least=1)
        if user_agent is not None and not isinstance(user_agent, str):
            raise ConfigurationError(f"user_agent must be a string, not {user_agent!r}")
        self._auto_client = client == "auto"
        self.client = _check_client(client, self.base_url)
        self._limit = limit or _DEFAULT_LIMIT
        from binance_archive import __version__

        self._body_settings = BodySettings(
            min_speed=non_negative(min_speed, "min_speed", "bytes per second"),
            read_timeout=read_timeout,
            connect_timeout=connect_timeout,
            large_body_bytes=whole_number(
                large_body_bytes, "large_body_bytes", what="a whole number of bytes (0 turns it off)"
            ),
            verify_ssl=flag(verify_ssl, "verify_ssl"),
            user_agent=user_agent or f"binance-archive/{__version__}",
            ca_pem=load_ca_bundle(ca_bundle, verify_ssl=verify_ssl),
            refetch_within=non_negative(refetch_within, "refetch_within", "seconds"),
        )
        self._client: Client | None = None
        self._opened = False

    @classmethod
    def create(cls, options: Mapping[str, Any], context: TransportContext) -> Self:
        options = dict(options)
        if options.get("limit") is None:
            options["limit"] = 2 * context.concurrency  # each file in flight may hold two: its zip's and sidecar's
        return cls(**options)

    async def open(self) -> None:
        self._opened = True  # the client is made on the first request (see the module's docstring)

    def import_dependencies(self) -> None:
        if self.client == "pyreqwest":
            import pyreqwest.client  # noqa: F401  (a client is made only after the fork: it starts a thread)

            import binance_archive.transports.http.reqwest_client
        elif self.client == "native":
            import binance_archive.transports.http.native
        else:
            import binance_archive.transports.http.aiohttp_client  # noqa: F401

    async def close(self) -> None:
        self._opened = False
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()

    def _get_client(self) -> Client:
        """The client, made on first use while the transport is open."""
        if self._client is None:
            if not self._opened:
                raise TransportError("the HTTP transport is not open; use it inside 'async with'")
            self._client = self._new_client()
        return self._client

    def _new_client(self) -> Client:
        if self.client == "pyreqwest":
            from binance_archive.transports.http.reqwest_client import ReqwestClient

            try:
                return ReqwestClient(limit=self._limit, settings=self._body_settings)
            except RuntimeError as exc:
                # pyreqwest refuses to run in a process forked after it made a client (its Tokio runtime does not
                # survive a fork): a multiprocessing child of an application, say.
                if not self._auto_client:
                    raise TransportError(f"the pyreqwest client cannot run here: {exc}; use client='native'") from None
                log.info("pyreqwest cannot run in this process (%s); using the native client", exc)
                self.client = "native"
        if self.client == "native":
            from binance_archive.transports.http.native import NativeClient

            return NativeClient(limit=self._limit, settings=self._body_settings)
        from binance_archive.transports.http.aiohttp_client import AiohttpClient

        return AiohttpClient(limit=self._limit, settings=self._body_settings)

    def _url(self, key: str) -> str:
        url = url_for_key(self._base, key)
        return f"{url}?{self._base_query}" if self._base_query else url

    def get(self, key: str) -> AbstractAsyncContextManager[HttpBody]:
        return self._get_client().file(self._url(key), self._body_settings)

    async def get_bytes(self, key: str, *, max_size: int) -> bytes:
        # Sidecars are tiny: read them in one go rather than through the chunk iterator.
        return await self._get_client().read(self._url(key), "file", max_size)

    @property
    def listing_is_authoritative(self) -> bool:
        return self._listing_is_authoritative

    async def list(self, prefix: str, *, delimiter: str | None = "/") -> AsyncIterator[ListingPage]:
        async def read(url: str) -> bytes:
            return await self._get_client().read(url, "listing", MAX_LISTING_BYTES)

        async for page in listing_pages(read, self.listing_url, prefix, delimiter):
            yield page


def _configured_url(given: str | None, variable: str, default: str, what: str) -> str:
    """``given``, else the environment's ``variable``, else ``default``: checked, an error naming where it came from."""
    if given is not None:
        return check_http_url(given, what)
    from_environment = os.environ.get(variable, "").strip()
    if from_environment:
        return check_http_url(from_environment, f"{what} (from ${variable})")
    return default


@hookimpl
def register_transports() -> list[type[Transport]]:
    return [HttpTransport]
