"""The native client's reading of HTTP/1.1 off the wire (``transports/http/native/wire.py``): heads and chunked bodies.

Pure functions of bytes: each case is the bytes a server could send, and what the client must make of them (or
refuse). The client's behaviour on a socket is in ``test_native_client.py``.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from binance_archive.transports.http.native.wire import ChunkedBody, ResponseHead, WireError, head_end

NGINX = (
    b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sun, 06 Dec 2026 20:28:33 GMT\r\n"
    b"Content-Type: application/zip\r\nContent-Length: 78134\r\nLast-Modified: Mon, 02 Jan 2023 02:50:00 GMT\r\n"
    b'Connection: keep-alive\r\nETag: "63b24658-13136"\r\nAccept-Ranges: bytes'
)


def test_a_static_files_head_gives_its_status_length_and_headers() -> None:
    head = ResponseHead(NGINX)
    assert (head.status, head.length, head.chunked, head.keep_alive) == (200, 78134, False, True)
    assert head.header("etag") == '"63b24658-13136"'
    assert head.header("ETAG") == head.header("etag"), "header names are matched in any case"
    assert head.header("location") is None
    assert head.header("last-modified") == "Mon, 02 Jan 2023 02:50:00 GMT", "a value keeps its colons"


def test_repeated_headers_are_joined_and_values_trimmed() -> None:
    head = ResponseHead(b"HTTP/1.1 404 Not Found\r\nX-A: 1\r\nContent-Length: 0\r\nx-a:\t 2 \t")
    assert head.header("x-a") == "1, 2"
    assert (head.status, head.length, head.keep_alive) == (404, 0, True)


def test_a_location_keeps_its_case() -> None:
    head = ResponseHead(b"HTTP/1.1 302 Found\r\nLocation: /Data/Spot?X=Y\r\nContent-Length: 0")
    assert head.header("location") == "/Data/Spot?X=Y"


@pytest.mark.parametrize(
    ("head", "length", "chunked", "keep_alive"),
    [
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked", None, True, True),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\nContent-Length: 12", None, True, True),
        # chunked not last: the body runs to the close, and the connection cannot be kept
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip", None, False, False),
        (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain", None, False, False),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: Keep-Alive, Close", 5, False, False),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 5", 5, False, False),
        (b"HTTP/1.1 204 No Content", 0, False, True),
        (b"HTTP/1.1 304 Not Modified\r\nContent-Length: 99", 0, False, True),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 7, 7", 7, False, True),
        (b"HTTP/1.1 200", None, False, False),  # no reason phrase, no headers
        (b"HTTP/1.1 200 \r\nContent-Length: 0", 0, False, True),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\nCONNECTION: keep-alive", 3, False, True),  # names in any case
        (b"HTTP/1.1 200 OK\r\nX-Connection: close\r\nX-Content-Length: 9\r\nContent-Length: 3", 3, False, True),
    ],
)
def test_how_a_body_is_framed(head: bytes, length: int | None, chunked: bool, keep_alive: bool) -> None:
    parsed = ResponseHead(head)
    assert (parsed.length, parsed.chunked, parsed.keep_alive) == (length, chunked, keep_alive)


@pytest.mark.parametrize(
    ("head", "message"),
    [
        (b"HTTP/2 200 OK", "status line"),
        (b"HTTP/1.1 20 OK", "status line"),
        (b"HTTP/1.1 2000 OK", "status line"),
        (b"ICY 200 OK", "status line"),
        (b"", "status line"),
        (b"HTTP/1.1 200 OK\r\nContent-Length : 5", "malformed header"),  # space before the colon
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n folded", "malformed header"),
        (b"HTTP/1.1 200 OK\r\nNo colon here", "malformed header"),
        (b"HTTP/1.1 200 OK\r\n: empty name", "malformed header"),
        (b"HTTP/1.1 200 OK\r\nX: a\rb", "malformed header"),  # a bare CR in a value
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6", "Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1", "Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 0x10", "Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: \xb2", "Content-Length"),  # "²", a digit to str.isdigit, not int()
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5, \xb9", "Content-Length"),
    ],
)
def test_a_malformed_head_is_refused(head: bytes, message: str) -> None:
    with pytest.raises(WireError, match=message):
        ResponseHead(head)


def test_where_a_head_ends() -> None:
    for wire in (b"HTTP/1.1 200 OK\r\nA: b\r\n\r\nbody", b"HTTP/1.1 200 OK\nA: b\n\nbody"):  # bare LFs tolerated
        end, body = head_end(wire)
        assert wire[:end].endswith(b"A: b") and wire[body:] == b"body"
    assert head_end(b"HTTP/1.1 200 OK\r\nA: b\r\n") == (-1, -1)


def _encode(body: bytes, sizes: list[int], *, extension: bool, trailers: bool) -> bytes:
    out, at = [], 0
    for size in sizes:
        piece = body[at : at + size]
        at += size
        if piece:
            out.append(f"{len(piece):x}{';name=value' if extension else ''}\r\n".encode() + piece + b"\r\n")
    if at < len(body):
        out.append(f"{len(body) - at:X}\r\n".encode() + body[at:] + b"\r\n")
    out.append(b"0\r\n" + (b"Trailer-A: 1\r\nTrailer-B: 2\r\n" if trailers else b"") + b"\r\n")
    return b"".join(out)


@settings(max_examples=200, deadline=None)
@given(
    body=st.binary(max_size=3000),
    sizes=st.lists(st.integers(1, 700), max_size=8),
    cuts=st.lists(st.integers(1, 400), max_size=30),
    extension=st.booleans(),
    trailers=st.booleans(),
    after=st.binary(max_size=20),
)
def test_a_chunked_body_decodes_the_same_however_its_bytes_arrive(
    body: bytes, sizes: list[int], cuts: list[int], extension: bool, trailers: bool, after: bytes
) -> None:
    wire = _encode(body, sizes, extension=extension, trailers=trailers) + after
    decoder = ChunkedBody()
    got, at = [], 0
    for cut in [*cuts, len(wire)]:
        if at >= len(wire):
            break
        got += decoder.feed(wire[at : at + cut])
        at += cut
    assert b"".join(got) == body
    assert decoder.done
    if after:
        assert decoder.extra, "bytes after the last chunk are kept, not read as body"


def test_a_chunked_body_is_not_done_before_its_last_chunk() -> None:
    decoder = ChunkedBody()
    assert decoder.feed(b"5\r\nhello\r\n") == [b"hello"]
    assert not decoder.done
    assert decoder.feed(b"0\r\n") == [] and not decoder.done, "the blank line after the trailers ends it"
    decoder.feed(b"\r\n")
    assert decoder.done and decoder.extra == b""


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        (b"zz\r\n", "invalid chunk size"),
        (b"-5\r\nhello\r\n", "invalid chunk size"),
        (b"0x5\r\nhello\r\n", "invalid chunk size"),
        (b"\r\n", "invalid chunk size"),
        (b"5\r\nhello world\r\n", "longer than its size"),
        (b"1" * 5000, "too long"),
    ],
)
def test_a_malformed_chunk_is_refused(wire: bytes, message: str) -> None:
    with pytest.raises(WireError, match=message):
        ChunkedBody().feed(wire)
