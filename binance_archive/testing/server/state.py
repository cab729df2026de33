"""What the bucket's and the objects' requests of the fake server share.

Its settings and counters, the index of the keys on disk, the files and ETags behind them, how often each key was
asked for, and S3's error answers.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import random
import stat as stat_module
from collections import Counter
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from aiohttp import web

from binance_archive.testing.server.faults import Faults
from binance_archive.testing.server.stats import Stats
from binance_archive.testing.tree import is_safe_key

__all__ = ["CHUNK", "DEFAULT_BUCKET", "MAX_PAGE", "REGION", "SYNC_READ", "ServerState"]

logger = logging.getLogger("binance_archive.testing")

DEFAULT_BUCKET = "data.binance.vision"
REGION = "ap-northeast-1"
MAX_PAGE = 1000
CHUNK = 64 * 1024
# Files up to this size are read on the event loop (a page-cache read is faster than a thread hop).
SYNC_READ = 1024 * 1024


class ServerState:
    """The state of a :class:`~binance_archive.testing.server.FakeArchiveServer`, and what its answers share.

    The arguments are those of :class:`~binance_archive.testing.server.FakeArchiveServer`, documented there.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        bucket: str = DEFAULT_BUCKET,
        host: str = "127.0.0.1",
        port: int = 0,
        page_size: int = MAX_PAGE,
        faults: Faults | None = None,
        access_log: bool = False,
        shutdown_timeout: float = 1.0,
        **knobs: Any,
    ) -> None:
        if not 1 <= page_size <= MAX_PAGE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE}, not {page_size}")
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
        self._serving = 0  # file requests taken and not yet answered (for Faults.max_in_flight)

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
        if stat.st_size <= SYNC_READ:
            digest = _md5_file(path)
        else:
            digest = await asyncio.to_thread(_md5_file, path)
        self._etags[path] = (stat.st_size, stat.st_mtime_ns, digest)
        return digest

    # requests ------------------------------------------------------------------------------------

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
        all_headers = {"Server": "AmazonS3", "x-amz-bucket-region": REGION, **(headers or {})}
        if request.method == "HEAD":
            return web.Response(status=status, headers=all_headers)
        key_field = "" if key is None else f"<Key>{escape(key)}</Key>"
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{escape(message)}</Message>{key_field}</Error>"
        ).encode()
        self.stats.bytes_sent += len(body)
        return web.Response(status=status, body=body, content_type="application/xml", headers=all_headers)

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


def _md5_file(path: str) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK * 16):
            digest.update(chunk)
    return digest.hexdigest()
