"""The one protocol both HTTP client libraries are used through, so that the transport never asks which it has."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, Protocol

from binance_archive.transports.http.body import BodySettings, HttpBody

__all__ = ["Client", "leave"]


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


async def leave(
    context: Any,
    exc_type: type[BaseException] | None,
    exc: BaseException | None,
    tb: TracebackType | None,
    translate: Callable[[BaseException], BaseException],
    body: HttpBody | None,
) -> None:
    """Leave a client's request context (for every client); releasing the connection failing is a failure of the
    request, turned into the library's error by ``translate``. A blocking GET of ``body`` is stopped first."""
    if body is not None:
        body.release()
    if context is not None:
        try:
            await context.__aexit__(exc_type, exc, tb)
        except Exception as error:
            raise translate(error) from None
