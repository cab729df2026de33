"""The one protocol both HTTP client libraries are used through, so that the transport never asks which it has."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, Protocol, TypeVar

from binance_archive.common.urls import redact
from binance_archive.errors import RetryableError
from binance_archive.transports.http.body import BodySettings, HttpBody, check_small
from binance_archive.transports.http.errors import status_error

__all__ = ["Client", "Request", "honouring_cancel", "read_whole"]

_T = TypeVar("_T")


class Client(Protocol):
    """One client library (aiohttp's session, pyreqwest's client) with the transport's settings.

    Both send the same requests (no proxy from the environment, no cookies, no decompression, redirects
    followed) and raise only the library's errors, worded by :mod:`.errors`.
    """

    def file(self, url: str, settings: BodySettings) -> AbstractAsyncContextManager[HttpBody]:
        """GET ``url``: yields its 200 response as a body read chunk by chunk, released on exit."""

    async def read(self, url: str, what: str, max_size: int) -> bytes:
        """GET ``url`` and read the whole small body (a sidecar, a listing page) of at most ``max_size`` bytes;
        ``what`` names it in a 404's error."""

    async def close(self) -> None:
        """Close every connection."""


class Request:
    """One GET as an async context manager, for either client: entering yields the 200 response (or, for a file, its
    body), and turns the library's failures and other statuses into the library's errors; leaving releases it.

    A client subclasses it with its library's part: :meth:`_send`, :meth:`_status`, :meth:`_wrap` and
    :meth:`_translate`. A class rather than a generator-based context manager: the engine makes two of these per
    file, and the generator machinery cost more than the rest of this wrapper.
    """

    __slots__ = ("_body", "_context", "_made", "_url", "_what")

    def __init__(self, url: str, what: str, body: BodySettings | None) -> None:
        self._url = url  # unredacted: redact() (a URL parse) runs only when a message is built
        self._what = what
        self._body = body  # set when the caller wants a Body, not the response
        self._context: Any = None
        self._made: HttpBody | None = None

    def _send(self) -> Any:
        """The library's request, as an async context manager that yields its response once the headers are in."""
        raise NotImplementedError

    def _status(self, response: Any) -> tuple[int, str | None]:
        """The response's status and its Retry-After header."""
        raise NotImplementedError

    def _wrap(self, response: Any, settings: BodySettings) -> HttpBody:
        """The response as a file's body."""
        raise NotImplementedError

    def _translate(self, exc: BaseException) -> BaseException:
        """The library's error for a failure of the request (anything else, a cancellation say, as it is)."""
        raise NotImplementedError

    async def __aenter__(self) -> Any:
        task = asyncio.current_task()
        requested = task.cancelling() if task is not None else 0
        sent = time.monotonic()
        try:
            self._context = self._send()
            response = await self._context.__aenter__()
        except BaseException as exc:
            self._context = None
            raise self._translate(exc) from None
        if task is not None and task.cancelling() > requested:
            # Cancelled while the request was under way, and answered all the same (see honouring_cancel): the
            # response is released and the cancellation honoured.
            context, self._context = self._context, None
            with contextlib.suppress(Exception):
                await context.__aexit__(None, None, None)
            raise asyncio.CancelledError
        status, retry_after = self._status(response)
        if status != 200:
            context, self._context = self._context, None
            await context.__aexit__(None, None, None)
            raise status_error(status, self._url, self._what, retry_after)
        if self._body is not None:
            made = self._made = self._wrap(response, self._body)
            if made.blocking and time.monotonic() - sent > self._body.refetch_within:
                made.answered_slowly()
            return made
        return response

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # Releasing the connection failing is a failure of the request; a blocking GET of the body stops first.
        context, self._context = self._context, None
        body, self._made = self._made, None
        if body is not None:
            body.release()
        if context is not None:
            try:
                await context.__aexit__(exc_type, exc, tb)
            except Exception as error:
                raise self._translate(error) from None


async def read_whole(
    url: str,
    max_size: int,
    length: int | None,
    whole: Callable[[], Awaitable[bytes]],
    chunks: Callable[[], AsyncIterator[bytes]] | None,
    settings: BodySettings,
) -> bytes:
    """A small body (a sidecar, a listing page) read whole, for either client: in one read where its length is known
    (and bounded), else chunk by chunk (``chunks``, which a caller that always knows the length leaves out), refused
    once it outgrows ``max_size``. The caller translates the library's errors.

    It must be whole within one read timeout plus the time its size takes at ``min_speed``: a server dripping a
    sidecar a byte at a time (never silent for a read timeout) is given up and retried, as a file's body would be.
    """
    check_small(url, max_size, length)
    limit = None
    if settings.min_speed:
        limit = settings.read_timeout + (length if length is not None else max_size) / settings.min_speed
    try:
        async with asyncio.timeout(limit) as scope:
            if length is not None:
                data = await whole()  # a sidecar is ~100 bytes: one read, not a loop of chunks
            else:
                assert chunks is not None, "a body of unknown length is read chunk by chunk"
                buffer = bytearray()
                async for chunk in chunks():
                    buffer += chunk
                    check_small(url, max_size, None, buffer)
                data = bytes(buffer)
    except TimeoutError:
        if not scope.expired():
            raise  # the client's own read timeout
        raise RetryableError(
            f"{redact(url)} came too slowly: not whole after {limit:.1f} s (at least {settings.min_speed:g} bytes/s "
            "expected; see the min_speed option)"
        ) from None
    check_small(url, max_size, length, data)
    return data


async def honouring_cancel(awaitable: Awaitable[_T]) -> _T:
    """``await awaitable``, and raise CancelledError if the task was cancelled meanwhile, even where the library
    answered instead.

    pyreqwest 0.15 lets a cancelled await return its result about one time in four (a response, a chunk: measured
    with 50 requests in flight cancelled together), and the cancellation is then lost: a download told to stop by
    Ctrl-C went on for seconds, its workers starting new files. A cancellation counted on the task
    (:meth:`asyncio.Task.cancelling`) while the await ran, with no CancelledError, is one of those.
    """
    task = asyncio.current_task()
    requested = task.cancelling() if task is not None else 0
    result = await awaitable
    if task is not None and task.cancelling() > requested:
        raise asyncio.CancelledError
    return result
