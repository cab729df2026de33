"""HTTP/1.1 responses as bytes on the wire, for the native client: a response's head parsed, its body framed.

No I/O here: :class:`ResponseHead` is parsed from the bytes before the blank line, and :class:`ChunkedBody`
takes a ``Transfer-Encoding: chunked`` body apart as its bytes arrive. Only what a client of a file archive
meets is supported (RFC 9112's rules for a response to GET); anything malformed is a :class:`WireError`, never a
guess, so a broken or hostile server cannot make the client read one response's bytes as another's.
"""

from __future__ import annotations

import re

__all__ = ["MAX_HEAD", "ChunkedBody", "ResponseHead", "WireError", "head_end"]

MAX_HEAD = 64 * 1024
"""The most bytes a response's head (status line and headers) may take; a longer one is refused."""
_MAX_SIZE_LINE = 4096  # a chunk's size line, extensions included
_NO_BODY = frozenset({204, 304})
_KEYS = {
    name: f"\n{name}:".encode("latin-1")
    for name in ("transfer-encoding", "content-length", "connection", "location", "retry-after")
}


class WireError(Exception):
    """The server's answer is not valid HTTP/1.1 (a garbled head, a contradictory length, a broken chunk)."""


def head_end(buffer: bytes | bytearray) -> tuple[int, int]:
    """Where the head in ``buffer`` ends and its body starts, or ``(-1, -1)`` while the blank line has not come.

    Lines end with CRLF; a bare LF is tolerated, as every client does."""
    end = buffer.find(b"\r\n\r\n")
    if end >= 0:
        return end, end + 4
    end = buffer.find(b"\n\n")
    if end >= 0:
        return end, end + 2
    return -1, -1


_STATUS_LINE = re.compile(rb"HTTP/1\.([01]) ([0-9]{3})(?:[ \t][^\r\n]*)?\r?")
# Every header line: a token, a colon (no space before it: RFC 9112 5.1, a request smuggling vector), a value with
# no bare CR; no folded lines. Checked in one match over the block, in C, rather than line by line in Python.
_HEADER_BLOCK = re.compile(rb"(?:[!#$%&'*+.^_`|~0-9A-Za-z-]+:[^\r\n]*\r?\n)*")


class ResponseHead:
    """A response's status and headers, with how its body is framed.

    Args:
        data: the head's bytes, without the blank line that ends it.

    Raises:
        WireError: the status line or a header is malformed, or the body's length is contradictory.
    """

    __slots__ = ("_block", "_lowered", "chunked", "keep_alive", "length", "status")

    def __init__(self, data: bytes) -> None:
        newline = data.find(b"\n")
        status_line = data if newline < 0 else data[:newline]
        match = _STATUS_LINE.fullmatch(status_line)
        if match is None:
            raise WireError(f"not an HTTP/1.x status line: {status_line[:80]!r}")
        self.status = int(match[2])
        block = b"" if newline < 0 else data[newline + 1 :] + b"\n"
        if _HEADER_BLOCK.fullmatch(block) is None:
            line = next(ln for ln in block.split(b"\n") if _HEADER_BLOCK.fullmatch(ln + b"\n") is None)
            raise WireError(f"malformed header line: {line[:80]!r}")
        # Each line starts after a newline, so a name is found as "\nname:" in the lowered block.
        self._block = b"\n" + block
        self._lowered = self._block.lower()
        self.chunked = False
        self.length: int | None = None
        status, lowered = self.status, self._lowered
        # Each header looked for only where its name is in the head (one search in C): a response to a GET for a
        # file has a Content-Length, and seldom a Transfer-Encoding (a head is parsed for every file: this is
        # half of what parsing one cost).
        if status in _NO_BODY or 100 <= status < 200:
            self.length = 0
        elif _KEYS["transfer-encoding"] in lowered and (codings := self.header("transfer-encoding")) is not None:
            # Chunked must be the last coding; a body in any other coding runs to the connection's close.
            self.chunked = codings.rsplit(",", 1)[-1].strip().lower() == "chunked"
        elif _KEYS["content-length"] in lowered and (length := self.header("content-length")) is not None:
            values = {v.strip() for v in length.split(",")} if "," in length else {length}
            value = next(iter(values))
            if len(values) != 1 or not (value.isascii() and value.isdigit()):  # not "²", a digit to str.isdigit
                raise WireError(f"invalid Content-Length: {length[:80]!r}")
            self.length = int(value)
        connection = self.header("connection") if _KEYS["connection"] in lowered else None
        self.keep_alive = (
            match[1] == b"1"
            and (
                connection is None
                or connection.lower() == "keep-alive"
                or "close" not in {t.strip().lower() for t in connection.split(",")}
            )
            and (self.chunked or self.length is not None)  # else the body ends at the close
        )

    def header(self, name: str) -> str | None:
        """The header's value (repeated ones joined by commas), or ``None``; ``name`` in any case."""
        key = _KEYS.get(name)
        if key is None:
            key = b"\n" + name.lower().encode("latin-1") + b":"
        block, lowered = self._block, self._lowered
        values = []
        at = lowered.find(key)
        while at >= 0:
            start = at + len(key)
            end = block.index(b"\n", start)
            values.append(block[start:end].strip(b" \t\r").decode("latin-1"))
            at = lowered.find(key, end)
        return ", ".join(values) if values else None


class ChunkedBody:
    """Decodes a chunked body as its bytes come: :meth:`feed` returns the data in them, :attr:`done` says the last
    chunk and the trailers have been read, and :attr:`extra` holds any bytes that came after them."""

    __slots__ = ("_left", "_line", "_state", "done", "extra")

    _SIZE, _DATA, _DATA_END, _TRAILER = range(4)

    def __init__(self) -> None:
        self._state = self._SIZE
        self._left = 0
        self._line = bytearray()
        self.done = False
        self.extra = b""

    def feed(self, data: bytes) -> list[bytes]:
        """The body's bytes in ``data`` (zero or more pieces). Raises WireError on a malformed chunk."""
        pieces: list[bytes] = []
        at, size = 0, len(data)
        while at < size:
            if self.done:
                self.extra = data[at:]
                break
            if self._state == self._DATA:
                take = min(self._left, size - at)
                pieces.append(data if take == size else data[at : at + take])  # the whole of data: no copy
                at += take
                self._left -= take
                if not self._left:
                    self._state = self._DATA_END
                continue
            # A line: a chunk's size, the CRLF after its data, or a trailer.
            newline = data.find(b"\n", at)
            if newline < 0:
                self._line += data[at:]
                if len(self._line) > _MAX_SIZE_LINE:
                    raise WireError("a chunk's size line is too long")
                break
            self._line += data[at:newline]
            at = newline + 1
            line = bytes(self._line).rstrip(b"\r")
            self._line.clear()
            if self._state == self._SIZE:
                digits = line.split(b";", 1)[0].strip()
                try:
                    self._left = int(digits, 16)
                except ValueError:
                    raise WireError(f"invalid chunk size: {line[:40]!r}") from None
                if not digits or digits.startswith((b"-", b"+", b"0x", b"0X")) or b"_" in digits:
                    raise WireError(f"invalid chunk size: {line[:40]!r}")
                self._state = self._DATA if self._left else self._TRAILER
            elif self._state == self._DATA_END:
                if line:
                    raise WireError("a chunk's data is longer than its size said")
                self._state = self._SIZE
            elif not line:  # the blank line after the trailers
                self.done = True
            elif len(line) > _MAX_SIZE_LINE:
                raise WireError("a trailer line is too long")
        return pieces
