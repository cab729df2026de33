"""The HTTP transport's pyreqwest client (``client="pyreqwest"``, and ``auto`` over HTTPS where it is installed).

`pyreqwest <https://pypi.org/project/pyreqwest/>`_ runs the HTTP work (connections, parsing, TLS) on its own
Tokio thread and hands the event loop finished responses and chunks. A mirror of small files is bound by the
CPU of the event loop's thread, and there a request through pyreqwest costs about half of one through aiohttp
(see docs/performance.md).

This module is imported only when this client is chosen. Its requests behave as the aiohttp client's do: the
same statuses turned into the same errors, no proxy from the environment, no cookies, no decompression, the
same timeouts and the same guard against a body that drips.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import AsyncIterator
from typing import Any

from binance_archive.common.urls import redact
from binance_archive.transports.http import errors
from binance_archive.transports.http.body import WHOLE_UP_TO, BodySettings, HttpBody
from binance_archive.transports.http.client import Request, honouring_cancel, read_whole

__all__ = ["ReqwestClient"]

log = logging.getLogger(__name__)


class ReqwestClient:
    """One pyreqwest client with the transport's settings (see :class:`~.client.Client`)."""

    def __init__(self, *, limit: int, settings: BodySettings) -> None:
        from pyreqwest.client import ClientBuilder

        self._settings = settings
        builder = (
            ClientBuilder()
            .max_connections(limit)
            .connect_timeout(dt.timedelta(seconds=settings.connect_timeout))
            .read_timeout(dt.timedelta(seconds=settings.read_timeout))
            .user_agent(settings.user_agent)
            .no_proxy()  # as aiohttp's session: proxies from the environment are not used
            .default_cookie_store(False)
            .gzip(False)  # bodies are stored as sent: a zip is hashed byte for byte against its sidecar
            .brotli(False)
            .zstd(False)
            .deflate(False)
            .follow_redirects(True)
            .max_redirects(10)
        )
        if not settings.verify_ssl:
            builder = builder.danger_accept_invalid_certs(True)
        elif settings.ca_pem:
            builder = builder.add_root_certificate_pem(settings.ca_pem.encode("ascii"))  # every one of a bundle
        self._client = builder.build()
        self.whole_reads = True
        """Whether a small body is read in one go (see :meth:`_ReqwestBody._whole`); off for the rest of the run
        once one was not whole within a read timeout."""

    def file(self, url: str, settings: BodySettings) -> _Request:
        return _Request(self, url, "file", settings)

    async def read(self, url: str, what: str, max_size: int) -> bytes:
        async with _Request(self, url, what, None) as response:
            reader = response.body_reader

            async def whole() -> bytes:
                return bytes(await honouring_cancel(reader.bytes()))

            async def chunks() -> AsyncIterator[bytes]:
                while (chunk := await honouring_cancel(reader.read_chunk())) is not None:
                    yield bytes(chunk)

            try:
                return await read_whole(url, max_size, _content_length(response), whole, chunks, self._settings)
            except BaseException as exc:
                raise _translate(exc, url, body=True) from None

    async def close(self) -> None:
        await self._client.close()


class _ReqwestBody(HttpBody):
    """A file's body: one read where it is small and its length known (see :meth:`_whole`), else chunk by chunk as
    received."""

    # pyreqwest reads on its Tokio thread and completes each read on whichever event loop awaited it.
    loop_free = True

    def __init__(self, response: Any, url: str, settings: BodySettings, owner: ReqwestClient) -> None:
        super().__init__(url, _content_length(response), settings)
        self._response = response
        self._owner = owner

    async def chunks(self) -> AsyncIterator[bytes]:
        reader = self._response.body_reader
        if self.size is not None and self.size <= WHOLE_UP_TO and self._owner.whole_reads:
            yield await self._whole(reader, self.size)
            return
        guard = self._settings.guard(self._url)
        while True:
            try:
                chunk = await honouring_cancel(reader.read_chunk())
            except BaseException as exc:
                raise _translate(exc, self._url, body=True, received=guard.received) from None
            if chunk is None:
                break
            data = bytes(chunk)
            guard.count(len(data))
            yield data
        guard.finish(self.size)

    async def _whole(self, reader: Any, size: int) -> bytes:
        """A small body of known length in one read: pyreqwest hands each chunk from its thread to the event loop,
        and a 60 KB zip came in 4 chunks at 50 ms (a wake-up of the loop each); in one read it is one.

        One read shows no progress until it ends, so the speed guard, which gives up a body that drips after one
        read timeout, cannot watch it. So the first body not whole within a read timeout turns these reads off for
        the rest of the run (the client's ``whole_reads``): later bodies are read chunk by chunk under the guard. That
        body itself must be whole within the time :func:`~.client.read_whole` gives a sidecar (the read timeout
        plus its size at ``min_speed``), else it is given up as one that drips.
        """

        async def whole() -> bytes:
            data = await honouring_cancel(reader.read(size + 1))  # None: the body was empty
            return bytes(data) if data is not None else b""

        settings = self._settings
        watch = None
        if settings.min_speed:
            watch = asyncio.get_running_loop().call_later(settings.read_timeout, _slow_link, self._owner, self._url)
        try:
            return await read_whole(self._url, size, size, whole, None, settings)
        except BaseException as exc:  # pyreqwest's errors translated (too slow, or short: the library's already)
            raise _translate(exc, self._url, body=True, received=0) from None
        finally:
            if watch is not None:
                watch.cancel()


def _slow_link(owner: ReqwestClient, url: str) -> None:
    if owner.whole_reads:
        owner.whole_reads = False
        log.info(
            "%s is not whole after a read timeout: bodies are read chunk by chunk from now on (the speed guard)",
            redact(url),
        )


class _Request(Request):
    """One GET through pyreqwest's client."""

    __slots__ = ("_owner",)

    def __init__(self, owner: ReqwestClient, url: str, what: str, body: BodySettings | None) -> None:
        super().__init__(url, what, body)
        self._owner = owner

    def _send(self) -> Any:
        # Entered as soon as the headers are in, as aiohttp's: pyreqwest would otherwise read up to 64 KB on entering,
        # before the status and the length are looked at (a listing claiming a gigabyte is refused unread) and where
        # no speed check runs (a body dripping a byte at a time would be waited out).
        return self._owner._client.get(self._url).streamed_read_buffer_limit(0).build_streamed()

    def _status(self, response: Any) -> tuple[int, str | None]:
        return response.status, response.get_header("Retry-After")

    def _wrap(self, response: Any, settings: BodySettings) -> HttpBody:
        return _ReqwestBody(response, self._url, settings, self._owner)

    def _translate(self, exc: BaseException) -> BaseException:
        return _translate(exc, self._url)


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


def _translate(exc: BaseException, url: str, *, body: bool = False, received: int = 0) -> BaseException:
    """The library's error for a failure of pyreqwest (anything else, a cancellation say, as it is)."""
    from pyreqwest import exceptions as rq

    if not isinstance(exc, rq.PyreqwestError):
        return exc
    reason = _causes(exc) or exc.__class__.__name__
    if isinstance(exc, rq.RequestTimeoutError):
        return errors.timed_out(url, received=received) if body else errors.timed_out(url)
    lowered = reason.lower()
    if isinstance(exc, rq.ConnectError) and ("certificate" in lowered or "tls" in lowered or "ssl" in lowered):
        return errors.tls_error(redact(url), reason)
    if isinstance(exc, rq.RedirectError | rq.BuilderError | rq.StatusError | rq.ClientClosedError) or not isinstance(
        exc, rq.RequestError
    ):
        return errors.request_failed(url, f"{exc.__class__.__name__}: {reason}")
    # The rest is the network's doing (a refused or reset connection, a body cut short): worth another try.
    if body or isinstance(exc, rq.DecodeError | rq.ReadError) or "body" in lowered:
        return errors.broke_off(url, reason, received=received)
    return errors.connection_failed(url, f"{exc.__class__.__name__}: {reason}")
