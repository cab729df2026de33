"""A large body read on in a worker thread from the native client's own connection, handed over, not fetched again.

Every HTTP client sends the GET of a large body again from the engine's worker thread (:mod:`..blocking`), where one
``recv`` a megabyte is cheaper than chunks handed across the event loop. That second GET costs a new connection and
a round trip: nothing on loopback, two round trips for a user far from the bucket. The native client owns its
plain-HTTP sockets, so it can do without it: the socket whose answer's head has come is handed to the thread (a
duplicate of its descriptor; the event loop's transport is closed), with the body's bytes already received, and the
thread reads the rest with ``recv_into``. Over TLS the session's state lives in the event loop's transport, so a
large body over HTTPS is fetched again as with the other clients.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING

from binance_archive.common.urls import redact
from binance_archive.errors import RetryableError
from binance_archive.transports.http.errors import broke_off, reason, timed_out
from binance_archive.transports.http.stoppable import StoppableSocket

if TYPE_CHECKING:
    from binance_archive.transports.http.body import SpeedGuard

__all__ = ["POSSIBLE", "READ_SIZE", "HandedOver"]

READ_SIZE = 1024 * 1024  # as the blocking GET's reads (see blocking.py)
POSSIBLE = os.name == "posix"  # a socket's descriptor is duplicated with os.dup, which Windows' sockets refuse


class HandedOver:
    """The rest of one body on a socket handed over by the event loop: :meth:`chunks` blocks, for a worker thread.

    ``take`` is the future the event loop fulfils with what it hands over (see :meth:`Connection.detach
    <.connection.Connection.detach>`): the socket, the body's bytes received so far, and the bytes still to come.
    :meth:`interrupt` may be called from any other thread (as :meth:`BlockingGet.interrupt
    <..blocking.BlockingGet.interrupt>`): a read under way fails at once, and none starts after.
    """

    def __init__(self, url: str, take: concurrent.futures.Future[tuple[socket.socket | None, list[bytes], int]]):
        self._url = url
        self._take = take
        self._stop = StoppableSocket()

    def chunks(self, guard: SpeedGuard, read_timeout: float, size: int) -> Iterator[bytes | memoryview]:
        """The body's ``size`` bytes, those received on the loop first, then up to a megabyte a ``recv``; each
        counted by ``guard``. A view of the buffer is valid until the next chunk is asked for."""
        try:
            # Bounded: a loop that stopped (its process interrupted) would otherwise hold this thread, and the
            # interpreter's exit that joins it, forever.
            sock, received, left = self._take.result(timeout=read_timeout)
        except concurrent.futures.CancelledError:  # interrupted before the loop handed the socket over
            raise RetryableError(f"the GET of {redact(self._url)} was stopped") from None
        except TimeoutError:
            if not self._take.cancel():  # handed over just now, after all: nobody will read that socket
                with contextlib.suppress(Exception):  # or the hand-over failed: nothing to close
                    late = self._take.result()[0]
                    if late is not None:
                        late.close()
            raise RetryableError(
                f"the event loop did not hand {redact(self._url)}'s connection over within {read_timeout:g} s"
            ) from None
        if sock is not None and not self._stop.hold(sock):  # stopped meanwhile: nothing more is read
            sock.close()
            sock = None
        try:
            for piece in received:
                guard.count(len(piece))
                yield piece
            if sock is not None and left:
                yield from self._rest(sock, left, guard, read_timeout)
            if self._stop.stopped and guard.received < size:
                raise RetryableError(f"the GET of {redact(self._url)} was stopped after {guard.received} bytes")
            guard.finish(size)  # a body the server ended early: truncated, and retried
        finally:
            self._close()

    def _rest(self, sock: socket.socket, left: int, guard: SpeedGuard, read_timeout: float) -> Iterator[memoryview]:
        """Up to ``left`` bytes from ``sock``, until the server closes the connection."""
        buffer = memoryview(bytearray(min(READ_SIZE, left)))
        sock.settimeout(read_timeout)  # the descriptor is non-blocking (the loop's): the timeout polls before a recv
        while left:
            try:
                count = sock.recv_into(buffer, min(left, len(buffer)))
            except TimeoutError:
                raise timed_out(self._url, received=guard.received) from None
            except OSError as exc:
                if self._stop.stopped:
                    return
                raise broke_off(self._url, reason(exc), received=guard.received) from None
            if not count:
                return
            left -= count
            guard.count(count)
            yield buffer[:count]

    def interrupt(self) -> None:
        """Stop the read from another thread."""
        self._stop.stop()
        self._take.cancel()  # a hand-over the loop has not begun is not made (the request's exit closes the socket)

    def _close(self) -> None:
        sock = self._stop.let_go()
        if sock is not None:
            sock.close()
