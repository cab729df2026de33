"""The HTTP transport's blocking GET of a large body (``transports/http/blocking.py``), with the clients that send it.

A body larger than ``large_body_bytes`` is fetched again from the engine's worker thread over a connection of
its own, by aiohttp and pyreqwest and by the native client over TLS (over plain HTTP it hands its own socket over
instead: ``test_native_handover.py``), where the first answer came within ``refetch_within`` (pinned high here,
but in the last tests). That GET must give the same bytes, follow redirects as the clients do, turn every failure
into the library's errors, and stop at once when the request is left from the event loop (a cancelled
download). Its TLS checks and its handling of credentials are in ``tests/reliability/test_tls_and_secrets.py``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import time
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from binance_archive import ArchiveFile, DataType, Market, Period
from binance_archive.errors import ConfigurationError, FileMissingError, RetryableError
from binance_archive.testing import FakeArchiveServer, key_path, write_file
from binance_archive.transports.http import HttpTransport

from ..support.reading import ThreadRead
from ..support.tls import make_certificate, tls_front

CLIENTS = ["aiohttp", "pyreqwest"]  # the native client sends the GET again over TLS only: see the last tests
NEAR = 60.0  # refetch_within: the GET is sent again however long a loaded machine took to answer the first one
FILE = ArchiveFile(Market.SPOT, DataType.TRADES, "BTCUSDT", Period.DAILY, dt.date(2024, 1, 1))
MEMBER = 300_000  # bytes of the zipped CSV: incompressible, so the zip is about as large


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "upstream"
    write_file(root, FILE, member=random.Random(5).randbytes(MEMBER))
    return root


def _zip(tree: Path) -> bytes:
    return key_path(tree, FILE.key).read_bytes()


async def _read_again(body: object) -> bytes:
    assert getattr(body, "blocking", False), "the body should be fetched again"
    # bytes(chunk): a chunk is a view of the reader's one buffer, valid until the next is asked for
    return await asyncio.to_thread(lambda: b"".join(bytes(c) for c in body.blocking_chunks()))  # type: ignore[attr-defined]


@pytest.mark.parametrize("client", CLIENTS)
async def test_a_large_body_is_fetched_again_whole_by_a_second_get(tree: Path, client: str) -> None:
    size = len(_zip(tree))
    async with FakeArchiveServer(tree) as server:
        async with (
            HttpTransport(
                base_url=server.base_url, client=client, large_body_bytes=size - 1, refetch_within=NEAR
            ) as transport,
            transport.get(FILE.key) as body,
        ):
            assert body.size == size
            assert await _read_again(body) == _zip(tree)
        assert server.stats.by_key[FILE.key] == 2, "the first response is released unread, and the GET sent again"
        # At the threshold or under it, or with the option off, a body is read from the first response.
        for threshold in (size, 0):
            async with (
                HttpTransport(base_url=server.base_url, client=client, large_body_bytes=threshold) as transport,
                transport.get(FILE.key) as body,
            ):
                assert not body.blocking
                assert b"".join([chunk async for chunk in body.chunks()]) == _zip(tree)


@pytest.mark.parametrize(
    ("fault", "error", "words"),
    [
        ("missing", FileMissingError, "not found"),
        ("error", RetryableError, "HTTP 50"),
        ("reset", RetryableError, "connection failed"),
        ("truncate", RetryableError, "truncated"),
        ("stall", RetryableError, "timed out after"),
        ("drip", RetryableError, "came too slowly"),
    ],
)
@pytest.mark.parametrize("client", CLIENTS)
async def test_a_failure_of_the_second_get_is_the_librarys_error(
    tree: Path, client: str, fault: str, error: type[Exception], words: str
) -> None:
    async with FakeArchiveServer(tree, shutdown_timeout=0.5) as server:
        async with (
            HttpTransport(
                base_url=server.base_url,
                client=client,
                large_body_bytes=1,
                read_timeout=0.4,
                min_speed=100_000,
                refetch_within=NEAR,
            ) as transport,
            transport.get(FILE.key) as body,
        ):
            # The first GET went well; the fault is for the second one only.
            faults = server.faults
            if fault in ("missing", "stall", "drip"):
                setattr(faults, f"{fault}_keys", {FILE.key})
                faults.stall_seconds = 5
            else:
                setattr(faults, f"{fault}_rate", 1.0)
            started = time.monotonic()
            with pytest.raises(error, match=words) as caught:
                await _read_again(body)
            took = time.monotonic() - started
        fired = server.stats.faults[fault]
    assert fired >= 1, f"the {fault} fault must have fired for the test to mean anything"
    assert took < 4, f"{took:.1f} s: the {fault} was waited out"
    assert server.base_url.split("//")[1] in str(caught.value), "the message names where it went wrong"


@pytest.mark.parametrize("client", CLIENTS)
async def test_leaving_the_request_stops_a_blocked_read_at_once(tree: Path, client: str) -> None:
    async with (
        FakeArchiveServer(tree, shutdown_timeout=0.5) as server,
        HttpTransport(
            base_url=server.base_url, client=client, large_body_bytes=1, read_timeout=30.0, refetch_within=NEAR
        ) as transport,
    ):
        async with transport.get(FILE.key) as body:
            server.faults.stall_keys = {FILE.key}  # part of the body, then 20 s of nothing
            server.faults.stall_seconds = 20
            read = ThreadRead(body.blocking_chunks())
            await read.blocked("the second GET sent part of its body")
        await read.stopped_at_once()


@pytest.mark.parametrize("client", CLIENTS)
async def test_the_second_get_follows_redirects_and_keeps_credentials_to_their_origin(tree: Path, client: str) -> None:
    data = _zip(tree)
    seen: dict[str, list[str | None]] = {"home": [], "away": []}

    def app(name: str, *, redirect_to: str | None = None) -> web.Application:
        async def serve(request: web.Request) -> web.StreamResponse:
            seen[name].append(request.headers.get("Authorization"))
            return web.Response(body=data, content_type="application/zip")

        async def moved(request: web.Request) -> web.StreamResponse:
            seen[name].append(request.headers.get("Authorization"))
            raise web.HTTPFound(redirect_to or "/file.zip")

        application = web.Application()
        application.router.add_get("/file.zip", serve)
        application.router.add_get("/moved.zip", moved)
        return application

    async with TestServer(app("away")) as away:
        async with TestServer(app("home", redirect_to=None)) as home:
            base = f"http://user:pw@127.0.0.1:{home.port}"
            async with (
                HttpTransport(base_url=base, client=client, large_body_bytes=1, refetch_within=NEAR) as transport,
                transport.get("moved.zip") as body,
            ):
                assert await _read_again(body) == data
            # Every request to the home server carried the credentials, and the redirect was followed there.
            assert len(seen["home"]) == 4 and all(value and value.startswith("Basic ") for value in seen["home"])
        async with TestServer(app("home", redirect_to=f"http://127.0.0.1:{away.port}/file.zip")) as home:
            seen["home"].clear()
            base = f"http://user:pw@127.0.0.1:{home.port}"
            async with (
                HttpTransport(base_url=base, client=client, large_body_bytes=1, refetch_within=NEAR) as transport,
                transport.get("moved.zip") as body,
            ):
                assert await _read_again(body) == data
    assert seen["away"] and all(value is None for value in seen["away"]), "credentials went to another host"


@pytest.mark.parametrize("client", CLIENTS)
async def test_a_second_answer_without_a_length_is_read_whole(tree: Path, client: str) -> None:
    """The first answer gave a Content-Length; the second, chunked, is read to its end just the same (a body of
    known length is received straight into the reader's buffer; any other through http.client's reader)."""
    data = _zip(tree)
    answers: list[str] = []

    async def serve(request: web.Request) -> web.StreamResponse:
        if not answers:
            answers.append("length")
            return web.Response(body=data, content_type="application/zip")
        answers.append("chunked")
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(data), 300_001):  # chunks that do not line up with the reader's buffer
            await response.write(data[start : start + 300_001])
        await response.write_eof()
        return response

    application = web.Application()
    application.router.add_get("/file.zip", serve)
    async with TestServer(application) as server:
        base = f"http://127.0.0.1:{server.port}"
        async with (
            HttpTransport(base_url=base, client=client, large_body_bytes=1, refetch_within=NEAR) as transport,
            transport.get("file.zip") as body,
        ):
            assert await _read_again(body) == data
    assert answers == ["length", "chunked"]


@pytest.mark.parametrize("value", [-1, True, "8", 1.5])
def test_large_body_bytes_must_be_a_whole_number_of_bytes(value: object) -> None:
    with pytest.raises(ConfigurationError, match="large_body_bytes must be a whole number of bytes"):
        HttpTransport(large_body_bytes=value)  # type: ignore[arg-type]


async def test_the_native_client_fetches_a_large_body_again_over_tls(tree: Path, tmp_path: Path) -> None:
    """Over TLS the session's state is the event loop's transport's: no socket can be handed to the worker thread,
    so the native client sends the GET again, as the other clients do."""
    cert, key, _ = make_certificate(tmp_path, host="127.0.0.1")
    size = len(_zip(tree))
    async with FakeArchiveServer(tree) as server, tls_front(server.port, cert, key) as port:
        async with (
            HttpTransport(
                base_url=f"https://127.0.0.1:{port}",
                client="native",
                ca_bundle=cert,
                large_body_bytes=size - 1,
                refetch_within=NEAR,
            ) as transport,
            transport.get(FILE.key) as body,
        ):
            assert await _read_again(body) == _zip(tree)
        assert server.stats.by_key[FILE.key] == 2, "the first response is released unread, and the GET sent again"


@pytest.mark.parametrize("client", [*CLIENTS, "native-tls"])
async def test_a_large_body_from_a_far_server_is_read_from_its_first_answer(
    tree: Path, tmp_path: Path, client: str
) -> None:
    """Far from the server (the first answer slower than ``refetch_within``) a second GET would cost a connection, a
    TLS handshake and a request: the first answer is read instead. Near it, the GET is sent again."""
    cert, key, _ = make_certificate(tmp_path, host="127.0.0.1")
    data = _zip(tree)
    async with FakeArchiveServer(tree, latency=0.2) as server, tls_front(server.port, cert, key) as port:
        base = f"https://127.0.0.1:{port}" if client == "native-tls" else server.base_url
        options = {"client": client.removesuffix("-tls"), "ca_bundle": cert, "large_body_bytes": 1}
        far = HttpTransport(base_url=base, refetch_within=0.1, **options)  # type: ignore[arg-type]
        async with far, far.get(FILE.key) as body:
            assert not body.blocking, "answered in 0.2 s, beyond refetch_within: read, not fetched again"
            assert b"".join([chunk async for chunk in body.chunks()]) == data
        assert server.stats.by_key[FILE.key] == 1
        near = HttpTransport(base_url=base, refetch_within=1.0, **options)  # type: ignore[arg-type]
        async with near, near.get(FILE.key) as body:
            assert await _read_again(body) == data
        assert server.stats.by_key[FILE.key] == 3, "within refetch_within: the GET sent again"


@pytest.mark.parametrize("value", [-0.1, "soon", True])
def test_refetch_within_must_be_seconds(value: object) -> None:
    with pytest.raises(ConfigurationError, match="refetch_within must be a number of seconds"):
        HttpTransport(refetch_within=value)  # type: ignore[arg-type]
