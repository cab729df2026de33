"""One HTTP/1.1 connection of the native client, as an asyncio protocol: the answer to its one request at a time is
parsed in the callback that receives it (:mod:`.wire`), and whoever reads it waits on one future at a time."""

from __future__ import annotations

import asyncio
import collections
import os
import socket
from collections.abc import Callable
from typing import Any

from binance_archive.transports.http.errors import reason
from binance_archive.transports.http.native.wire import MAX_HEAD, ChunkedBody, ResponseHead, WireError, head_end

__all__ = ["PAUSE_AT", "Connection", "Lost", "Origin"]

PAUSE_AT = 4 * 1024 * 1024
"""Bytes received and not yet read above which the socket is paused; it resumes once the reader has taken them."""
Origin = tuple[str, str, int]
"""A connection's scheme, host and port."""


class Lost(Exception):
    """The connection closed (or broke) before the answer was whole; ``answered`` once any of it had come."""

    def __init__(self, reason: str, *, answered: bool) -> None:
        super().__init__(reason)
        self.answered = answered


class Connection(asyncio.Protocol):
    """One HTTP/1.1 connection, one request at a time: the response's head and body are parsed as they arrive,
    and whoever reads them waits on one future at a time (:meth:`head`, :meth:`take`)."""

    __slots__ = (
        "_buffered",
        "_chunked",
        "_chunks",
        "_done",
        "_error",
        "_head_bytes",
        "_left",
        "_loop",
        "_on_close",
        "_paused",
        "_transport",
        "_waiter",
        "busy",
        "closed",
        "head_seen",
        "origin",
        "response",
    )

    def __init__(self, origin: Origin, loop: asyncio.AbstractEventLoop, on_close: Callable[[Connection], None]) -> None:
        self.origin = origin
        self._loop = loop
        self._on_close = on_close  # told once the connection is closed, by either side
        self._transport: Any = None
        self._waiter: asyncio.Future[None] | None = None
        self.closed = False
        self.busy = False
        self._head_bytes = bytearray()
        self._chunks: collections.deque[bytes] = collections.deque()
        self._reset()

    def _reset(self) -> None:
        self._head_bytes.clear()
        self.response: ResponseHead | None = None
        self.head_seen = False  # any byte of the answer has come
        self._chunks.clear()
        self._buffered = 0
        self._left = -1  # bytes of a Content-Length body still to come; -1 for a body framed otherwise
        self._chunked: ChunkedBody | None = None
        self._done = False  # the body is whole
        self._error: BaseException | None = None
        self._paused = False

    # -- the protocol's side, called by the event loop ----------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self._transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._on_close(self)
        if self.busy and not self._done and self._error is None:
            if exc is None and self.response is not None and self._left < 0 and self._chunked is None:
                self._done = True  # a body without a length ends with its connection (closed, not broken)
            else:
                why = reason(exc) if exc else "the server closed the connection"
                self._error = Lost(why, answered=self.head_seen)
        self._wake()

    def data_received(self, data: bytes) -> None:
        if not self.busy or self._done or self._error is not None:
            self.close()  # bytes nobody asked for: this connection cannot be trusted with another request
            return
        self.head_seen = True
        try:
            if self.response is None:
                data = self._read_head(data)
                if self.response is None:
                    return
            if data:
                self._read_body(data)
        except WireError as exc:
            self._error = exc
            self.close()
        self._wake()

    def _read_head(self, data: bytes) -> bytes:
        """Add ``data`` to the head; once the head is whole, parse it and return the body's bytes that came with it."""
        buffer = self._head_bytes
        if not buffer:  # the usual case: the whole head in one read, parsed from it without a copy
            end, body = head_end(data)
            if 0 <= end <= MAX_HEAD:
                head = ResponseHead(data[:end])
                if not 100 <= head.status < 200:
                    self._answer(head)
                    return data[body:]
        buffer += data
        while True:
            end, body = head_end(buffer)
            if end > MAX_HEAD or (end < 0 and len(buffer) > MAX_HEAD):
                raise WireError(f"the response's head is larger than {MAX_HEAD} bytes")
            if end < 0:
                return b""
            head = ResponseHead(bytes(buffer[:end]))
            del buffer[:body]
            if 100 <= head.status < 200:  # an interim answer (100 Continue, 103 Early Hints): the real one follows
                continue
            self._answer(head)
            rest = bytes(buffer)
            buffer.clear()
            return rest

    def _answer(self, head: ResponseHead) -> None:
        self.response = head
        if head.chunked:
            self._chunked = ChunkedBody()
        elif head.length is not None:
            self._left = head.length
            self._done = not head.length

    def _read_body(self, data: bytes) -> None:
        if self._chunked is not None:
            pieces = self._chunked.feed(data)
            if self._chunked.done:
                self._done = True
                if self._chunked.extra:
                    raise WireError("bytes after the end of a chunked body")
            for piece in pieces:
                self._keep(piece)
            return
        if self._left >= 0:
            if len(data) > self._left:
                raise WireError("the body is longer than its Content-Length")
            self._left -= len(data)
            self._done = not self._left
        self._keep(data)

    def _keep(self, data: bytes) -> None:
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > PAUSE_AT and not self._paused and not self._done:
            self._paused = True
            self._transport.pause_reading()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- the request's side --------------------------------------------------------------------------------------

    def send(self, request: bytes) -> None:
        """Send ``request``; raises Lost where the connection closed before it could go out."""
        self._reset()
        self.busy = True
        if self.closed or self._transport.is_closing():
            raise Lost("the connection was closed before the request went out", answered=False)
        try:
            self._transport.write(request)
        except (OSError, RuntimeError) as exc:  # uvloop refuses a write to a transport it has closed
            raise Lost(reason(exc), answered=False) from None

    async def _wait(self, silence: float) -> None:
        """Until the protocol has news (a head, bytes, the end, an error); TimeoutError after ``silence`` seconds
        without any (the read timeout: a wait per read, not a bound on the whole answer)."""
        waiter = self._waiter = self._loop.create_future()
        timer = self._loop.call_later(silence, _expire, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    async def head(self, silence: float) -> ResponseHead:
        """The response's head, once it is whole."""
        while self.response is None:
            if self._error is not None:
                raise self._error
            await self._wait(silence)
        return self.response

    async def take(self, silence: float) -> list[bytes]:
        """The body's bytes received since the last call, waiting for some; ``[]`` once the body is whole."""
        while not self._chunks:
            if self._error is not None:
                raise self._error
            if self._done:
                return []
            await self._wait(silence)
        pieces = list(self._chunks)
        self._chunks.clear()
        self._buffered = 0
        if self._paused:
            self._paused = False
            self._transport.resume_reading()
        return pieces

    @property
    def reusable(self) -> bool:
        """Whether the answer has come to its end (read or not: a 404's page need not be) and the connection may
        carry another request."""
        return (
            self._done
            and self._error is None
            and not self.closed
            and self.response is not None
            and self.response.keep_alive
        )

    @property
    def buffered(self) -> int:
        """Bytes of the body received and not yet taken."""
        return self._buffered

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def detach(self) -> tuple[socket.socket | None, list[bytes], int]:
        """Give up the connection to a thread that reads the rest of a body of known length from its socket (see
        :mod:`.handover`): a duplicate of its socket (None where the body is whole already), the body's
        bytes received and not yet taken, and the bytes still to come. On the event loop's thread; the
        connection is closed here (the duplicate keeps the TCP connection open). A connection the server closed
        early gives no socket (the reader finds the body short); an answer that broke HTTP/1.1 raises its error."""
        if isinstance(self._error, WireError):
            raise self._error
        assert self._chunked is None, "a body of known length"
        assert self._left >= 0, "a body of known length"
        pieces = list(self._chunks)
        self._chunks.clear()
        self._buffered = 0
        left, sock = self._left, None
        if left and self._error is None and not self.closed:
            if not self._paused:  # nothing more for this protocol: the rest is the thread's to receive
                self._paused = True
                self._transport.pause_reading()
            sock = socket.socket(fileno=os.dup(self._transport.get_extra_info("socket").fileno()))
        self._done = True  # as far as this protocol goes: its close is not a broken answer
        self.close()
        return sock, pieces, left

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._on_close(self)
            if self._transport is not None:
                self._transport.close()


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())
