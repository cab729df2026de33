"""Proposed changes to files the harness may not edit, applied as patches in the worker process only.

``python benchmarks/worker.py archive --experiment NAME ...`` applies one (or, comma-separated, several)
before the download, so the gain of each proposal is measured by the same harness, against the same server,
as the unmodified library (``python benchmarks/run.py --experiments``). Nothing here changes the package.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable


def inline_small_writes() -> None:
    """storages/local.py ``_LocalWriter.commit``: finish a small buffered file on the event loop.

    A file that never spilled (under 1 MB: most of the archive, and every sidecar) is written with a few
    syscalls that take tens of microseconds; ``asyncio.to_thread`` costs more than that, and with two hops
    a file the event loop and the executor's threads hand the GIL back and forth (~130 futex calls a file).
    """
    from binance_archive.storages import local

    async def commit(self: local._LocalWriter) -> None:
        data, self._buffer = bytes(self._buffer), bytearray()
        if self._handle is None and not self._fsync:
            self._finish(data)  # small and not fsynced: cheaper here than a thread hop
        else:
            import asyncio

            await asyncio.to_thread(self._finish, data)
        self._done = True

    local._LocalWriter.commit = commit  # type: ignore[method-assign]


def mkdir_once() -> None:
    """storages/local.py ``_LocalWriter._open_and_write``: remember folders already made (one mkdir each)."""
    from binance_archive.storages import local

    made: set[str] = set()
    original = local._LocalWriter._open_and_write

    def open_and_write(self: local._LocalWriter, data: bytes) -> object:
        parent = os.fspath(self._final.parent)
        if parent not in made:
            self._final.parent.mkdir(parents=True, exist_ok=True)
            made.add(parent)
        mkdir = local.Path.mkdir
        local.Path.mkdir = lambda *a, **k: None  # type: ignore[method-assign, assignment]
        try:
            return original(self, data)
        finally:
            local.Path.mkdir = mkdir  # type: ignore[method-assign]

    local._LocalWriter._open_and_write = open_and_write  # type: ignore[method-assign]


EXPERIMENTS: dict[str, Callable[[], None]] = {
    "inline-small-writes": inline_small_writes,
    "mkdir-once": mkdir_once,
}


def apply(names: str) -> None:
    for name in filter(None, (n.strip() for n in names.split(","))):
        EXPERIMENTS[name]()


def lean_local(raw_fd: bool = False) -> None:
    """storages/local.py: the small-file path without pathlib, thread hops or a mkdir per file.

    - ``LocalStorage._path(key) -> str``: the validation of ``path_of``, then a string join (``path_of`` keeps
      returning a Path for everyone else);
    - ``stat`` uses it (the engine stats every file's sidecar, and three times a file when resuming);
    - ``_LocalWriter`` works on strings, makes each folder once per storage (a set of folders made; on
      ``FileNotFoundError`` it makes the folder again), and ``commit`` finishes a file that never spilled on
      the event loop (as ``inline-small-writes``);
    - ``put_bytes`` (sidecars) writes through the same writer without the async context manager.
    """
    import asyncio
    import datetime as dt
    import secrets
    from pathlib import Path

    from binance_archive.backends import StoredObject
    from binance_archive.errors import StorageError
    from binance_archive.storages import local

    _FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)

    class LeanWriter(local._LocalWriter):
        def __init__(self, final: str, *, fsync: bool, folders: set[str]) -> None:
            self._final = final  # type: ignore[assignment]
            folder, name = os.path.split(final)
            self._folder = folder
            self._folders = folders
            self._temp = os.path.join(folder, f"{local.TEMP_PREFIX}{name}.{secrets.token_hex(4)}.part")  # type: ignore[assignment]
            self._buffer = bytearray()
            self._handle = None
            self._fsync = fsync
            self._done = False

        def _open_and_write(self, data: bytes) -> object:
            try:
                if self._folder not in self._folders:
                    os.makedirs(self._folder, exist_ok=True)
                    self._folders.add(self._folder)
                try:
                    handle = open(self._temp, "wb")  # noqa: SIM115
                except FileNotFoundError:  # the folder was removed meanwhile
                    os.makedirs(self._folder, exist_ok=True)
                    handle = open(self._temp, "wb")  # noqa: SIM115
            except OSError as exc:
                raise local._explain(exc, Path(self._final)) from exc
            self._handle = handle
            self._write(data)
            return handle

        def _write(self, data: bytes) -> None:
            try:
                self._handle.write(data)  # type: ignore[union-attr]
            except OSError as exc:
                raise local._explain(exc, Path(self._final)) from exc

        def _finish(self, data: bytes) -> None:
            try:
                if self._handle is None:
                    self._open_and_write(data)
                elif data:
                    self._write(data)
                handle = self._handle
                assert handle is not None
                handle.flush()
                if self._fsync:
                    os.fsync(handle.fileno())
                handle.close()
                os.replace(self._temp, self._final)
            except OSError as exc:
                self._discard()
                raise local._explain(exc, Path(self._final)) from exc
            except BaseException:
                self._discard()
                raise

        def _discard(self) -> None:
            if self._handle is not None:
                with contextlib.suppress(OSError):
                    self._handle.close()
            with contextlib.suppress(OSError):
                os.unlink(self._temp)

        def _finish_small(self, data: bytes) -> None:
            """A file that never spilled: os.open/os.write/os.close (no buffered file object, no isatty/lseek)."""
            fd = -1
            try:
                if self._folder not in self._folders:
                    os.makedirs(self._folder, exist_ok=True)
                    self._folders.add(self._folder)
                try:
                    fd = os.open(self._temp, _FLAGS, 0o666)
                except FileNotFoundError:  # the folder was removed meanwhile
                    os.makedirs(self._folder, exist_ok=True)
                    fd = os.open(self._temp, _FLAGS, 0o666)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.close(fd)
                fd = -1
                os.replace(self._temp, self._final)
            except OSError as exc:
                if fd >= 0:
                    os.close(fd)
                self._discard()
                raise local._explain(exc, Path(self._final)) from exc

        async def commit(self) -> None:
            data, self._buffer = bytes(self._buffer), bytearray()
            if self._handle is None and not self._fsync:
                if raw_fd:
                    self._finish_small(data)
                else:
                    self._finish(data)  # a small file: a few syscalls, cheaper than a thread hop
            else:
                await asyncio.to_thread(self._finish, data)
            self._done = True

    def _path(self: local.LocalStorage, key: str) -> str:
        if key.startswith("/") or "/../" in f"/{key}/":  # the same test as path_of's, without a list
            raise StorageError(f"refusing key {key!r}: it would leave {self.root}")
        root = self.__dict__.get("_root_text")
        if root is None:
            root = self.__dict__["_root_text"] = os.fspath(self.root).rstrip("/") + "/"
        return root + key

    async def stat(self: local.LocalStorage, key: str) -> StoredObject | None:
        path = _path(self, key)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(f"cannot inspect {path}: {exc.strerror}") from exc
        return StoredObject(key, st.st_size, dt.datetime.fromtimestamp(st.st_mtime, dt.UTC))

    def _folders(self: local.LocalStorage) -> set[str]:
        return self.__dict__.setdefault("_folders_made", set())  # type: ignore[no-any-return]

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def writer(self: local.LocalStorage, key: str):  # type: ignore[no-untyped-def]
        w = LeanWriter(_path(self, key), fsync=self.fsync, folders=_folders(self))
        try:
            yield w
        finally:
            await w.abort()

    async def put_bytes(self: local.LocalStorage, key: str, data: bytes) -> None:
        w = LeanWriter(_path(self, key), fsync=self.fsync, folders=_folders(self))
        try:
            w._buffer += data
            await w.commit()
        finally:
            await w.abort()

    local.LocalStorage.stat = stat  # type: ignore[method-assign]
    local.LocalStorage.writer = writer  # type: ignore[method-assign, assignment]
    local.LocalStorage.put_bytes = put_bytes  # type: ignore[method-assign]


def lean_http() -> None:
    """transports/http.py: no URL parsing on the success path, and sidecars read in one call.

    - ``_request`` calls ``redact(url)`` (urlsplit + urlunsplit, ~5 us) only when it builds an error message,
      not before every request;
    - ``get`` hands ``_ResponseBody`` the raw URL, which it redacts only in its error messages;
    - ``get_bytes`` reads a sidecar with ``response.read()`` when its Content-Length is known and small
      (``_read_limited`` stays for bodies of unknown length).
    """
    from contextlib import asynccontextmanager

    import aiohttp
    import yarl

    from binance_archive.errors import FileMissingError, RetryableError, TransportError, VerificationError
    from binance_archive.transports import http

    redact = http.redact
    tls_reason = getattr(http, "_tls_reason", str)

    @asynccontextmanager
    async def _request(self: http.HttpTransport, url: str, *, what: str):  # type: ignore[no-untyped-def]
        try:
            target = yarl.URL(url, encoded=True) if url.isascii() else url
            async with self.session.get(target, allow_redirects=True) as response:
                status = response.status
                if status == 404:
                    raise FileMissingError(f"{what} not found: {redact(url)}")
                if status == 429 or status >= 500:
                    retry_after = http._retry_after(response.headers.get("Retry-After"))
                    raise RetryableError(f"HTTP {status} for {redact(url)}", retry_after=retry_after)
                if status != 200:
                    raise TransportError(f"HTTP {status} for {redact(url)}")
                yield response
        except TimeoutError:
            raise RetryableError(f"timed out waiting for {redact(url)}") from None
        except aiohttp.ClientSSLError as exc:
            raise TransportError(f"TLS failed for {redact(url)}: {tls_reason(exc)}") from None
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            raise RetryableError(f"connection failed for {redact(url)}: {exc.__class__.__name__}: {exc}") from None
        except aiohttp.ClientError as exc:
            raise TransportError(f"request for {redact(url)} failed: {exc.__class__.__name__}") from None

    class LazyBody(http._ResponseBody):
        async def chunks(self):  # type: ignore[no-untyped-def, override]
            received = 0
            try:
                async for chunk in self._response.content.iter_chunked(http._READ_SIZE):
                    received += len(chunk)
                    yield chunk
            except TimeoutError:
                raise RetryableError(f"reading {redact(self._url)} timed out after {received} bytes") from None
            except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
                raise RetryableError(
                    f"the body of {redact(self._url)} broke off after {received} bytes: {exc}"
                ) from None
            if self.size is not None and received != self.size:
                raise RetryableError(f"{redact(self._url)} was truncated: {received} of {self.size} bytes")

    def url_of(self: http.HttpTransport, key: str) -> str:
        make = getattr(self, "_url", None)
        return make(key) if make is not None else http.url_for_key(self.base_url, key)

    @asynccontextmanager
    async def get(self: http.HttpTransport, key: str):  # type: ignore[no-untyped-def]
        url = url_of(self, key)
        async with self._request(url, what="file") as response:
            yield LazyBody(response, url)

    async def get_bytes(self: http.HttpTransport, key: str, *, max_size: int) -> bytes:
        url = url_of(self, key)
        async with self._request(url, what="file") as response:
            length = response.content_length
            if length is None:
                return await http._read_limited(response, max_size, redact(url))
            if length > max_size:
                raise VerificationError(f"{redact(url)} is {length} bytes; at most {max_size} expected")
            try:
                data = await response.read()
            except TimeoutError:
                raise RetryableError(f"reading {redact(url)} timed out") from None
            except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
                raise RetryableError(f"the body of {redact(url)} broke off: {exc}") from None
            if len(data) != length:
                raise RetryableError(f"{redact(url)} was truncated: {len(data)} of {length} bytes")
            return data

    http.HttpTransport._request = _request  # type: ignore[method-assign, assignment]
    http.HttpTransport.get = get  # type: ignore[method-assign, assignment]
    http.HttpTransport.get_bytes = get_bytes  # type: ignore[method-assign]


def fast_skip() -> None:
    """archive.py: a file already stored costs two stats and no trip through the worker queue.

    - ``_Run._is_stored`` keeps the zip's stat it just took, and ``_Run._skip`` uses it instead of stating
      the zip a third time;
    - ``_Run._record`` maps outcomes to events through a module-level dict (not one built per file) and
      skips ``emit`` when there is no callback;
    - for a storage whose ``stat`` is a local system call (``LocalStorage``; a class attribute such as
      ``Storage.stat_is_cheap``), the producer checks each planned file itself (unless ``force`` or
      ``refresh``) and records a stored one as skipped at once; only files to fetch go to the workers. For a
      remote storage (S3: a stat is a request) the workers keep doing it concurrently.
    """
    from binance_archive import archive
    from binance_archive.events import EventKind
    from binance_archive.storages.local import LocalStorage

    run = archive._Run
    original_is_stored, original_execute = run._is_stored, run.execute

    async def _is_stored(self: archive._Run, file: archive.ArchiveFile) -> bool:
        stat = await self.storage.stat(file.checksum_key)
        if stat is None:
            return False
        zip_stat = await self.storage.stat(file.key)
        if zip_stat is not None and zip_stat.size > 0:
            self.__dict__.setdefault("_zip_stats", {})[file.key] = zip_stat
            return True
        return await original_is_stored(self, file)  # the original handles the lost-zip case

    async def _skip(self: archive._Run, file: archive.ArchiveFile) -> None:
        stat = self.__dict__.get("_zip_stats", {}).pop(file.key, None) or await self.storage.stat(file.key)
        self._record(archive.FileOutcome(file.key, archive.Outcome.SKIPPED, stat.size if stat else 0), file)

    async def execute(self: archive._Run, files):  # type: ignore[no-untyped-def]
        cheap = isinstance(self.storage, LocalStorage) and not self.force and not self.refresh

        async def to_fetch():  # type: ignore[no-untyped-def]
            async for file in files:
                if cheap and await self._is_stored(file):
                    self.emit(EventKind.PLANNED, file)
                    await self._skip(file)
                    continue
                yield file

        await original_execute(self, to_fetch())

    kinds = {
        archive.Outcome.DOWNLOADED: EventKind.DONE,
        archive.Outcome.SKIPPED: EventKind.SKIPPED,
        archive.Outcome.MISSING: EventKind.MISSING,
        archive.Outcome.FAILED: EventKind.FAILED,
    }
    problems = (archive.Outcome.MISSING, archive.Outcome.FAILED)

    def _record(self: archive._Run, outcome: archive.FileOutcome, file: archive.ArchiveFile) -> None:
        # The outcome -> event mapping built once (the original builds a dict, hashing four Enums, per file).
        kind = outcome.outcome
        keep = kind is not archive.Outcome.SKIPPED and (self.keep_successes or kind in problems)
        self.report.add(outcome, keep=keep)
        if self.callbacks:
            self.emit(kinds[kind], file, outcome.bytes, outcome.error)

    run._record = _record  # type: ignore[method-assign]
    run._is_stored = _is_stored  # type: ignore[method-assign]
    run._skip = _skip  # type: ignore[method-assign]
    run.execute = execute  # type: ignore[method-assign]


def offload_large() -> None:
    """archive.py ``_Run._store_verified``: hash large bodies off the event loop, in 1 MB batches.

    The engine hashes every chunk on the event loop (256 KB at a time) and the local writer then hops to a
    thread for each chunk: one core does all the hashing, and a 200 MB file costs ~800 thread hops. For a body
    whose size is known to exceed 1 MB, chunks are gathered into 1 MB batches and each batch is hashed in a
    thread (hashlib releases the GIL) while the writer writes it (``asyncio.gather`` of the two): a file costs
    ~2 hops per MB, and files in flight hash in parallel on all cores. Small bodies keep the current path.
    """
    import asyncio
    import hashlib

    from binance_archive import archive
    from binance_archive.errors import VerificationError
    from binance_archive.events import EventKind

    batch_size = 1 << 20
    original = archive._Run._store_verified

    async def _store_verified(self, file, body, sidecar, previous):  # type: ignore[no-untyped-def]
        if body.local_path is not None or body.size is None or body.size <= batch_size:
            return await original(self, file, body, sidecar, previous)
        if previous is not None or self.force:
            await self.storage.delete(file.checksum_key)
        digest = hashlib.sha256()
        size = 0
        pending: list[bytes] = []
        pending_size = 0

        async def flush(writer) -> None:  # type: ignore[no-untyped-def]
            nonlocal pending, pending_size
            data = pending[0] if len(pending) == 1 else b"".join(pending)
            pending, pending_size = [], 0
            await asyncio.gather(asyncio.to_thread(digest.update, data), writer.write(data))
            self.emit(EventKind.BYTES, file, len(data))

        async with self.storage.writer(file.key) as writer:
            async for chunk in body.chunks():
                pending.append(chunk)
                pending_size += len(chunk)
                size += len(chunk)
                if pending_size >= batch_size:
                    await flush(writer)
            if pending:
                await flush(writer)
            expected = await self._expected_digest(file, sidecar)
            actual = digest.hexdigest()
            if actual != expected:
                raise VerificationError(f"{file.key}: SHA-256 {actual} does not match the sidecar's {expected}")
            await writer.commit()
        return expected, size

    archive._Run._store_verified = _store_verified  # type: ignore[method-assign]


EXPERIMENTS.update(
    {
        "lean-local": lean_local,
        "lean-http": lean_http,
        "fast-skip": fast_skip,
        "offload-large": offload_large,
        "lean-local-fd": lambda: lean_local(raw_fd=True),
    }
)

PROPOSED = "lean-local-fd,lean-http,fast-skip,offload-large"
"""Every proposal together: the ``http-proposed`` contender of the harness."""
