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
Everything the engine uses of a backend is declared here: a capability is an attribute or a method of these
classes with a default that works (the engine never probes a backend for methods, nor asks which class it is).
The few that exist only for speed (``Body.reads_in_thread`` with its ``loop_free`` and ``blocking`` flags,
``Writer.writes_in_thread``, ``Writer.write_many``, ``Body.local_path`` with ``Storage.put_file``,
``Storage.sizes``, ``Transport.get_bytes``) are listed with the figure each one buys in docs/performance.md.

Third parties subclass these, register the class through the ``register_transports`` or
``register_storages`` hook, and ship it through the ``binance_archive`` entry-point group (see docs/plugins.md).
"""

from __future__ import annotations

import abc
import datetime as dt
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self

import attrs

from binance_archive.common.threads import OwnLoop
from binance_archive.core.listing import ListingPage
from binance_archive.errors import StorageError, TransportError, VerificationError

__all__ = ["Body", "FileBody", "Storage", "StoredObject", "Transport", "TransportContext", "Writer"]

CHUNK_SIZE = 256 * 1024
_OWN_LOOP_LOCK = threading.Lock()


class Body(abc.ABC):
    """The bytes of one fetched object: a stream of chunks, and perhaps a file already on local disk.

    ``local_path`` lets a transport that stages files on disk (s5cmd, a local mirror) hand the file to a
    storage that can adopt it without another copy (a hard link); the engine still hashes it.
    """

    size: int | None = None
    """The object's size where the transport knows it (Content-Length), else ``None``."""

    local_path: Path | None = None
    """A local file holding exactly these bytes, if there is one."""

    min_speed: float = 0.0
    """For a body with a :attr:`local_path` on a file system that may stall (a network mount): the bytes a second the
    engine's read of that file must average over each :attr:`speed_window`; a slower read, or one that hangs, is
    given up as a :class:`~binance_archive.errors.RetryableError` (its thread is left to end when the read does).
    0, the default, reads the file as any local file."""

    speed_window: float = 30.0
    """The seconds over which :attr:`min_speed` is averaged (a transport passes its read timeout)."""

    loop_free: bool = False
    """Whether :meth:`chunks` may be iterated on an event loop of another thread, not only on the one that made
    the request: true when the client does its reading on threads of its own (pyreqwest). The engine then
    receives, hashes and writes a large body in a worker thread, where no chunk passes through its own loop
    (see :attr:`Writer.writes_in_thread`). A body whose reads are bound to the loop that made them (aiohttp's)
    leaves it false."""

    blocking: bool = False
    """Whether :meth:`blocking_chunks` may be called instead of :meth:`chunks`, in a worker thread. The HTTP
    transport says so of a large body: that thread then receives it with blocking reads, for less CPU than an async
    client hands it over (see docs/performance.md), on the connection's own socket (the native client over plain
    HTTP) or by the GET sent again on a blocking connection (a near server's). The engine uses it only for a
    writer that :attr:`Writer.writes_in_thread`."""

    _own_loop: OwnLoop | None = None

    @abc.abstractmethod
    def chunks(self) -> AsyncIterator[bytes]:
        """The object's bytes, in order. Raises RetryableError when the stream breaks off."""

    @property
    def reads_in_thread(self) -> bool:
        """Whether :meth:`read_in_thread` may be called: by default, when :attr:`blocking` or :attr:`loop_free`."""
        return self.blocking or self.loop_free

    def read_in_thread(self, absorb: Callable[[bytes | memoryview], None]) -> None:
        """Receive the whole body in the calling worker thread, handing each chunk to ``absorb`` in order (which
        hashes and writes it before it returns: a chunk need not outlive the call).

        The engine calls this, for a large body whose writer :attr:`Writer.writes_in_thread`, instead of iterating
        :meth:`chunks` on its own loop. By default the body is read from :meth:`blocking_chunks` when it is
        :attr:`blocking`, else from :meth:`chunks` on a new event loop of this thread (:attr:`loop_free`).
        Raises what :meth:`chunks` raises; :meth:`stop_reading` makes it end soon.
        """
        if self.blocking:
            for chunk in self.blocking_chunks():
                absorb(chunk)
            return

        async def receive() -> None:
            async for chunk in self.chunks():
                absorb(chunk)

        self._thread_loop().run(receive)

    def stop_reading(self) -> None:
        """Called from the event loop (any thread but the reader's) when nobody waits for the body any more (a
        cancelled download): a :meth:`read_in_thread` under way, even one waiting on a stalled server, must end
        soon. By default the read on the body's own loop is cancelled; a :attr:`blocking` reader must also fail
        once its request is left (see :meth:`blocking_chunks`)."""
        self._thread_loop().cancel()

    def _thread_loop(self) -> OwnLoop:
        # Made by whichever comes first, the reading thread or a stop: a stop before the read starts still counts.
        with _OWN_LOOP_LOCK:
            if self._own_loop is None:
                self._own_loop = OwnLoop()
            return self._own_loop

    def blocking_chunks(self) -> Iterator[bytes | memoryview]:
        """The object's bytes, in order, from a plain iterator that blocks: called from a worker thread when
        :attr:`blocking` is true, instead of :meth:`chunks` (by the default :meth:`read_in_thread`). A chunk may be
        a view of a buffer the reader fills again for the next one (the HTTP transport's is), so it is valid until
        the next chunk is asked for: the engine hashes and writes each at once. Leaving the transport's ``get()``
        (a cancelled download) must make a read blocked in here fail soon, so that the thread does not outlive the
        file."""
        raise NotImplementedError(f"{type(self).__name__} has no blocking reader")


class FileBody(Body):
    """A body read from a local file (used by transports that stage or mirror files on disk)."""

    def __init__(
        self,
        path: Path,
        *,
        chunk_size: int = CHUNK_SIZE,
        size: int | None = None,
        min_speed: float = 0.0,
        speed_window: float = 30.0,
    ) -> None:
        self.local_path = path
        self.size = path.stat().st_size if size is None else size
        self._chunk_size = chunk_size
        self.min_speed = min_speed
        self.speed_window = speed_window

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


@attrs.frozen
class TransportContext:
    """What an :class:`~binance_archive.Archive` knows when it builds a transport by name, for
    :meth:`Transport.create` to use: settings flow into a transport at construction, never after it."""

    concurrency: int
    """The most files the engine keeps in flight (where it finds its own level, the ceiling of it); each fetches its
    zip and its sidecar at once."""
    local_root: Path | None = None
    """The storage's :attr:`Storage.local_root`: a transport that stages files on disk stages them on that file
    system, so that the storage adopts each with a hard link instead of a copy."""


class Transport(_Resource, abc.ABC):
    """Fetches objects of the archive by key, and lists its prefixes.

    Subclasses set :attr:`name`, take their options as keyword arguments of ``__init__`` (the CLI passes
    ``--transport-option KEY=VALUE`` through), and implement :meth:`get` (and :meth:`list` where they can).
    """

    name: ClassVar[str]
    """The name users choose the transport by (``--transport NAME``)."""

    default_concurrency: ClassVar[int] = 64
    """How many files the engine keeps in flight when the user does not say (where it finds its own level, the
    level it starts at)."""

    default_max_concurrency: ClassVar[int | None] = None
    """When the user does not say, the engine finds its own number of files in flight, from
    :attr:`default_concurrency` up to this many: it grows while throughput grows and halves when the server turns
    tries away (a :class:`~binance_archive.errors.RetryableError` with ``throttled``). ``None`` (the default): it
    keeps :attr:`default_concurrency`, for a transport whose speed does not follow the files in flight (a local
    mirror) or that paces itself (s5cmd)."""

    @classmethod
    def create(cls, options: Mapping[str, Any], context: TransportContext) -> Self:
        """Build the transport an Archive asked for by name, with the user's ``options`` (keyword arguments of
        ``__init__``, already checked against it) and what the Archive knows (``context``).

        The default ignores ``context``. A transport whose defaults depend on it overrides this and fills in
        the options the user left out (the HTTP transport sizes its connection pool for ``concurrency``). A
        transport instance passed to an Archive is used as it was built.
        """
        return cls(**options)

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

    @property
    def listing_is_authoritative(self) -> bool:
        """Whether :meth:`list` lists the very archive :meth:`get` fetches from, so that a symbol the listing does
        not show has no files here: the engine then refuses such a symbol before a download (naming the closest
        listed ones) rather than counting every file of it as missing.

        The default: true where the class implements :meth:`list`. A transport whose listing may describe another
        archive than its files (the HTTP transport given a base URL of its own but the public listing) says false.
        """
        return type(self).list is not Transport.list

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

    @property
    def local_root(self) -> Path | None:
        """The folder on the local file system under which the objects are files, or ``None`` (the default) for
        a storage elsewhere. A transport that stages files on disk stages them there (see
        :class:`TransportContext`), so that :meth:`put_file` can adopt them without a copy."""
        return None

    async def check_writable(self) -> None:  # an optional hook: empty on purpose
        """Raise :class:`~binance_archive.errors.StorageError` when nothing could be written now: a read-only
        folder or file system, a folder the user may not write to.

        The engine calls this once at the start of every download (the storage is open). When it raises, files
        already stored are still skipped, but the run stops at the first file it would fetch, before requesting
        it, instead of fetching every file only to fail storing each. It must be cheap and leave nothing behind.
        By default it does nothing: a storage that cannot tell cheaply (a remote one) leaves it to the writes.
        """

    def temporary_files(self) -> Iterable[str]:
        """Where temporary objects of interrupted writes are (a killed process's), for ``verify`` to name as
        orphans; by default none (a storage whose writes leave nothing visible behind)."""
        return ()

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
