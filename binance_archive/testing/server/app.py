""":class:`FakeArchiveServer`: its life cycle and URLs, and each request sent to the bucket or to an object."""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

from binance_archive.core import CHECKSUM_SUFFIX, ArchiveFile, url_for_key
from binance_archive.testing.server.listing import BucketRequests
from binance_archive.testing.server.objects import Dropped, ObjectRequests
from binance_archive.testing.server.stats import CountingServer
from binance_archive.testing.tree import key_path

__all__ = ["FakeArchiveServer"]

logger = logging.getLogger("binance_archive.testing")


class FakeArchiveServer(BucketRequests, ObjectRequests):
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

    # life cycle ----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen; return once the port is open."""
        if self._runner is not None:
            return
        kwargs: dict[str, Any] = {} if self._access_log else {"access_log": None}
        server = CountingServer(self._handle, self.stats, **kwargs)
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
        if not isinstance(response, Dropped):
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
