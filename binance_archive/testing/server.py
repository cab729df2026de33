"""A stand-in for data.binance.vision on loopback: its files, its S3 listing, and the faults of a real network.

:class:`FakeArchiveServer` serves a tree written by :mod:`binance_archive.testing.tree` (or any folder laid
out like the archive) the way CloudFront and S3 serve the real one:

- ``GET``/``HEAD /data/...`` (as data.binance.vision) and ``/{bucket}/data/...`` (S3 path style, so S3
  clients such as s5cmd with ``--endpoint-url`` work too), with Content-Length, Last-Modified, an MD5 ETag,
  single byte ranges, ``If-None-Match``/``If-Modified-Since``, and 404 for missing keys;
- ``GET /{bucket}?prefix=...`` (and ``GET /?prefix=...``): ListObjects v1, or v2 with ``list-type=2``, at
  most ``page_size`` entries a page, ``.CHECKSUM`` objects included.

Faults (:class:`Faults`) can be set at construction or changed at any time through ``server.faults``. They
apply to every file request, zips and sidecars alike; a listing request is only slowed by ``latency`` and
failed by ``error_rate``. Each request draws its faults from a random generator seeded by the fault seed,
the key and how many times that key was asked for, so a run is reproducible whatever the concurrency.
:class:`Stats` counts what the clients did.
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import contextlib
import datetime as dt
import email.utils
import functools
import hashlib
import logging
import os
import random
import socket
import stat as stat_module
import struct
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape

import attrs
from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from binance_archive.core import CHECKSUM_SUFFIX, ArchiveFile, url_for_key
from binance_archive.testing.tree import is_safe_key, key_path

__all__ = ["DEFAULT_BUCKET", "FakeArchiveServer", "Faults", "Stats"]

logger = logging.getLogger("binance_archive.testing")

DEFAULT_BUCKET = "data.binance.vision"
_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
_REGION = "ap-northeast-1"
_MAX_PAGE = 1000
_CHUNK = 64 * 1024
# Files up to this size are read on the event loop (a page-cache read is faster than a thread hop).
_SYNC_READ = 1024 * 1024


def _keys(value: Iterable[str | ArchiveFile] | None) -> set[str]:
    """Keys from strings or :class:`ArchiveFile` objects (whose ``str`` is their key)."""
    return {str(item) for item in value or ()}


def _rate(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must be a fraction between 0 and 1, not {value}")


def _non_negative(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must not be negative, not {value}")


@attrs.define
class Faults:
    """What goes wrong, and how often. Mutable: tests change it while the server runs.

    Rates are fractions of requests (0 to 1). They are checked in this order, the first that fires wins:
    ``error_rate``, ``rate_429``, ``reset_rate``, ``fail_first``, ``missing_keys``; then a served GET may be
    stalled, truncated and/or corrupted.

    Attributes:
        latency: seconds added before answering every request (listings too).
        error_rate: fraction answered 500 or 503 (listings too).
        rate_429: fraction answered 429 with ``Retry-After: retry_after``.
        retry_after: the Retry-After of those 429s, in seconds.
        reset_rate: fraction whose connection is reset (TCP RST) without any response.
        truncate_rate: fraction of GETs that send the full Content-Length but close after part of the body.
        corrupt_rate: fraction of GETs whose body has a few bytes flipped (the length stays right).
        corrupt_keys: keys whose GETs are always corrupted.
        missing_keys: keys answered 404 although on disk, and left out of listings: a missing date. The
            sidecar of a missing zip is missing too; list a sidecar key alone to lose only the sidecar.
        stall_keys: keys whose GETs send the headers and part of the body, then pause ``stall_seconds``
            before sending the rest (for client timeout tests).
        stall_seconds: how long those GETs pause.
        drip_keys: keys whose GETs send their body slowly, never pausing long: ``drip_rate`` bytes a second,
            in ten small writes a second (a server that never stalls outright, yet would take hours).
        drip_rate: bytes a second for those GETs.
        fail_first: each key's first N GETs are answered 503 (deterministic retry tests); counted since the
            server started or since :meth:`FakeArchiveServer.reset_attempts`.
        seed: seed of the random draws.
    """

    latency: float = attrs.field(default=0.0, validator=_non_negative)
    error_rate: float = attrs.field(default=0.0, validator=_rate)
    rate_429: float = attrs.field(default=0.0, validator=_rate)
    retry_after: int = attrs.field(default=1, validator=_non_negative)
    reset_rate: float = attrs.field(default=0.0, validator=_rate)
    truncate_rate: float = attrs.field(default=0.0, validator=_rate)
    corrupt_rate: float = attrs.field(default=0.0, validator=_rate)
    corrupt_keys: set[str] = attrs.field(factory=set, converter=_keys)
    missing_keys: set[str] = attrs.field(factory=set, converter=_keys)
    stall_keys: set[str] = attrs.field(factory=set, converter=_keys)
    stall_seconds: float = attrs.field(default=30.0, validator=_non_negative)
    drip_keys: set[str] = attrs.field(factory=set, converter=_keys)
    drip_rate: int = attrs.field(default=100, validator=_non_negative)
    fail_first: int = attrs.field(default=0, validator=_non_negative)
    seed: int = 0

    def is_missing(self, key: str) -> bool:
        """Whether ``key`` is hidden by ``missing_keys`` (directly, or as the sidecar of a hidden zip)."""
        if key in self.missing_keys:
            return True
        return key.endswith(CHECKSUM_SUFFIX) and key[: -len(CHECKSUM_SUFFIX)] in self.missing_keys


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
        faults: faults injected, by kind (``error``, ``429``, ``reset``, ``fail_first``, ``missing``,
            ``truncate``, ``corrupt``, ``stall``, ``drip``).
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


class _CountingServer(web.Server):
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


class _Unsatisfiable(Exception):
    pass


class _Dropped(web.Response):
    """The answer to a reset connection: never sent, as aiohttp finds the transport closed."""


def _parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, end exclusive)`` of a single ``bytes=`` range, or ``None`` to send the whole body.

    Malformed and multi-range headers are ignored (RFC 9110 allows answering them with the whole body, as
    S3 does). Raises :class:`_Unsatisfiable` for a range outside the body.
    """
    if not header:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    try:
        if not first:
            suffix = int(last)
            if suffix <= 0 or size == 0:
                raise _Unsatisfiable
            return max(0, size - suffix), size
        start = int(first)
        if start >= size:
            raise _Unsatisfiable
        end = int(last) + 1 if last else size
    except ValueError:
        return None
    if start < 0 or end <= start:
        return None  # "b-a": not a valid range, so ignored
    return start, min(end, size)


def _http_date(timestamp: float) -> str:
    return email.utils.formatdate(timestamp, usegmt=True)


@functools.lru_cache(maxsize=4096)  # files written together share their time stamps
def _iso(timestamp: float) -> str:
    """S3's LastModified: ``2024-01-02T02:50:00.000Z``."""
    moment = dt.datetime.fromtimestamp(timestamp, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _after_prefix(prefix: str) -> str:
    """The smallest string greater than every string starting with ``prefix``."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


class FakeArchiveServer:
    """data.binance.vision and its S3 bucket on ``127.0.0.1``, serving the tree under ``root``.

    Use it as ``async with FakeArchiveServer(root, error_rate=0.1) as server: ...`` (or ``await start()``
    and ``await close()``). Keyword arguments other than the ones below are :class:`Faults` fields.

    Args:
        root: the folder holding ``data/...`` (every file under it is an object; dot files are skipped).
        bucket: the bucket name of the listing and of path-style object URLs.
        host: the address to listen on.
        port: the port; 0 picks a free one (read it back from ``server.port``).
        page_size: the most entries a listing page holds (S3's limit is 1000; lower it for cheap paging).
        faults: a :class:`Faults` to start with, instead of the keyword knobs.
        access_log: log each request to ``aiohttp.access``.
        shutdown_timeout: seconds ``close()`` waits for requests still running (stalled ones) before
            cancelling them.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        bucket: str = DEFAULT_BUCKET,
        host: str = "127.0.0.1",
        port: int = 0,
        page_size: int = _MAX_PAGE,
        faults: Faults | None = None,
        access_log: bool = False,
        shutdown_timeout: float = 1.0,
        **knobs: Any,
    ) -> None:
        if not 1 <= page_size <= _MAX_PAGE:
            raise ValueError(f"page_size must be between 1 and {_MAX_PAGE}, not {page_size}")
        if faults is not None and knobs:
            raise TypeError("give either faults= or fault keywords, not both")
        self.root = Path(root)
        self._root = os.fspath(root)
        self.bucket = bucket
        self.host = host
        self.page_size = page_size
        self.faults = faults if faults is not None else Faults(**knobs)
        self.stats = Stats()
        self._requested_port = port
        self._access_log = access_log
        self._shutdown_timeout = shutdown_timeout
        self._runner: web.ServerRunner | None = None
        self._port: int | None = None
        self._index: list[str] | None = None
        self._index_lock = asyncio.Lock()
        self._etags: dict[str, tuple[int, int, str]] = {}
        self._attempts: Counter[tuple[str, str]] = Counter()

    # life cycle ----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen; return once the port is open."""
        if self._runner is not None:
            return
        kwargs: dict[str, Any] = {} if self._access_log else {"access_log": None}
        server = _CountingServer(self._handle, self.stats, **kwargs)
        runner = web.ServerRunner(server, shutdown_timeout=self._shutdown_timeout)
        await runner.setup()
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self._requested_port))
            site = web.SockSite(runner, sock)
            await site.start()
        except BaseException:
            sock.close()
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = sock.getsockname()[1]
        logger.info("fake archive serving %s at %s (listing %s)", self.root, self.base_url, self.listing_url)

    async def close(self) -> None:
        """Stop listening and close every connection."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> FakeArchiveServer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def port(self) -> int:
        """The port listened on (only once started)."""
        if self._port is None:
            raise RuntimeError("the server is not started")
        return self._port

    @property
    def base_url(self) -> str:
        """The archive's base URL, like ``https://data.binance.vision``: ``http://127.0.0.1:PORT``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def listing_url(self) -> str:
        """The bucket's listing URL, like ``https://s3-ap-northeast-1.amazonaws.com/data.binance.vision``."""
        return f"{self.base_url}/{self.bucket}"

    def url(self, key: str | ArchiveFile) -> str:
        """The percent-encoded URL of a key (or of an :class:`ArchiveFile`'s zip)."""
        return url_for_key(self.base_url, str(key))

    def path(self, key: str | ArchiveFile) -> Path:
        """Where a key lives on disk."""
        return key_path(self.root, str(key))

    # index ---------------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Re-read the list of keys from disk (after files were added or removed while serving).

        Objects are always served from disk, and listings read sizes, dates and ETags fresh; only which
        keys exist is cached, built on the first listing.
        """
        self._index = self._scan()

    def reset_attempts(self) -> None:
        """Forget how often each key was asked for: ``fail_first`` fails each key's next GETs again."""
        self._attempts.clear()

    def _scan(self) -> list[str]:
        keys: list[str] = []
        for folder, dirs, names in os.walk(self.root):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            relative = Path(folder).relative_to(self.root).as_posix()
            base = "" if relative == "." else relative + "/"
            keys.extend(base + name for name in names if not name.startswith("."))
        # S3 lists in UTF-8 byte order, which is also the order of code points.
        keys.sort()
        logger.debug("indexed %d keys under %s", len(keys), self.root)
        return keys

    async def _keys(self) -> list[str]:
        if self._index is None:
            async with self._index_lock:
                if self._index is None:
                    self._index = await asyncio.to_thread(self._scan)
        return self._index

    def _local(self, key: str) -> tuple[str, os.stat_result] | None:
        """The file behind ``key`` and its stat, or ``None`` if there is no such file.

        Plain strings, not pathlib: a listing page resolves a thousand keys.
        """
        if not is_safe_key(key):
            return None
        path = os.path.join(self._root, key if os.sep == "/" else key.replace("/", os.sep))
        try:
            stat = os.stat(path)
        except OSError:
            return None
        return (path, stat) if stat_module.S_ISREG(stat.st_mode) else None

    async def _etag(self, path: str, stat: os.stat_result) -> str:
        """The object's ETag: the MD5 of its bytes (as S3 gives for single-part uploads), cached."""
        cached = self._etags.get(path)
        if cached and cached[0] == stat.st_size and cached[1] == stat.st_mtime_ns:
            return cached[2]
        if stat.st_size <= _SYNC_READ:
            digest = _md5_file(path)
        else:
            digest = await asyncio.to_thread(_md5_file, path)
        self._etags[path] = (stat.st_size, stat.st_mtime_ns, digest)
        return digest

    # requests ------------------------------------------------------------------------------------

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        stats = self.stats
        stats.requests += 1
        stats.by_method[request.method] += 1
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        try:
            response = await self._dispatch(request)
        finally:
            stats.in_flight -= 1
        if not isinstance(response, _Dropped):
            stats.by_status[response.status] += 1
        return response

    async def _dispatch(self, request: web.BaseRequest) -> web.StreamResponse:
        path = request.path
        bucket_root = f"/{self.bucket}"
        if path in ("", "/", bucket_root, bucket_root + "/"):
            self.stats.listing_requests += 1
            return await self._bucket(request)
        key = path[len(bucket_root) + 1 :] if path.startswith(bucket_root + "/") else path[1:]
        if key.endswith(".zip"):
            self.stats.zip_requests += 1
        elif key.endswith(CHECKSUM_SUFFIX):
            self.stats.checksum_requests += 1
        else:
            self.stats.other_requests += 1
        self.stats.by_key[key] += 1
        return await self._object(request, key)

    def _error(
        self,
        request: web.BaseRequest,
        status: int,
        code: str,
        message: str,
        *,
        key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        """An S3-style XML error (no body for HEAD)."""
        all_headers = {"Server": "AmazonS3", "x-amz-bucket-region": _REGION, **(headers or {})}
        if request.method == "HEAD":
            return web.Response(status=status, headers=all_headers)
        key_field = "" if key is None else f"<Key>{escape(key)}</Key>"
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{escape(message)}</Message>{key_field}</Error>"
        ).encode()
        self.stats.bytes_sent += len(body)
        return web.Response(status=status, body=body, content_type="application/xml", headers=all_headers)

    async def _bucket(self, request: web.BaseRequest) -> web.StreamResponse:
        faults = self.faults
        if faults.latency:
            await asyncio.sleep(faults.latency)
        rng = random.Random(f"{faults.seed}|{request.method}|{request.path_qs}|{self._attempt('LIST', '')}")
        if faults.error_rate and rng.random() < faults.error_rate:
            return self._fail(request, rng, "listing")
        if request.method == "HEAD":  # HeadBucket
            return web.Response(headers={"x-amz-bucket-region": _REGION, "Server": "AmazonS3"})
        if request.method != "GET":
            return self._error(request, 405, "MethodNotAllowed", "The method is not allowed on the bucket.")
        if "location" in request.query:
            location = f'<LocationConstraint xmlns="{_NS}">{_REGION}</LocationConstraint>'
            return self._xml('<?xml version="1.0" encoding="UTF-8"?>\n' + location)
        try:
            return self._xml(await self._listing(request.query))
        except ValueError as exc:
            return self._error(request, 400, "InvalidArgument", str(exc))

    def _xml(self, body: str) -> web.Response:
        data = body.encode("utf-8")
        self.stats.bytes_sent += len(data)
        headers = {"x-amz-bucket-region": _REGION, "Server": "AmazonS3"}
        return web.Response(body=data, content_type="application/xml", headers=headers)

    def _attempt(self, method: str, key: str) -> int:
        self._attempts[(method, key)] += 1
        return self._attempts[(method, key)]

    def _fail(self, request: web.BaseRequest, rng: random.Random, what: str) -> web.Response:
        self.stats.faults["error"] += 1
        status = rng.choice((500, 503))
        logger.debug("fault: %d for %s", status, what)
        if status == 500:
            return self._error(request, 500, "InternalError", "We encountered an internal error. Please try again.")
        return self._error(request, 503, "SlowDown", "Please reduce your request rate.")

    # listing -------------------------------------------------------------------------------------

    async def _listing(self, query: Any) -> str:
        v2 = query.get("list-type") == "2"
        prefix = query.get("prefix", "")
        delimiter = query.get("delimiter", "")
        url_encode = query.get("encoding-type") == "url"
        try:
            max_keys = int(query.get("max-keys", _MAX_PAGE))
        except ValueError:
            raise ValueError("max-keys must be an integer") from None
        if max_keys < 0:
            raise ValueError("max-keys must not be negative")
        max_keys = min(max_keys, self.page_size)
        token = query.get("continuation-token")
        if v2:
            start_after = query.get("start-after", "")
            after = _decode_token(token) if token is not None else start_after
        else:
            after = query.get("marker", "")

        keys = await self._keys()
        taken: list[tuple[str, bool]] = []
        truncated = False
        if max_keys:
            for entry in self._entries(keys, prefix, delimiter, after):
                if len(taken) == max_keys:
                    truncated = True
                    break
                taken.append(entry)
        contents = [name for name, is_prefix in taken if not is_prefix]
        prefixes = [name for name, is_prefix in taken if is_prefix]

        def enc(value: str) -> str:
            return escape(quote(value, safe="/") if url_encode else value)

        out = ['<?xml version="1.0" encoding="UTF-8"?>\n', f'<ListBucketResult xmlns="{_NS}">']
        out.append(f"<Name>{escape(self.bucket)}</Name><Prefix>{enc(prefix)}</Prefix>")
        if v2:
            if query.get("start-after") is not None:
                out.append(f"<StartAfter>{enc(query['start-after'])}</StartAfter>")
            if token is not None:
                out.append(f"<ContinuationToken>{escape(token)}</ContinuationToken>")
            if truncated:
                out.append(f"<NextContinuationToken>{_encode_token(taken[-1][0])}</NextContinuationToken>")
            out.append(f"<KeyCount>{len(taken)}</KeyCount>")
        else:
            out.append(f"<Marker>{enc(after)}</Marker>")
            if truncated and delimiter:
                # S3 sends NextMarker only with a delimiter; without one, clients page from the last key.
                out.append(f"<NextMarker>{enc(taken[-1][0])}</NextMarker>")
        out.append(f"<MaxKeys>{max_keys}</MaxKeys>")
        if delimiter:
            out.append(f"<Delimiter>{enc(delimiter)}</Delimiter>")
        if url_encode:
            out.append("<EncodingType>url</EncodingType>")
        out.append(f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>")
        for key in contents:
            found = self._local(key)
            if found is None:
                continue  # removed since the index was built
            path, stat = found
            etag = await self._etag(path, stat)
            out.append(
                f"<Contents><Key>{enc(key)}</Key><LastModified>{_iso(stat.st_mtime)}</LastModified>"
                f"<ETag>&quot;{etag}&quot;</ETag><Size>{stat.st_size}</Size>"
                "<StorageClass>STANDARD</StorageClass></Contents>"
            )
        for name in prefixes:
            out.append(f"<CommonPrefixes><Prefix>{enc(name)}</Prefix></CommonPrefixes>")
        out.append("</ListBucketResult>")
        return "".join(out)

    def _entries(self, keys: list[str], prefix: str, delimiter: str, after: str) -> Iterator[tuple[str, bool]]:
        """``(key, False)`` and ``(common prefix, True)`` in order, after ``after``, skipping missing keys.

        Bisection finds the start and jumps over each common prefix's keys, so a page costs O(page + log n)
        (plus the missing keys stepped over), not a scan of the whole tree.
        """
        i = bisect.bisect_left(keys, prefix)
        if after:
            i = max(i, bisect.bisect_right(keys, after))
        missing = self.faults.is_missing
        while i < len(keys):
            key = keys[i]
            if not key.startswith(prefix):
                return
            if delimiter:
                cut = key.find(delimiter, len(prefix))
                if cut >= 0:
                    if missing(key):
                        i += 1
                        continue
                    common = key[: cut + len(delimiter)]
                    if common > after:  # a marker may be a common prefix already listed
                        yield common, True
                    i = bisect.bisect_left(keys, _after_prefix(common), i + 1)
                    continue
            if not missing(key):
                yield key, False
            i += 1

    # objects -------------------------------------------------------------------------------------

    async def _object(self, request: web.BaseRequest, key: str) -> web.StreamResponse:
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
            return _Dropped()
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
            span = _parse_range(request.headers.get("Range"), size)
        except _Unsatisfiable:
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
                want = min(drip or _CHUNK, limit)
                chunk = handle.read(want) if size <= _SYNC_READ else await asyncio.to_thread(handle.read, want)
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


def _md5_file(path: str) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK * 16):
            digest.update(chunk)
    return digest.hexdigest()


def _encode_token(after: str) -> str:
    return base64.urlsafe_b64encode(after.encode("utf-8")).decode("ascii")


def _decode_token(token: str) -> str:
    try:
        return base64.b64decode(token.encode("ascii"), altchars=b"-_", validate=True).decode("utf-8")
    except (ValueError, UnicodeError):
        raise ValueError("The continuation token provided is incorrect") from None
