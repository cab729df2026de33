"""The HTTP transport's native client (``client="native"``; what ``auto`` takes over plain HTTP, and where pyreqwest
is not installed): HTTP/1.1 GETs on asyncio's own transports, with no client library between them and the engine.

A mirror of small files is bound by the CPU of the event loop's thread, and a general-purpose client spends most
of a small file's CPU on what a GET of a static file does not need: aiohttp's request and response machinery,
or the hand-over of every response and chunk between pyreqwest's Tokio thread and the loop. Here each connection
is an :class:`asyncio.Protocol` (:mod:`.connection`): the request is one write, the response's bytes are parsed
in the callback that receives them (:mod:`.wire`), and the reader is woken once per batch of bytes.
docs/performance.md has what it measured against both libraries.

Its requests behave as the other clients' do: the same User-Agent, credentials in the URL sent as Basic auth (to
that origin only, :mod:`.targets`), up to 10 redirects followed, no proxy from the environment, no cookies, no
decompression (no Accept-Encoding is sent, so bodies come as stored), certificates checked against the default
trust store plus the ``ca_bundle`` option's, the same timeouts, speed guard and errors. A keep-alive connection
the server closed as a request went out on it is replaced once (:mod:`.client`).
"""

from __future__ import annotations

from binance_archive.transports.http.native.client import NativeClient

__all__ = ["NativeClient"]
