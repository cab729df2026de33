"""What the fake server saw: :class:`Stats`, and the aiohttp server that counts connections into it."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import attrs
from aiohttp import web
from aiohttp.web_protocol import RequestHandler

__all__ = ["CountingServer", "Stats"]


@attrs.define
class Stats:
    """What the server saw. ``reset()`` zeroes the counts (the peaks restart from the current values).

    Attributes:
        requests: every request.
        by_method: requests per HTTP method.
        by_key: file requests per key (sidecars under their own key).
        by_status: responses per HTTP status (resets send none and are not counted here).
        zip_requests: requests for ``.zip`` keys.
        checksum_requests: requests for ``.CHECKSUM`` keys.
        listing_requests: listing requests.
        other_requests: anything else.
        bytes_sent: body bytes written (file bodies and listings).
        faults: faults injected, by kind (``error``, ``429``, ``shed`` (refused by ``max_in_flight``), ``reset``,
            ``fail_first``, ``missing``, ``truncate``, ``corrupt``, ``stall``, ``drip``).
        connections: connections open now.
        max_connections: the most connections open at once.
        connections_total: connections opened.
        in_flight: requests being answered now.
        max_in_flight: the most requests answered at once.
    """

    requests: int = 0
    by_method: Counter[str] = attrs.field(factory=Counter)
    by_key: Counter[str] = attrs.field(factory=Counter)
    by_status: Counter[int] = attrs.field(factory=Counter)
    zip_requests: int = 0
    checksum_requests: int = 0
    listing_requests: int = 0
    other_requests: int = 0
    bytes_sent: int = 0
    faults: Counter[str] = attrs.field(factory=Counter)
    connections: int = 0
    max_connections: int = 0
    connections_total: int = 0
    in_flight: int = 0
    max_in_flight: int = 0

    def reset(self) -> None:
        """Zero every count; the peaks restart from what is open now."""
        self.requests = self.zip_requests = self.checksum_requests = 0
        self.listing_requests = self.other_requests = self.bytes_sent = self.connections_total = 0
        for counter in (self.by_method, self.by_key, self.by_status, self.faults):
            counter.clear()
        self.max_connections = self.connections
        self.max_in_flight = self.in_flight

    def _connected(self) -> None:
        self.connections += 1
        self.connections_total += 1
        self.max_connections = max(self.max_connections, self.connections)

    def _disconnected(self) -> None:
        self.connections = max(0, self.connections - 1)


class CountingServer(web.Server):
    """aiohttp's low-level server, counting open connections into ``stats``."""

    def __init__(self, handler: Any, stats: Stats, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._stats = stats

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        self._stats._connected()

    def connection_lost(self, handler: RequestHandler, exc: BaseException | None = None) -> None:
        super().connection_lost(handler, exc)
        self._stats._disconnected()
