"""The requests for an object: ``GET`` and ``HEAD`` of a key, with ranges and conditions.

The faults of a real network are injected here: errors, 429s, resets, missing keys, stalls, cuts, flipped bytes
and drips.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import random
import socket
import struct

from aiohttp import web

from binance_archive.testing.server.ranges import Unsatisfiable, parse_range
from binance_archive.testing.server.state import CHUNK, SYNC_READ, ServerState

__all__ = ["Dropped", "ObjectRequests"]

logger = logging.getLogger("binance_archive.testing")


class Dropped(web.Response):
    """The answer to a reset connection: never sent, as aiohttp finds the transport closed."""


def _http_date(timestamp: float) -> str:
    return email.utils.formatdate(timestamp, usegmt=True)


class ObjectRequests(ServerState):
    """The requests for the archive's files: ``GET`` and ``HEAD`` of a key, as CloudFront and S3 answer them."""

    async def _object(self, request: web.BaseRequest, key: str) -> web.StreamResponse:
        faults = self.faults
        if faults.max_in_flight and self._serving >= faults.max_in_flight:
            self.stats.faults["shed"] += 1
            if faults.latency:
                await asyncio.sleep(faults.latency)
            retry = {"Retry-After": str(faults.retry_after)}
            return self._error(request, 429, "TooManyRequests", "Too many requests at once.", headers=retry)
        self._serving += 1
        try:
            return await self._answer(request, key)
        finally:
            self._serving -= 1

    async def _answer(self, request: web.BaseRequest, key: str) -> web.StreamResponse:
        method = request.method
        if method not in ("GET", "HEAD"):
            return self._error(request, 405, "MethodNotAllowed", "The specified method is not allowed.")
        faults = self.faults
        attempt = self._attempt(method, key)
        rng = random.Random(f"{faults.seed}|{method}|{key}|{attempt}")
        if faults.latency:
            await asyncio.sleep(faults.latency)
        if faults.error_rate and rng.random() < faults.error_rate:
            return self._fail(request, rng, key)
        if faults.rate_429 and rng.random() < faults.rate_429:
            self.stats.faults["429"] += 1
            retry = {"Retry-After": str(faults.retry_after)}
            return self._error(request, 429, "TooManyRequests", "Too many requests.", headers=retry)
        if faults.reset_rate and rng.random() < faults.reset_rate:
            self.stats.faults["reset"] += 1
            logger.debug("fault: reset for %s", key)
            _reset(request)
            return Dropped()
        if method == "GET" and attempt <= faults.fail_first:
            self.stats.faults["fail_first"] += 1
            return self._error(request, 503, "SlowDown", "Please reduce your request rate.")
        if faults.is_missing(key):
            self.stats.faults["missing"] += 1
            return self._no_such_key(request, key)
        found = self._local(key)
        if found is None:
            return self._no_such_key(request, key)
        path, stat = found

        etag = f'"{await self._etag(path, stat)}"'
        headers = {
            "ETag": etag,
            "Last-Modified": _http_date(stat.st_mtime),
            "Accept-Ranges": "bytes",
            "Content-Type": "application/zip" if key.endswith(".zip") else "application/octet-stream",
            "Server": "AmazonS3",
        }
        if _not_modified(request, etag, stat.st_mtime):
            return web.Response(status=304, headers={k: headers[k] for k in ("ETag", "Last-Modified", "Server")})
        size = stat.st_size
        try:
            span = parse_range(request.headers.get("Range"), size)
        except Unsatisfiable:
            return self._error(
                request,
                416,
                "InvalidRange",
                "The requested range is not satisfiable",
                headers={"Content-Range": f"bytes */{size}"},
            )
        start, end = span if span is not None else (0, size)
        response = web.StreamResponse(status=206 if span is not None else 200, headers=headers)
        if span is not None:
            response.headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        response.content_length = end - start
        if method == "HEAD":
            await response.prepare(request)
            return response

        plan = self._body_faults(key, rng, start, end)
        with contextlib.suppress(ConnectionError):  # the client went away: nothing left to do
            await response.prepare(request)
            await self._send(request, response, key, path, size, start, end, *plan)
        return response

    def _no_such_key(self, request: web.BaseRequest, key: str) -> web.Response:
        return self._error(request, 404, "NoSuchKey", "The specified key does not exist.", key=key)

    def _body_faults(
        self, key: str, rng: random.Random, start: int, end: int
    ) -> tuple[int | None, int | None, frozenset[int]]:
        """Where to stall, where to cut, and which offsets to flip, for one GET of ``[start, end)``."""
        faults = self.faults
        length = end - start
        stall_at = cut_at = None
        flips: frozenset[int] = frozenset()
        if key in faults.stall_keys and length:
            stall_at = start + length // 2
            self.stats.faults["stall"] += 1
        if faults.truncate_rate and length and rng.random() < faults.truncate_rate:
            cut_at = start + rng.randrange(length)
            self.stats.faults["truncate"] += 1
        corrupt = key in faults.corrupt_keys or (faults.corrupt_rate > 0 and rng.random() < faults.corrupt_rate)
        if corrupt and length:
            flips = frozenset(rng.sample(range(start, end), min(3, length)))
            self.stats.faults["corrupt"] += 1
        return stall_at, cut_at, flips

    async def _send(
        self,
        request: web.BaseRequest,
        response: web.StreamResponse,
        key: str,
        path: str,
        size: int,
        start: int,
        end: int,
        stall_at: int | None,
        cut_at: int | None,
        flips: frozenset[int],
    ) -> None:
        """Stream ``[start, end)`` of the file, stalling, cutting and flipping bytes as planned."""
        stop = end if cut_at is None else cut_at
        drip = max(1, self.faults.drip_rate // 10) if key in self.faults.drip_keys else 0
        if drip:
            self.stats.faults["drip"] += 1
        with open(path, "rb") as handle:  # noqa: ASYNC230 (page-cache reads; big files go to a thread)
            handle.seek(start)
            at = start
            while at < stop:
                limit = stop - at
                if stall_at is not None and at < stall_at:
                    limit = min(limit, stall_at - at)
                want = min(drip or CHUNK, limit)
                chunk = handle.read(want) if size <= SYNC_READ else await asyncio.to_thread(handle.read, want)
                if not chunk:
                    break  # the file shrank under us
                if flips:
                    chunk = _flip(chunk, at, flips)
                await response.write(chunk)
                self.stats.bytes_sent += len(chunk)
                at += len(chunk)
                if drip:
                    await asyncio.sleep(0.1)
                if stall_at is not None and at == stall_at:
                    logger.debug("fault: stalling %s for %ss", key, self.faults.stall_seconds)
                    await asyncio.sleep(self.faults.stall_seconds)
                    stall_at = None
        if cut_at is not None:
            logger.debug("fault: truncating %s after %d of %d bytes", key, cut_at - start, end - start)
            # A clean close after what was written: the client sees the body end before Content-Length.
            transport = request.transport
            if transport is not None:
                transport.close()


def _flip(chunk: bytes, offset: int, flips: frozenset[int]) -> bytes:
    hits = [p - offset for p in flips if offset <= p < offset + len(chunk)]
    if not hits:
        return chunk
    data = bytearray(chunk)
    for p in hits:
        data[p] ^= 0xFF
    return bytes(data)


def _reset(request: web.BaseRequest) -> None:
    """Close the connection with a TCP RST, sending nothing."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            # Linger 0 turns the close into a reset.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def _not_modified(request: web.BaseRequest, etag: str, mtime: float) -> bool:
    match = request.headers.get("If-None-Match")
    if match is not None:
        tags = {t.strip().removeprefix("W/") for t in match.split(",")}
        return "*" in tags or etag in tags
    since = request.headers.get("If-Modified-Since")
    if since:
        with contextlib.suppress(TypeError, ValueError):
            return int(mtime) <= email.utils.parsedate_to_datetime(since).timestamp()
    return False
