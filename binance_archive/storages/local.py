"""The local file system storage: the archive's own layout under a root folder, written atomically."""

from __future__ import annotations

import asyncio
import datetime as dt
import errno
import itertools
import os
import shutil
import socket
import threading
import zlib
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import IO, ClassVar

from binance_archive.backends import CHUNK_SIZE, Storage, StoredObject, Writer
from binance_archive.errors import ConfigurationError, StorageError
from binance_archive.hookspecs import hookimpl

__all__ = ["TEMP_PREFIX", "LocalStorage"]

TEMP_PREFIX = ".binance-archive-"
"""Temporary files start with this and end in ``.part``; they are never listed as stored objects."""

# Temporary names carry their writer's host and process: ``.binance-archive-{name}.{host}.{pid}.{n}.part``. A
# process killed mid-write (SIGKILL, power loss) leaves its temporary files behind; the next process that
# writes into the same folder on the same host removes those whose process is gone (see _sweep), so a
# re-run leaves a clean mirror. Files of live processes, of other hosts (a shared file system) and names in
# any other form are never touched.
_HOST = f"{zlib.crc32(socket.gethostname().encode()):08x}"
_SEQUENCE = itertools.count(1)
_LIVE: set[str] = set()  # temporary names this process is writing now (a re-used PID must not sweep them)
_LIVE_LOCK = threading.Lock()


def _temp_path(final: Path) -> Path:
    path = final.with_name(f"{TEMP_PREFIX}{final.name}.{_HOST}.{os.getpid()}.{next(_SEQUENCE)}.part")
    with _LIVE_LOCK:
        _LIVE.add(str(path))
    return path


def _release(temp: Path) -> None:
    with _LIVE_LOCK:
        _LIVE.discard(str(temp))


def _is_stale(path: str, name: str) -> bool:
    """Whether the temporary file ``name`` was left by a process of this host that no longer runs."""
    parts = name.rsplit(".", 4)
    if len(parts) != 5 or parts[4] != "part" or parts[1] != _HOST or not parts[2].isdigit():
        return False
    pid = int(parts[2])
    if pid == os.getpid():  # ours, or a dead process's whose PID we re-use (PID 1 in a container)
        with _LIVE_LOCK:
            return path not in _LIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # EPERM: alive, another user's
        return False
    return False


def _sweep(folder: Path) -> None:
    """Remove the temporary files a killed process of this host left in ``folder`` (best effort)."""
    try:
        with os.scandir(folder) as entries:
            stale = [e.path for e in entries if e.name.startswith(TEMP_PREFIX) and _is_stale(e.path, e.name)]
    except OSError:
        return
    for path in stale:
        with suppress(OSError):
            os.unlink(path)


# Small files (most of the archive) are buffered and written with one thread hop; larger ones spill to
# their temporary file as they stream, so memory stays bounded whatever the file size.
_SPILL_AT = 1024 * 1024


def _explain(exc: OSError, path: Path, action: str = "write") -> StorageError:
    reason = {
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is exceeded",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.EROFS: "the file system is read-only",
    }.get(exc.errno or 0, exc.strerror or str(exc))
    return StorageError(f"cannot {action} {path}: {reason}")


class _LocalWriter(Writer):
    def __init__(self, final: Path, *, fsync: bool, swept: set[Path] | None = None) -> None:
        self._final = final
        self._temp = _temp_path(final)
        self._buffer = bytearray()
        self._handle: IO[bytes] | None = None
        self._fsync = fsync
        self._done = False
        self._swept = swept

    async def write(self, chunk: bytes) -> None:
        if self._handle is None:
            self._buffer += chunk
            if len(self._buffer) >= _SPILL_AT:
                data, self._buffer = bytes(self._buffer), bytearray()
                self._handle = await asyncio.to_thread(self._open_and_write, data)
        else:
            await asyncio.to_thread(self._write, chunk)

    def _open_and_write(self, data: bytes) -> IO[bytes]:
        try:
            self._final.parent.mkdir(parents=True, exist_ok=True)
            _sweep_once(self._final.parent, self._swept)
            handle = open(self._temp, "wb")  # noqa: SIM115 - closed in _finish or abort
        except OSError as exc:
            raise _explain(exc, self._final) from exc
        self._handle = handle
        self._write(data)
        return handle

    def _write(self, data: bytes) -> None:
        assert self._handle is not None
        try:
            self._handle.write(data)
        except OSError as exc:
            raise _explain(exc, self._final) from exc

    async def commit(self) -> None:
        data, self._buffer = bytes(self._buffer), bytearray()
        await asyncio.to_thread(self._finish, data)
        self._done = True

    def _finish(self, data: bytes) -> None:
        try:
            if self._handle is None:
                self._open_and_write(data)
            elif data:
                self._write(data)
            assert self._handle is not None
            self._handle.flush()
            if self._fsync:
                os.fsync(self._handle.fileno())
            self._handle.close()
            os.replace(self._temp, self._final)  # atomic: readers see the old file or the whole new one
            _release(self._temp)
        except OSError as exc:
            self._discard()
            raise _explain(exc, self._final) from exc
        except BaseException:
            self._discard()
            raise

    def _discard(self) -> None:
        if self._handle is not None:
            with suppress(OSError):
                self._handle.close()
        with suppress(OSError):
            self._temp.unlink()
        _release(self._temp)

    async def abort(self) -> None:
        if not self._done:
            self._done = True
            self._buffer = bytearray()
            # Synchronous on purpose: abort runs on cancellation too, where awaiting a thread could be cut short.
            self._discard()


def _sweep_once(folder: Path, swept: set[Path] | None) -> None:
    """Sweep ``folder`` the first time a storage writes into it (one directory scan per folder and run)."""
    if swept is None or folder in swept:
        return
    swept.add(folder)
    _sweep(folder)


class LocalStorage(Storage):
    """Stores the mirror under a local folder, in the archive's own layout.

    Args:
        url: the root folder (a path, or a ``file://`` URL).
        fsync: flush every file to the disk before publishing it (survives power loss; slower).
        link: adopt files that are already on disk (from the s5cmd or mirror transports) with a hard link
            where possible, instead of copying them.
    """

    name: ClassVar[str] = "local"
    schemes: ClassVar[tuple[str, ...]] = ("file",)

    def __init__(self, url: str | os.PathLike[str] = ".", *, fsync: bool = False, link: bool = True) -> None:
        text = os.fspath(url)
        if text.startswith("file://"):
            text = text[len("file://") :]
        if not text:
            raise ConfigurationError("the local storage needs a folder")
        self.root = Path(text).expanduser()
        self.fsync = fsync
        self.link = link
        self._swept: set[Path] = set()  # folders already cleared of a killed process's temporary files

    @property
    def location(self) -> str:
        return str(self.root)

    def path_of(self, key: str) -> Path:
        """The local path of ``key``; keys never leave the root (the core validates their symbols)."""
        if key.startswith("/") or ".." in key.split("/"):
            raise StorageError(f"refusing key {key!r}: it would leave {self.root}")
        if "\0" in key:  # the OS would raise a bare ValueError ("embedded null byte")
            raise StorageError(f"refusing key {key!r}: it holds a NUL character")
        return self.root / key

    async def stat(self, key: str) -> StoredObject | None:
        # A local stat takes microseconds; a thread hop would cost more than it saves.
        try:
            st = os.stat(self.path_of(key))
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(f"cannot inspect {self.path_of(key)}: {exc.strerror}") from exc
        return StoredObject(key, st.st_size, dt.datetime.fromtimestamp(st.st_mtime, dt.UTC))

    @asynccontextmanager
    async def writer(self, key: str) -> AsyncIterator[Writer]:
        writer = _LocalWriter(self.path_of(key), fsync=self.fsync, swept=self._swept)
        try:
            yield writer
        finally:
            await writer.abort()

    async def read(self, key: str) -> AsyncIterator[bytes]:
        import aiofiles

        path = self.path_of(key)
        try:
            async with aiofiles.open(path, "rb") as handle:
                while chunk := await handle.read(CHUNK_SIZE):
                    yield chunk
        except FileNotFoundError:
            raise StorageError(f"{path} does not exist") from None
        except OSError as exc:
            raise StorageError(f"cannot read {path}: {exc.strerror}") from exc

    async def read_bytes(self, key: str, *, max_size: int) -> bytes:
        path = self.path_of(key)
        try:
            with open(path, "rb") as handle:  # noqa: ASYNC230 - sidecars are ~100 bytes: no thread hop
                data = handle.read(max_size + 1)
        except FileNotFoundError:
            raise StorageError(f"{path} does not exist") from None
        except OSError as exc:
            raise StorageError(f"cannot read {path}: {exc.strerror}") from exc
        if len(data) > max_size:
            raise StorageError(f"{path} is larger than the {max_size} bytes expected")
        return data

    async def put_file(self, key: str, path: Path) -> None:
        final = self.path_of(key)
        await asyncio.to_thread(self._adopt, path, final)

    def _adopt(self, source: Path, final: Path) -> None:
        temp = _temp_path(final)
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            _sweep_once(final.parent, self._swept)
            try:
                if not self.link:
                    raise OSError(errno.EXDEV, "linking disabled")
                os.link(source, temp)
            except OSError:
                shutil.copyfile(source, temp)  # another file system, or links not allowed
                if self.fsync:
                    with open(temp, "rb") as handle:
                        os.fsync(handle.fileno())
            os.replace(temp, final)
        except OSError as exc:
            with suppress(OSError):
                temp.unlink()
            raise _explain(exc, final) from exc
        finally:
            _release(temp)

    async def list(self, prefix: str = "data/") -> AsyncIterator[StoredObject]:
        base = self.path_of(prefix.rstrip("/")) if prefix.strip("/") else self.root
        # Walk in a thread, a folder at a time, so a huge tree neither blocks the loop nor fills memory.
        stack = [base]
        while stack:
            folder = stack.pop()
            entries = await asyncio.to_thread(_scan, folder)
            for entry_path, is_dir, _size, _mtime in sorted(entries, reverse=True):
                if is_dir:
                    stack.append(entry_path)
            for entry_path, is_dir, size, mtime in sorted(entries):
                if not is_dir:
                    key = entry_path.relative_to(self.root).as_posix()
                    yield StoredObject(key, size, dt.datetime.fromtimestamp(mtime, dt.UTC))

    async def delete(self, key: str) -> None:
        path = self.path_of(key)
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:  # EACCES, EROFS: a StorageError the engine reports, not an OSError that escapes it
            raise _explain(exc, path, "remove") from exc

    def temporary_files(self) -> Iterable[Path]:
        """Leftover temporary files (from a process that was killed mid-write)."""
        return self.root.rglob(f"{TEMP_PREFIX}*.part")


def _scan(folder: Path) -> list[tuple[Path, bool, int, float]]:
    try:
        with os.scandir(folder) as it:
            out = []
            for entry in it:
                if entry.name.startswith(TEMP_PREFIX):
                    continue
                is_dir = entry.is_dir(follow_symlinks=False)
                st = entry.stat(follow_symlinks=False)
                out.append((Path(entry.path), is_dir, st.st_size, st.st_mtime))
            return out
    except FileNotFoundError:
        return []
    except OSError as exc:  # a folder it may not read: name it, rather than let an OSError escape to the user
        reason = "permission denied" if exc.errno in (errno.EACCES, errno.EPERM) else exc.strerror
        raise StorageError(f"cannot list {folder}: {reason}") from exc


@hookimpl
def register_storages() -> list[type[Storage]]:
    return [LocalStorage]
