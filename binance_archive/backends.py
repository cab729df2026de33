"""The contract every transport and storage implements: two small async base classes.

A **transport** fetches objects of the archive (by key) and lists prefixes; a **storage** keeps the mirror.
The engine (:class:`binance_archive.Archive`) sits between them: it asks the transport for a file's bytes,
hashes them while they pass, and hands them to the storage, which publishes them under their final key only
when the engine commits a verified file.

Backends translate the errors of their own libraries into :mod:`binance_archive.errors` at their boundary:

- a transport raises :class:`~binance_archive.errors.FileMissingError` for an object that does not exist,
  :class:`~binance_archive.errors.RetryableError` for anything worth another try (5xx, 429, timeouts,
  resets, truncated bodies) and :class:`~binance_archive.errors.TransportError` for the rest;
- a storage raises :class:`~binance_archive.errors.StorageError`.

Both are async context managers; the engine enters them once per :class:`~binance_archive.Archive`.
Third parties subclass these, register the class through the ``register_transports`` or
``register_storages`` hook, and ship it through the ``binance_archive`` entry-point group (see docs/plugins.md).
"""

from __future__ import annotations

import abc
import datetime as dt
import os
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self

import attrs

from binance_archive.core.listing import ListingPage
from binance_archive.errors import StorageError, TransportError, VerificationError

__all__ = ["Body", "Storage", "StoredObject", "Transport", "Writer"]

CHUNK_SIZE = 256 * 1024


class Body(abc.ABC):
    """The bytes of one fetched object: a stream of chunks, and perhaps a file already on local disk.

    ``local_path`` lets a transport that stages files on disk (s5cmd, a local mirror) hand the file to a
    storage that can adopt it without another copy (a hard link); the engine still hashes it.
    """

    size: int | None = None
    """The object's size where the transport knows it (Content-Length), else ``None``."""

    local_path: Path | None = None
    """A local file holding exactly these bytes, if there is one."""

    loop_free: bool = False
    """Whether :meth:`chunks` may be iterated on an event loop of another thread, not only on the one that made
    the request: true when the client does its reading on threads of its own (pyreqwest). The engine then
    receives, hashes and writes a large body in a worker thread, where no chunk passes through its own loop
    (see :attr:`Writer.writes_in_thread`). A body whose reads are bound to the loop that made them (aiohttp's)
    leaves it false."""

    blocking: bool = False
    """Whether :meth:`blocking_chunks` may be called instead of :meth:`chunks`, in a worker thread. The HTTP
    transport says so of a large body: it then sends the GET again from that thread, on a blocking connection of
    its own, which receives a large body for less CPU than an async client hands it over (see
    docs/performance.md). The engine uses it only for a writer that :attr:`Writer.writes_in_thread`."""

    @abc.abstractmethod
    def chunks(self) -> AsyncIterator[bytes]:
        """The object's bytes, in order. Raises RetryableError when the stream breaks off."""

    def blocking_chunks(self) -> Iterator[bytes | memoryview]:
        """The object's bytes, in order, from a plain iterator that blocks: called from a worker thread when
        :attr:`blocking` is true, instead of :meth:`chunks`. A chunk may be a view of a buffer the reader fills
        again for the next one (the HTTP transport's is), so it is valid until the next chunk is asked for: the
        engine hashes and writes each at once. Leaving the transport's ``get()`` (a cancelled download) must make
        a read blocked in here fail soon, so that the thread does not outlive the file."""
        raise NotImplementedError(f"{type(self).__name__} has no blocking reader")


class FileBody(Body):
    """A body read from a local file (used by transports that stage or mirror files on disk)."""

    def __init__(self, path: Path, *, chunk_size: int = CHUNK_SIZE) -> None:
        self.local_path = path
        self.size = path.stat().st_size
        self._chunk_size = chunk_size

    async def chunks(self) -> AsyncIterator[bytes]:
        import aiofiles

        assert self.local_path is not None
        async with aiofiles.open(self.local_path, "rb") as handle:
            while chunk := await handle.read(self._chunk_size):
                yield chunk


class _Resource:
    """What transports and storages share: ``open``/``close`` hooks and the async context manager on them."""

    async def open(self) -> None:  # an optional hook: empty on purpose
        """Acquire resources (sessions, processes, clients). Called once, when the engine enters the backend."""

    async def close(self) -> None:  # an optional hook: empty on purpose
        """Release everything :meth:`open` acquired."""

    def import_dependencies(self) -> None:  # an optional hook: empty on purpose
        """Import now the modules the first request or write will need (a backend may import them lazily).

        ``download --processes N`` calls it once, before it forks its processes, so that they share those modules
        instead of each importing them before its first request.
        """

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


class Transport(_Resource, abc.ABC):
    """Fetches objects of the archive by key, and lists its prefixes.

    Subclasses set :attr:`name`, take their options as keyword arguments of ``__init__`` (the CLI passes
    ``--transport-option KEY=VALUE`` through), and implement :meth:`get` (and :meth:`list` where they can).
    """

    name: ClassVar[str]
    """The name users choose the transport by (``--transport NAME``)."""

    default_concurrency: ClassVar[int] = 64
    """How many files the engine keeps in flight when the user does not say."""

    @abc.abstractmethod
    def get(self, key: str) -> AbstractAsyncContextManager[Body]:
        """Open the object ``key`` (e.g. ``data/spot/daily/klines/...zip``) for reading.

        The context manager yields a :class:`Body` and releases the connection or staged file on exit.

        Raises:
            FileMissingError: the archive has no such object.
            RetryableError: a transient failure; the engine retries.
            TransportError: any other failure.
        """

    async def get_bytes(self, key: str, *, max_size: int) -> bytes:
        """The whole (small) object ``key``; used for ``.CHECKSUM`` sidecars.

        Raises:
            VerificationError: when the object is larger than ``max_size`` (it is not read further).
        """
        data = bytearray()
        async with self.get(key) as body:
            if body.size is not None and body.size > max_size:
                raise VerificationError(f"{key} is {body.size} bytes; at most {max_size} expected")
            async for chunk in body.chunks():
                data += chunk
                if len(data) > max_size:
                    raise VerificationError(f"{key} is larger than the {max_size} bytes expected")
        return bytes(data)

    def list(self, prefix: str, *, delimiter: str | None = "/") -> AsyncIterator[ListingPage]:
        """The pages of the listing of ``prefix`` (S3 semantics: with a delimiter, sub-folders come as prefixes).

        Raises:
            TransportError: this transport cannot list (the default).
        """
        raise TransportError(
            f"the {self.name!r} transport cannot list the archive; name the symbols and a start date, "
            "or use a transport that can list (http)"
        )


@attrs.frozen
class StoredObject:
    """What a storage knows of a stored object."""

    key: str
    size: int
    modified: dt.datetime | None = None


class Writer(abc.ABC):
    """Receives one object's bytes; nothing is visible under the final key until :meth:`commit`.

    A writer is its own async context manager: leaving it without :meth:`commit` aborts it, so a storage's
    :meth:`Storage.writer` may simply return one (cheaper than a generator-based context manager, which
    counts when a mirror stores a thousand files a second).
    """

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.abort()

    @abc.abstractmethod
    async def write(self, chunk: bytes) -> None:
        """Append ``chunk``."""

    async def write_many(self, chunks: Sequence[bytes]) -> None:
        """Append ``chunks`` in order. The engine hands a large body over in batches of chunks, not joined (a
        copy of every byte); a storage that can write them in one call (``writev``) overrides this."""
        for chunk in chunks:
            await self.write(chunk)

    writes_in_thread: ClassVar[bool] = False
    """Whether :meth:`write_in_thread` may be called: the writer can append from a worker thread, blocking it
    (a local file can; a writer bound to an event loop, such as an S3 upload's, cannot)."""

    def write_in_thread(self, chunk: bytes | memoryview) -> None:
        """Append ``chunk``, from a worker thread rather than the event loop; only called when
        :attr:`writes_in_thread` is true, never at the same time as another write. The engine uses it for a large
        body that is :attr:`Body.loop_free` or :attr:`Body.blocking`. ``chunk`` may be a view of a buffer that is
        filled again once this returns: write it, or copy it, but do not keep it. :meth:`abort` may be called
        from the event loop meanwhile (a cancelled download): it must then leave nothing behind, whichever of the
        two ends last."""
        raise NotImplementedError(f"{type(self).__name__} cannot write from a worker thread")

    @abc.abstractmethod
    async def commit(self) -> None:
        """Publish the bytes written so far under the final key, atomically."""

    @abc.abstractmethod
    async def abort(self) -> None:
        """Discard everything written; the final key is left as it was. Safe to call more than once."""


class Storage(_Resource, abc.ABC):
    """Keeps the mirror: objects stored under the archive's own keys (``data/spot/daily/...``).

    Writes are atomic: a reader never sees a partial object under its final key. The engine stores a
    file's ``.CHECKSUM`` sidecar last, as the marker of a complete, verified file.
    """

    name: ClassVar[str]
    """The name users choose the storage by."""

    schemes: ClassVar[tuple[str, ...]] = ()
    """URL schemes that select this storage (``s3`` for ``s3://bucket/prefix``)."""

    @classmethod
    def from_url(cls, url: str, **options: object) -> Storage:
        """Build the storage for ``url`` (a path or a URL of one of :attr:`schemes`)."""
        return cls(url, **options)  # type: ignore[call-arg]

    @property
    @abc.abstractmethod
    def location(self) -> str:
        """Where the mirror is, for messages (a path or a URL without credentials)."""

    @abc.abstractmethod
    async def stat(self, key: str) -> StoredObject | None:
        """The stored object ``key``, or ``None`` when there is none."""

    @abc.abstractmethod
    def writer(self, key: str) -> AbstractAsyncContextManager[Writer]:
        """A :class:`Writer` for ``key``; leaving the context without :meth:`Writer.commit` aborts it."""

    @abc.abstractmethod
    def read(self, key: str) -> AsyncIterator[bytes]:
        """The stored bytes of ``key`` in chunks (for verification).

        Raises:
            StorageError: when there is no such object.
        """

    @abc.abstractmethod
    def list(self, prefix: str = "data/") -> AsyncIterator[StoredObject]:
        """Every stored object under ``prefix`` (temporary files excluded)."""

    @abc.abstractmethod
    async def delete(self, key: str) -> None:
        """Remove ``key`` if it exists."""

    async def sizes(self, folder: str) -> dict[str, int]:
        """The size of every object directly in ``folder`` (``data/spot/daily/klines/BTCUSDT/1m``), by name.

        When a re-run finds a folder's files stored, the engine asks for this once instead of two
        :meth:`stat` calls per file. The default collects :meth:`list`; storages with a cheaper way override it.
        A ``.CHECKSUM`` sidecar may be given the size ``-1`` (present, size not looked up): the engine only needs
        to know it is there, and where each size costs a call of its own (a local ``stat``) that halves the work.
        """
        prefix = folder.rstrip("/") + "/"
        found: dict[str, int] = {}
        async for obj in self.list(prefix):
            name = obj.key[len(prefix) :]
            if "/" not in name:
                found[name] = obj.size
        return found

    async def read_bytes(self, key: str, *, max_size: int) -> bytes:
        """The whole (small) stored object ``key``."""
        data = bytearray()
        async for chunk in self.read(key):
            data += chunk
            if len(data) > max_size:
                raise StorageError(f"{key} in {self.location} is larger than the {max_size} bytes expected")
        return bytes(data)

    async def put_bytes(self, key: str, data: bytes) -> None:
        """Store a small object atomically."""
        async with self.writer(key) as writer:
            await writer.write(data)
            await writer.commit()

    async def put_file(self, key: str, path: Path) -> None:
        """Store the local file ``path`` (already verified) under ``key``, atomically.

        Storages override this to adopt the file cheaply (a hard link, a multipart upload); the default
        copies it through :meth:`writer`.
        """
        async with self.writer(key) as writer:
            async for chunk in FileBody(path).chunks():
                await writer.write(chunk)
            await writer.commit()


@asynccontextmanager
async def body_of_file(path: Path) -> AsyncIterator[Body]:
    """A :class:`FileBody` as the context manager :meth:`Transport.get` returns."""
    try:
        body = FileBody(path)
    except FileNotFoundError:
        from binance_archive.errors import FileMissingError

        raise FileMissingError(f"{path} does not exist") from None
    except OSError as exc:
        raise TransportError(f"cannot read {path}: {os.strerror(exc.errno or 0)}") from exc
    yield body
