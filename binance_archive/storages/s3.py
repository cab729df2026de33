"""The S3 storage: the mirror in an S3 or S3-compatible bucket (``s3://bucket/prefix``), through obstore.

Why obstore (Rust's object_store through pyo3) rather than aiobotocore: it is natively async with no
botocore (one self-contained wheel, no pinned AWS SDK to clash with the user's); its writes are atomic and its
streamed multipart writer aborts the upload when a write fails (checked on 0.12.1 against moto's S3 server).
But obstore drops a call whose awaiter is cancelled, mid-request: a cancelled ``put`` of a file, or a cancelled
write or close of the writer, left its multipart upload pending in the bucket. So large files go through the
writer, whose calls are shielded from cancellation, and an abort waits for the call in flight before it aborts.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from binance_archive.backends import CHUNK_SIZE, Storage, StoredObject, Writer
from binance_archive.common.options import flag, whole_number
from binance_archive.common.urls import as_typed
from binance_archive.errors import ConfigurationError, StorageError
from binance_archive.hookspecs import hookimpl

if TYPE_CHECKING:
    from obstore.store import S3Store

__all__ = ["MIN_PART_SIZE", "S3Storage"]

log = logging.getLogger(__name__)

MIN_PART_SIZE = 5 * 1024 * 1024
"""S3's smallest multipart part (all but the last)."""

_DEFAULT_PART_SIZE = 8 * 1024 * 1024
_BUCKET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-_]{1,254}$")
_INSTALL_HINT = "pip install 'binance-archive[s3]' (or pip install obstore)"


def _import_obstore() -> ModuleType:
    """obstore, imported only when an S3 storage is built (the core never needs it)."""
    try:
        import obstore
        import obstore.store
    except ImportError as exc:
        raise ConfigurationError(f"the s3 storage needs obstore: {_INSTALL_HINT}") from exc
    return obstore


class _Aborted(Exception):
    """Raised into obstore's writer to make it abort its multipart upload."""


class _S3Writer(Writer):
    """Buffers a small object and PUTs it on commit; past ``part_size`` it streams a multipart upload."""

    def __init__(self, storage: S3Storage, key: str) -> None:
        self._storage = storage
        self._key = key
        self._buffer = bytearray()
        self._stream: Any = None  # obstore's AsyncWritableFile once the object outgrows one part
        self._pending: asyncio.Future[Any] | None = None  # the stream's write or close in flight
        self._closing = False
        self._done = False

    async def write(self, chunk: bytes) -> None:
        if self._done:
            raise StorageError(f"the writer of {self._storage.url_of(self._key)} is already closed")
        if self._stream is None:
            self._buffer += chunk
            if len(self._buffer) < self._storage.part_size:
                return
            obstore = self._storage._obstore
            self._stream = obstore.open_writer_async(
                self._storage.store,
                self._key,
                buffer_size=self._storage.part_size,
                max_concurrency=self._storage.upload_concurrency,
            )
            chunk, self._buffer = bytes(self._buffer), bytearray()
        try:
            await self._shielded(self._stream.write(chunk))
        except Exception as exc:
            await self.abort()
            raise self._storage.error("write", self._key, exc) from None

    async def commit(self) -> None:
        if self._done:
            raise StorageError(f"the writer of {self._storage.url_of(self._key)} is already closed")
        try:
            if self._stream is None:
                data, self._buffer = bytes(self._buffer), bytearray()
                await self._storage.put_bytes(self._key, data)
            else:
                self._closing = True
                await self._shielded(self._stream.close())  # completes the upload: the object appears only now
        except StorageError:
            await self.abort()
            raise
        except Exception as exc:
            await self.abort()
            raise self._storage.error("write", self._key, exc) from None
        except BaseException:  # cancelled: nothing may stay half-uploaded
            await self.abort()
            raise
        self._done = True

    async def _shielded(self, call: Awaitable[Any]) -> None:
        """Await one of the stream's calls, which a cancellation does not interrupt (abort() waits for it).

        obstore drops a call whose awaiter is cancelled, wherever it is: a write that had begun the multipart
        upload, or a close between its last part and the completion, then leaves the upload pending in the
        bucket, and the stream can no longer abort it ("Writer already closed").
        """
        self._pending = asyncio.ensure_future(call)
        await asyncio.shield(self._pending)

    async def abort(self) -> None:
        if self._done:
            return
        self._done = True
        self._buffer = bytearray()
        stream, self._stream = self._stream, None
        pending, self._pending = self._pending, None
        if pending is not None:
            await asyncio.wait([pending])  # the call a cancellation left in flight ends first
            failed = pending.cancelled() or pending.exception() is not None  # (its failure is no news here)
            if self._closing and not failed:
                return  # the close completed the upload after all: the object is whole, as if committed
        if stream is not None:
            try:
                # obstore aborts the multipart upload when its context exits with an exception.
                await stream.__aexit__(_Aborted, _Aborted("aborted"), None)
            except Exception as exc:  # the upload is invisible either way; a lifecycle rule reaps leftovers
                log.warning(
                    "could not abort the upload of %s: %s", self._storage.url_of(self._key), self._storage._reason(exc)
                )


class S3Storage(Storage):
    """Stores the mirror in an S3 bucket (AWS, or any S3-compatible service), under an optional prefix.

    Choose it with a URL: ``Archive("s3://my-bucket/binance")``. Each object is written atomically: small
    ones (most of the archive) in one PUT, larger ones as a streamed multipart upload completed only on
    commit (an aborted or cancelled one is aborted on the server too); the engine writes each ``.CHECKSUM``
    last, as the marker of a complete file.

    A process killed mid-upload (SIGKILL, a crash, a lost machine) cannot abort its multipart upload: the
    upload stays pending in the bucket, invisible to listings, reads and ``verify``, harmless to a re-run (which
    uploads the file afresh), but billed for its parts until it is aborted. Give the bucket a lifecycle rule
    that aborts incomplete uploads, e.g. ``{"Rules": [{"ID": "abort-incomplete-uploads", "Status": "Enabled",
    "Filter": {}, "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}}]}`` with ``aws s3api
    put-bucket-lifecycle-configuration``. (The storage does not abort pending uploads itself: obstore cannot
    list them, and under a shared prefix they may belong to a run still going.)

    Settings come from the options, else from the usual AWS environment variables: ``AWS_ENDPOINT_URL``,
    ``AWS_REGION``/``AWS_DEFAULT_REGION``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
    ``AWS_SESSION_TOKEN``, else from a profile of the AWS CLI's files (``AWS_PROFILE``, else ``default``), else
    web identity or container credentials, else the instance's role. With none of them, opening the storage fails
    at once with a message saying what is missing and how to give it (:mod:`binance_archive.common.aws`); a public
    bucket is read with ``anonymous=True``. Credentials never appear in messages, reprs or logs.

    Args:
        url: ``s3://bucket`` or ``s3://bucket/prefix``.
        endpoint_url: an S3-compatible endpoint, e.g. ``http://127.0.0.1:9000`` (default: AWS).
        region: the bucket's region (default ``us-east-1``).
        access_key_id: the access key (default from the environment).
        secret_access_key: the secret key (default from the environment).
        session_token: a session token for temporary credentials.
        profile: a profile of the AWS CLI's files whose keys to use (default ``AWS_PROFILE``, else ``default``).
        anonymous: send unsigned requests, with no credentials (obstore's ``skip_signature``; s5cmd's
            ``--no-sign-request``): to read a public bucket, or write to one that lets anyone write. Default:
            ``AWS_SKIP_SIGNATURE`` (obstore's variable) when no key or profile is given, else no.
        allow_http: allow a plain ``http://`` endpoint (default: yes when the endpoint is ``http://``).
        part_size: bytes per multipart part, and the size from which objects are uploaded in parts
            (at least 5 MiB; default 8 MiB). A writer holds about ``(1 + upload_concurrency) * part_size``.
        upload_concurrency: parts of one object uploaded at once.
    """

    name: ClassVar[str] = "s3"
    schemes: ClassVar[tuple[str, ...]] = ("s3",)

    def __init__(
        self,
        url: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        session_token: str | None = None,
        profile: str | None = None,
        anonymous: bool | None = None,
        allow_http: bool | None = None,
        part_size: int = _DEFAULT_PART_SIZE,
        upload_concurrency: int = 4,
    ) -> None:
        parts = urlsplit(url)
        # A refused URL is named as typed less its secrets (user:password@, the query string).
        if parts.scheme.lower() != "s3" or not parts.netloc:
            raise ConfigurationError(f"expected an s3://bucket/prefix URL, got {as_typed(url)!r}")
        if "@" in parts.netloc:
            raise ConfigurationError(
                f"an s3:// URL names a bucket, not user:password@ ({as_typed(url)!r}); "
                "put credentials in access_key_id/secret_access_key or the environment"
            )
        if not _BUCKET.match(parts.netloc):
            raise ConfigurationError(f"invalid bucket name {parts.netloc!r} in {as_typed(url)!r}")
        self.bucket = parts.netloc
        self.prefix = parts.path.strip("/")
        if self.prefix and any(p in ("", ".", "..") for p in self.prefix.split("/")):
            raise ConfigurationError(f"invalid prefix {self.prefix!r} in {as_typed(url)!r}")
        minimum = f"a whole number of at least {MIN_PART_SIZE} bytes (S3's minimum)"
        self.part_size = whole_number(part_size, "part_size", at_least=MIN_PART_SIZE, what=minimum)
        self.upload_concurrency = whole_number(upload_concurrency, "upload_concurrency", at_least=1)
        env = os.environ
        endpoint = endpoint_url or env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None
        if endpoint is not None:
            ep = urlsplit(endpoint)
            if ep.scheme not in ("http", "https") or not ep.hostname:
                raise ConfigurationError("invalid endpoint_url; expected http(s)://HOST[:PORT]")
            if ep.username or ep.password:
                raise ConfigurationError("put credentials in access_key_id/secret_access_key, not in endpoint_url")
            endpoint = endpoint.rstrip("/")
        self.endpoint_url = endpoint
        if profile is not None and (not isinstance(profile, str) or not profile.strip()):
            raise ConfigurationError(f"profile must be the name of an AWS profile, not {profile!r}")
        # Here, not at the top: every run registers this storage, and only an S3 mirror needs the AWS helpers.
        from binance_archive.common.aws import env_flag, resolve

        if anonymous is None:
            given = access_key_id or secret_access_key or session_token or profile
            anonymous = env_flag("AWS_SKIP_SIGNATURE") and not given
        self._credentials = resolve(
            anonymous=flag(anonymous, "anonymous"),
            access_key_id=access_key_id,
            secret_access_key=secret_access_key,
            session_token=session_token,
            profile=profile,
        )
        self.region = region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or self._credentials.region
        self.allow_http = allow_http if allow_http is not None else bool(endpoint and endpoint.startswith("http://"))
        self._obstore = _import_obstore()
        self._store: S3Store | None = None

    def __repr__(self) -> str:
        where = f", endpoint={self.endpoint_url!r}" if self.endpoint_url else ""
        return f"S3Storage({self.location!r}{where})"

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def url_of(self, key: str) -> str:
        return f"{self.location}/{key}"

    @property
    def store(self) -> S3Store:
        """The obstore store, built on first use."""
        if self._store is None:
            config: dict[str, Any] = {}
            if self.endpoint_url:
                config["endpoint"] = self.endpoint_url
            if self.region:
                config["region"] = self.region
            credentials = self._credentials
            if credentials.anonymous:
                config["skip_signature"] = True
            if credentials.key_id is not None and credentials.secret is not None:
                config["access_key_id"] = credentials.key_id.value
                config["secret_access_key"] = credentials.secret.value
            if credentials.token is not None:
                config["session_token"] = credentials.token.value
            client_options = {"allow_http": True} if self.allow_http else None
            try:
                self._store = self._obstore.store.S3Store(
                    self.bucket, prefix=self.prefix or None, client_options=client_options, **config
                )
            except Exception as exc:
                raise ConfigurationError(f"invalid S3 settings for {self.location}: {self._reason(exc)}") from None
        return self._store

    @property
    def credentials(self) -> str:
        """Where the credentials come from: ``anonymous``, ``options``, ``environment``, ``profile NAME``,
        ``web identity``, ``container`` or ``instance metadata``."""
        return self._credentials.source

    async def open(self) -> None:
        if self._credentials.source == "instance metadata" and self._store is None:
            from binance_archive.common.aws import instance_role_missing, no_credentials

            # The last source left: asked once, briefly, rather than by obstore before every request (minutes each
            # where nothing answers at 169.254.169.254), so that a user with no credentials hears so at once.
            why = await instance_role_missing("AWS_METADATA_ENDPOINT")  # obstore's setting of the endpoint
            if why is not None:
                anonymous = (
                    "to read a public bucket without credentials: the storage option anonymous=true "
                    "(on the command line: --storage-option anonymous=true)"
                )
                endpoint = "the storage option endpoint_url=http://HOST:PORT or AWS_ENDPOINT_URL"
                raise ConfigurationError(
                    no_credentials(
                        self.location,
                        self.endpoint_url,
                        why,
                        options="storage options",
                        endpoint_option=endpoint,
                        anonymous=anonymous,
                        note=self._credentials.note,
                    )
                )
        _ = self.store  # configuration errors surface before any file is fetched

    # -- errors --------------------------------------------------------------------------------------------

    def _reason(self, exc: BaseException) -> str:
        """The first line of an error, with any credential blanked out."""
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        for secret in self._credentials.secrets:
            if secret.value:
                text = text.replace(secret.value, "***")
        return text[:500]

    def error(self, action: str, key: str, exc: BaseException) -> StorageError:
        """A StorageError for a failed ``action`` on ``key``, saying what to do where it can."""
        name = type(exc).__name__
        reason = self._reason(exc)
        text = str(exc)
        if name in ("PermissionDeniedError", "UnauthenticatedError") or "AccessDenied" in text:
            if self._credentials.anonymous:
                hint = (
                    "; anonymous=true sends unsigned requests, and this bucket does not allow that one to everyone:"
                    " give credentials instead (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)"
                )
            else:
                hint = f"; check the AWS credentials (taken from the {self._credentials.source}) and the bucket policy"
        elif "SignatureDoesNotMatch" in text or "InvalidAccessKeyId" in text:
            hint = f"; check the AWS credentials (taken from the {self._credentials.source})"
        elif "/latest/api/token" in text or "/latest/meta-data/" in text:
            # The instance's role, which answered when the storage opened, gives no credentials now.
            hint = (
                "; the instance metadata service gave no credentials: set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), or read a public bucket with anonymous=true"
            )
        elif "NoSuchBucket" in text:
            hint = f"; the bucket {self.bucket!r} does not exist (check the URL and endpoint_url)"
        else:
            hint = ""
        return StorageError(f"cannot {action} {self.url_of(key)}: {reason}{hint}")

    def _check(self, key: str) -> str:
        if not key or key.startswith("/") or any(p in ("", ".", "..") for p in key.split("/")):
            raise StorageError(f"refusing key {key!r}: not a plain object key")
        return key

    # -- the contract --------------------------------------------------------------------------------------

    async def stat(self, key: str) -> StoredObject | None:
        try:
            meta = await self._obstore.head_async(self.store, self._check(key))
        except FileNotFoundError:
            return None
        except Exception as exc:
            raise self.error("inspect", key, exc) from None
        return StoredObject(key, int(meta["size"]), meta.get("last_modified"))

    @asynccontextmanager
    async def writer(self, key: str) -> AsyncIterator[Writer]:
        writer = _S3Writer(self, self._check(key))
        try:
            yield writer
        finally:
            await writer.abort()

    async def put_bytes(self, key: str, data: bytes) -> None:
        try:
            await self._obstore.put_async(self.store, self._check(key), data, use_multipart=False)
        except StorageError:
            raise
        except Exception as exc:
            raise self.error("write", key, exc) from None

    async def put_file(self, key: str, path: Path) -> None:
        self._check(key)
        try:
            size = (await asyncio.to_thread(os.stat, path)).st_size
        except FileNotFoundError:
            raise StorageError(f"cannot upload {path}: it does not exist") from None
        except OSError as exc:
            raise StorageError(f"cannot upload {path}: {exc.strerror or exc}") from None
        if size > self.part_size:
            # Through the writer, whose multipart upload is aborted when the copy fails or is cancelled: obstore's
            # own put of a file leaves a cancelled upload pending in the bucket (invisible, but billed).
            await self._put_file_in_parts(key, Path(path))
            return
        # One part: obstore reads the file itself and PUTs it.
        try:
            await self._obstore.put_async(self.store, key, Path(path), use_multipart=False)
        except StorageError:
            raise
        except FileNotFoundError as exc:
            if not await asyncio.to_thread(os.path.exists, path):
                raise StorageError(f"cannot upload {path}: it does not exist") from None
            raise self.error("write", key, exc) from None
        except Exception as exc:
            raise self.error("write", key, exc) from None

    async def _put_file_in_parts(self, key: str, path: Path) -> None:
        try:
            handle = await asyncio.to_thread(open, path, "rb")
        except FileNotFoundError:
            raise StorageError(f"cannot upload {path}: it does not exist") from None
        except OSError as exc:
            raise StorageError(f"cannot upload {path}: {exc.strerror or exc}") from None
        try:
            async with self.writer(key) as writer:
                while True:
                    try:
                        chunk = await asyncio.to_thread(handle.read, self.part_size)
                    except OSError as exc:
                        raise StorageError(f"cannot upload {path}: {exc.strerror or exc}") from None
                    if not chunk:
                        break
                    await writer.write(chunk)
                await writer.commit()
        finally:
            handle.close()

    async def _get(self, key: str) -> Any:
        """obstore's answer to a GET of ``key`` (its bytes not read yet)."""
        try:
            return await self._obstore.get_async(self.store, self._check(key))
        except FileNotFoundError:
            raise StorageError(f"{self.url_of(key)} does not exist") from None
        except StorageError:
            raise
        except Exception as exc:
            raise self.error("read", key, exc) from None

    async def read(self, key: str) -> AsyncIterator[bytes]:
        result = await self._get(key)
        try:
            async for chunk in result.stream(min_chunk_size=CHUNK_SIZE):
                yield bytes(chunk)
        except Exception as exc:
            raise self.error("read", key, exc) from None

    async def read_bytes(self, key: str, *, max_size: int) -> bytes:
        result = await self._get(key)
        size = int(result.meta["size"])
        if size > max_size:
            raise StorageError(f"{self.url_of(key)} is {size} bytes; at most {max_size} expected")
        try:
            return bytes(await result.bytes_async())
        except Exception as exc:
            raise self.error("read", key, exc) from None

    async def list(self, prefix: str = "data/") -> AsyncIterator[StoredObject]:
        folder = prefix.strip("/")
        try:
            stream = self._obstore.list(self.store, prefix=folder or None, chunk_size=1000)
            async for batch in stream:
                for meta in batch:
                    yield StoredObject(str(meta["path"]), int(meta["size"]), meta.get("last_modified"))
        except Exception as exc:
            raise self.error("list", prefix, exc) from None

    async def delete(self, key: str) -> None:
        try:
            await self._obstore.delete_async(self.store, self._check(key))
        except FileNotFoundError:
            return
        except Exception as exc:
            raise self.error("delete", key, exc) from None


@hookimpl
def register_storages() -> list[type[Storage]]:
    return [S3Storage]
