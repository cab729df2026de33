"""The socket a worker thread reads a large body from, which another thread may stop at any time (both ways a large
body is read in a thread: the blocking GET, :mod:`.blocking`, and the native client's socket handed over,
:mod:`.native.handover`)."""

from __future__ import annotations

import contextlib
import socket
import threading

__all__ = ["StoppableSocket"]


class StoppableSocket:
    """Holds the socket a worker thread reads from. :meth:`stop` may be called from any other thread (the event
    loop, when the download is cancelled): the socket is shut down, so a read blocked on it returns at once, and no
    socket is held after it."""

    __slots__ = ("_lock", "_socket", "stopped")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self.stopped = False

    def hold(self, sock: socket.socket) -> bool:
        """Hold ``sock`` for the reading thread; False, holding nothing, once stopped (the caller closes it)."""
        with self._lock:
            if self.stopped:
                return False
            self._socket = sock
            return True

    def let_go(self) -> socket.socket | None:
        """The socket held, held no more (the reading thread closes it)."""
        with self._lock:
            sock, self._socket = self._socket, None
        return sock

    def stop(self) -> None:
        with self._lock:
            self.stopped = True
            sock = self._socket
        if sock is not None:
            # socket.socket's shutdown even for a TLS socket: SSLSocket.shutdown would drop the TLS state that the
            # reading thread is using. The reader closes the connection itself.
            with contextlib.suppress(OSError):  # not connected any more
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
