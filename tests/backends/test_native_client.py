"""The HTTP transport's native client (``transports/http/native/``) on real sockets.

Servers here are asyncio servers on loopback that write exactly the bytes each case needs (a keep-alive
connection closed under the client, a chunked body, an answer that lies about its length, one that never
comes), so every path of the client's connection handling is reached. What every client must do alike (the
statuses, the speed guard, TLS, credentials, redirects across hosts) is in the contract suite and the
reliability tests, run with each client.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from binance_archive.errors import ConfigurationError, RetryableError, TransportError
from binance_archive.transports.http import HttpTransport
from binance_archive.transports.http.native.connection import PAUSE_AT

from ..support.tls import make_certificate, tls_front

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "Server"], Awaitable[None]]


class Server:
    """A loopback server whose ``handler`` answers each connection; it counts connections and requests."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.open = 0
        self.most_open = 0
        self.requests: list[bytes] = []  # each request's head
        self.base_url = ""
        self.tasks: set[asyncio.Task[None]] = set()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        self.connections += 1
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        try:
            await self.handler(reader, writer, self)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.open -= 1
            writer.close()

    async def request(self, reader: asyncio.StreamReader) -> bytes | None:
        """The next request's head on this connection, or None once the client closed it."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        self.requests.append(head)
        return head


@asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[Server]:
    server = Server(handler)
    listener = await asyncio.start_server(server._serve, "127.0.0.1", 0)
    server.base_url = f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}"
    try:
        yield server
    finally:
        listener.close()
        for task in server.tasks:  # handlers still waiting on a connection the test is done with
            task.cancel()
        await asyncio.gather(*server.tasks, return_exceptions=True)
        await listener.wait_closed()


def ok(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


async def answer_every_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server) -> None:
    while (head := await server.request(reader)) is not None:
        path = head.split(b" ")[1]
        writer.write(ok(b"body of " + path))
        await writer.drain()


async def read_body(http: HttpTransport, key: str) -> bytes:
    async with http.get(key) as body:
        return b"".join([chunk async for chunk in body.chunks()])


def transport(server: Server, **options: object) -> HttpTransport:
    return HttpTransport(base_url=server.base_url, listing_url=server.base_url, client="native", **options)  # type: ignore[arg-type]


async def test_requests_reuse_one_kept_alive_connection() -> None:
    async with serving(answer_every_request) as server, transport(server) as http:
        for n in range(30):
            assert await http.get_bytes(f"k{n}", max_size=100) == f"body of /k{n}".encode()
    assert server.connections == 1 and len(server.requests) == 30


async def test_the_request_carries_host_user_agent_and_the_exact_path_and_query() -> None:
    async with serving(answer_every_request) as server:
        base = f"{server.base_url}/pre%2Ffix?X-Amz-Signature=a%2Bb&x=1"
        async with HttpTransport(base_url=base, client="native", user_agent="probe/1") as http:
            await http.get_bytes("data/spot/A B.zip", max_size=100)
    head = server.requests[0].decode()
    port = server.base_url.rsplit(":", 1)[1]
    assert head.startswith("GET /pre%2Ffix/data/spot/A%20B.zip?X-Amz-Signature=a%2Bb&x=1 HTTP/1.1\r\n"), head
    assert f"\r\nHost: 127.0.0.1:{port}\r\n" in head and "\r\nUser-Agent: probe/1\r\n" in head
    assert "accept-encoding" not in head.lower(), "bodies must come as stored: no compression asked for"


async def test_a_kept_alive_connection_closed_under_the_request_is_replaced_once() -> None:
    """The server answers the first request on each connection and closes the connection on the second, unanswered
    (a keep-alive timeout racing the request): the request is sent again on a new connection."""

    async def first_only(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server) -> None:
        head = await server.request(reader)
        assert head is not None
        writer.write(ok(b"first"))
        await writer.drain()
        await server.request(reader)  # read, and left unanswered: the connection closes

    async with serving(first_only) as server, transport(server) as http:
        assert await http.get_bytes("a", max_size=100) == b"first"
        assert await http.get_bytes("b", max_size=100) == b"first"
    assert server.connections == 2
    assert [r.split(b" ")[1] for r in server.requests] == [b"/a", b"/b", b"/b"]


async def test_a_new_connection_closed_unanswered_is_a_retryable_connection_failure() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server) -> None:
        await server.request(reader)

    async with serving(hang_up) as server, transport(server) as http:
        with pytest.raises(RetryableError, match="connection failed") as caught:
            await http.get_bytes("a", max_size=100)
    assert caught.value.throttled, "a server that takes no more requests is a reason to slow down"
    assert server.connections == 1, "a new connection's failure is the server's: not sent again by the client"


async def test_connections_stay_within_the_limit() -> None:
    async def slowly(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server) -> None:
        while (head := await server.request(reader)) is not None:
            await asyncio.sleep(0.02)
            writer.write(ok(head.split(b" ")[1]))
            await writer.drain()

    async with serving(slowly) as server, transport(server, limit=3) as http:
        got = await asyncio.gather(*(http.get_bytes(f"k{n}", max_size=100) for n in range(24)))
    assert got == [f"/k{n}".encode() for n in range(24)]
    assert server.most_open == 3 and server.connections == 3


@pytest.mark.parametrize(
    ("answer", "reused"),
    [
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6;x=y\r\nchunke\r\n5\r\nd bod\r\n1\r\ny\r\n0\r\nT: 1\r\n\r\n",
            True,
        ),
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nchunked body", True),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nConnection: close\r\n\r\nchunked body", False),
        (b"HTTP/1.0 200 OK\r\n\r\nchunked body", False),  # ends with the connection
    ],
    ids=["chunked", "interim-answer", "connection-close", "until-close"],
)
async def test_bodies_framed_every_way_read_whole(answer: bytes, reused: bool) -> None:
    async def framed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server) -> None:
        while await server.request(reader) is not None:
            for at in range(0, len(answer), 7):  # a few bytes at a time: every split of a head and a chunk
                writer.write(answer[at : at + 7])
                await writer.drain()
            if b"close" in answer.lower() or answer.startswith(b"HTTP/1.0"):
                return

    async with serving(framed) as server, transport(server) as http:
        for key in ("a", "b"):
            assert await read_body(http, key) == b"chunked body"
    assert server.connections == (1 if reused else 2)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (b"HTTP/1.1 OK\r\n\r\n", "not valid HTTP/1.1"),
        (b"SSH-2.0-OpenSSH_9.2\r\n\r\n", "not valid HTTP/1.1"),
        (b"HTTP/1.1 200 OK\r\n" + b"X-Long: " + b"x" * 70_000 + b"\r\n\r\n", "larger than 65536"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nhello", "longer than its Content-Length"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "invalid chunk size"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf", "broke off"),
    ],
    ids=["no-status", "not-http", "huge-head", "too-long", "bad-chunk", "cut-short"],
)
async def test_a_malformed_or_broken_answer_is_a_retryable_error(answer: bytes, message: str) -> None:
    async def garbled(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server) -> None:
        await server.request(reader)
        writer.write(answer)
        await writer.drain()

    async with serving(garbled) as server, transport(server) as http:
        with pytest.raises(RetryableError, match=message):
            await read_body(http, "a")


async def test_an_answer_that_never_comes_times_out() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server) -> None:
        await server.request(reader)
        await asyncio.sleep(30)

    async with serving(silent) as server, transport(server, read_timeout=0.3) as http:
        started = time.monotonic()
        with pytest.raises(RetryableError, match="timed out"):
            await http.get_bytes("a", max_size=100)
        assert time.monotonic() - started < 3


async def test_a_body_that_stops_midway_times_out_naming_what_came() -> None:
    async def stalls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server) -> None:
        await server.request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 40)
        await writer.drain()
        await asyncio.sleep(30)

    async with serving(stalls) as server, transport(server, read_timeout=0.3) as http:
        with pytest.raises(RetryableError, match="timed out after 40 bytes"):
            await read_body(http, "a")


async def test_a_body_left_unread_closes_its_connection() -> None:
    """A cancelled download leaves its body half read: that connection must not carry another request (the next
    answer would be read from the middle of the last body)."""

    async def big(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server) -> None:
        while await server.request(reader) is not None:
            writer.write(ok(b"y" * 3_000_000))
            await writer.drain()

    async with serving(big) as server, transport(server) as http:
        async with http.get("a") as body:
            async for _ in body.chunks():
                break
        async with http.get("b") as body:
            assert sum([len(chunk) async for chunk in body.chunks()]) == 3_000_000
    assert server.connections == 2


async def test_a_body_read_slowly_holds_a_bounded_number_of_bytes() -> None:
    """The socket is paused while the reader falls behind: a 64 MB body read slowly never sits whole in memory."""
    size = 64 * 1024 * 1024
    block = bytes(range(256)) * 4096

    async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server) -> None:
        await server.request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        for _ in range(size // len(block)):
            writer.write(block)
            await writer.drain()

    digest, received, most = hashlib.sha256(), 0, 0
    async with serving(flood) as server, transport(server, large_body_bytes=0) as http, http.get("a") as body:
        connection = body._connection  # type: ignore[attr-defined]  # the body's connection, to see what it holds
        async for chunk in body.chunks():
            digest.update(chunk)
            received += len(chunk)
            if received < 8 * 1024 * 1024:
                await asyncio.sleep(0.01)  # a slow reader, for the first megabytes
                most = max(most, connection.buffered)
    assert received == size and digest.digest() == hashlib.sha256(block * (size // len(block))).digest()
    assert 0 < most <= PAUSE_AT + 1024 * 1024, f"{most} bytes held unread"


async def test_redirects_are_followed_and_a_loop_of_them_refused() -> None:
    async def redirecting(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: Server) -> None:
        while (head := await server.request(reader)) is not None:
            path = head.split(b" ")[1]
            if path == b"/moved":
                writer.write(b"HTTP/1.1 302 Found\r\nLocation: there/file?q=1\r\nContent-Length: 0\r\n\r\n")
            elif path == b"/loop":
                writer.write(b"HTTP/1.1 301 Moved\r\nLocation: /loop\r\nContent-Length: 5\r\n\r\nmoved")
            else:
                writer.write(ok(b"at " + path))
            await writer.drain()

    async with serving(redirecting) as server, transport(server) as http:
        assert await http.get_bytes("moved", max_size=100) == b"at /there/file?q=1"
        with pytest.raises(TransportError, match="redirected more than 10 times"):
            await http.get_bytes("loop", max_size=100)
    assert sum(r.startswith(b"GET /loop ") for r in server.requests) == 11


async def test_a_body_read_to_its_end_frees_its_place_before_the_request_is_left() -> None:
    """The engine reads a zip's body, then waits for its sidecar inside the zip's request: with a limit of one
    connection, the sidecar must get the place the finished body held (it waited forever before)."""
    async with serving(answer_every_request) as server, transport(server, limit=1) as http, http.get("a.zip") as body:
        assert b"".join([chunk async for chunk in body.chunks()]) == b"body of /a.zip"
        sidecar = http.get_bytes("a.zip.CHECKSUM", max_size=100)
        assert await asyncio.wait_for(sidecar, 5) == b"body of /a.zip.CHECKSUM"
    assert server.connections == 1, "the finished body's connection carried the sidecar's request"


def test_auto_is_pyreqwest_over_https_where_installed_and_the_native_client_over_plain_http() -> None:
    """Over HTTPS pyreqwest's work, TLS included, runs on a thread of its own: one process uses a second core. Over
    plain HTTP the native client spends the least CPU and memory a file (docs/performance.md)."""
    pytest.importorskip("pyreqwest", reason="pyreqwest is not installed (it is in the fast extra)")
    for base_url in ("https://127.0.0.1:1", "https://data.binance.vision", "HTTPS://data.binance.vision"):
        assert HttpTransport(base_url=base_url).client == "pyreqwest", base_url
        assert HttpTransport(base_url=base_url, client="native").client == "native", "a client named is used"
    assert HttpTransport().client == "pyreqwest", "the archive itself is HTTPS"
    assert HttpTransport(base_url="http://127.0.0.1:1").client == "native"
    assert HttpTransport(base_url="http://127.0.0.1:1", client="pyreqwest").client == "pyreqwest", "named"


def test_auto_is_the_native_client_where_pyreqwest_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pyreqwest" else real(name, *a))
    assert HttpTransport(base_url="https://data.binance.vision").client == "native"
    assert HttpTransport(base_url="http://127.0.0.1:1").client == "native"
    with pytest.raises(ConfigurationError, match=r"pip install 'binance-archive\[fast\]'"):
        HttpTransport(client="pyreqwest")


async def test_a_process_forked_after_pyreqwest_started_falls_back_to_the_native_client(tmp_path: Path) -> None:
    """pyreqwest's runtime does not survive a fork: a multiprocessing child of an application that had used it
    fetches through the native client with ``client="auto"`` (over HTTPS, where auto takes pyreqwest)."""
    pytest.importorskip("pyreqwest", reason="pyreqwest is not installed (it is in the fast extra)")
    import os
    import sys

    probe = (
        "import asyncio, os, sys\n"
        "from binance_archive.transports.http import HttpTransport\n"
        "async def fetch():\n"
        "    async with HttpTransport(base_url=sys.argv[1], verify_ssl=False) as http:\n"
        "        body = await http.get_bytes('a', max_size=100)\n"
        "        return http.client, body\n"
        "print('parent', *asyncio.run(fetch()), flush=True)\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    print('child', *asyncio.run(fetch()), flush=True)\n"
        "    os._exit(0)\n"
        "os._exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))\n"
    )
    cert, key, _ = make_certificate(tmp_path, host="127.0.0.1")
    async with (
        serving(answer_every_request) as server,
        tls_front(int(server.base_url.rsplit(":", 1)[1]), cert, key) as port,
    ):
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", probe, f"https://127.0.0.1:{port}", stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )  # fmt: skip
        out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    assert out.decode().split("\n")[:2] == ["parent pyreqwest b'body of /a'", "child native b'body of /a'"]
