"""The local file system storage: the archive's own layout under a root folder, written atomically."""

from __future__ import annotations

import asyncio
import datetime as dt
import errno
import os
import shutil
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, ClassVar

from binance_archive.backends import CHUNK_SIZE, Storage, StoredObject, Writer
from binance_archive.common.files import read_small
from binance_archive.common.folders import probe_writes, refuse_a_file
from binance_archive.common.options import non_negative, whole_number
from binance_archive.common.staging import is_temporary, release, temp_path, temporary_glob
from binance_archive.core.files import CHECKSUM_SUFFIX
from binance_archive.errors import ConfigurationError, StorageError, StorageFullError
from binance_archive.hookspecs import hookimpl
from binance_archive.storages.commits import Committer, Folders

__all__ = ["LocalStorage"]

_MOVED = {"TEMP_PREFIX", "make_temp_folder", "release_temp_folder"}  # to binance_archive.common.staging


def __getattr__(name: str) -> Any:
    # Names this module exported before the staging helpers moved (a plugin may use them): served, with a warning.
    if name in _MOVED:
        import warnings

        from binance_archive.common import staging

        warnings.warn(
            f"binance_archive.storages.local.{name} is deprecated; use binance_archive.common.staging.{name}",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(staging, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# Small files (most of the archive, and every sidecar) are buffered and written in one go on commit; larger
# ones spill to their temporary file as they stream, so memory stays bounded whatever the file size.
_SPILL_AT = 1024 * 1024
_MAX_IOV = 512  # chunks per writev(2): IOV_MAX is 1024 on Linux and macOS
_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})


def _explain(exc: OSError, path: str | Path, action: str = "write") -> StorageError:
    if exc.errno in (errno.ENOTDIR, errno.EEXIST) and (blocker := _file_in_the_way(os.fspath(path))):
        # A folder of the mirror replaced by a file: "Not a directory" / "File exists" would not say which.
        return StorageError(
            f"cannot {action} {path}: {blocker} is a file where a folder should be; move it away and run again"
        )
    reason = {
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is exceeded",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.EROFS: "the file system is read-only",
    }.get(exc.errno or 0, exc.strerror or str(exc))
    # No room (or no writes at all) is not a fault of one file: the engine stops starting new ones.
    kind = StorageFullError if exc.errno in _FULL else StorageError
    return kind(f"cannot {action} {path}: {reason}")


def _file_in_the_way(path: str) -> str | None:
    """The nearest folder above ``path`` that exists as something else than a folder, if any."""
    folder = os.path.dirname(path)
    while folder and folder != os.path.dirname(folder):
        if os.path.lexists(folder):
            return None if os.path.isdir(folder) else folder
        folder = os.path.dirname(folder)
    return None


class _LocalWriter(Writer):
    """A small file is buffered and published whole on commit by the storage's :class:`Committer`; a larger one
    spills into a temporary file beside the final one, renamed over it on commit (atomic on POSIX)."""

    def __init__(self, final: str, *, fsync: bool, folders: Folders, committer: Committer) -> None:
        self._final = final
        self._folder = os.path.dirname(final)
        self._temp = ""  # named when the file spills to it (a small file is published by the committer)
        # Chunks of a file that has not spilled yet, joined once when written (no copy per chunk).
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._fd = -1
        self._fsync = fsync
        self._done = False
        self._folders = folders
        self._committer = committer
        # A cancelled ``await asyncio.to_thread(...)`` leaves its thread running. ``abort`` must then neither
        # close the descriptor under it (the number could be reused by another file and written into) nor
        # leave the temporary file behind: whoever holds the lock last cleans up (see _in_thread).
        self._lock = threading.Lock()
        self._abandoned = False

    def _take(self) -> bytes:
        chunks, self._chunks, self._buffered = self._chunks, [], 0
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def write(self, chunk: bytes) -> None:
        await self.write_many((chunk,))

    async def write_many(self, chunks: Sequence[bytes]) -> None:
        if self._fd < 0:
            for chunk in chunks:
                self._chunks.append(chunk)
                self._buffered += len(chunk)
            if self._buffered >= _SPILL_AT:
                await asyncio.to_thread(self._in_thread, self._open_and_write, self._take())
        else:
            await asyncio.to_thread(self._in_thread, self._write_many, chunks)

    writes_in_thread: ClassVar[bool] = True

    def write_in_thread(self, chunk: bytes | memoryview) -> None:
        # Written at once, never buffered: ``chunk`` may be a view of a buffer the caller fills again next (a
        # blocking GET's). Only large bodies come this way, so the file is created with the first chunk.
        self._in_thread(self._write_through, chunk)

    def _write_through(self, chunk: bytes | memoryview) -> None:
        if self._fd < 0:
            self._open_and_write(self._take())  # with whatever write() buffered
        self._write(chunk)

    def _in_thread(self, work: Callable[[Any], None], data: Any) -> None:
        with self._lock:
            if self._abandoned:
                return
            work(data)
        if self._abandoned:  # aborted while this ran: the abort could not take the lock, so clean up here
            self._discard_if_free()

    def _open_and_write(self, data: bytes) -> None:
        self._temp = temp_path(self._final)
        try:
            self._fd = self._folders.create(self._temp, self._folder)
        except OSError as exc:
            raise _explain(exc, self._final) from exc
        self._write(data)

    def _write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            raise _explain(exc, self._final) from exc

    def _write_many(self, chunks: Sequence[bytes]) -> None:
        if len(chunks) > _MAX_IOV:
            self._write(b"".join(chunks))
            return
        try:
            written = os.writev(self._fd, chunks)
        except OSError as exc:
            raise _explain(exc, self._final) from exc
        if written < sum(map(len, chunks)):  # a short write (a signal, the last bytes of a full disk)
            self._write(b"".join(chunks)[written:])

    async def commit(self) -> None:
        data = self._take()
        if self._fd < 0:
            # A small file that never spilled: published whole by the storage's committer, on the event loop while
            # that is cheap, in a batch on a writer thread once commits are measured slow (storages/commits.py).
            try:
                await self._committer.put(self._final, self._folder, data)
            except OSError as exc:
                raise _explain(exc, self._final) from exc
        else:
            await asyncio.to_thread(self._in_thread, self._finish, data)
        self._done = True

    def _finish(self, data: bytes) -> None:
        try:
            if data:
                self._write(data)
            if self._fsync:
                os.fsync(self._fd)
            fd, self._fd = self._fd, -1
            os.close(fd)
            os.replace(self._temp, self._final)  # atomic: readers see the old file or the whole new one
            release(self._temp)
        except OSError as exc:
            self._discard()
            raise _explain(exc, self._final) from exc
        except BaseException:
            self._discard()
            raise

    def _discard(self) -> None:
        """Close and remove the temporary file (the caller holds the lock)."""
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            with suppress(OSError):
                os.close(fd)
        if self._temp:
            with suppress(OSError):
                os.unlink(self._temp)
            release(self._temp)

    def _discard_if_free(self) -> None:
        if self._lock.acquire(blocking=False):
            try:
                self._discard()
            finally:
                self._lock.release()

    async def abort(self) -> None:
        if not self._done:
            self._done = True
            self._chunks, self._buffered = [], 0
            # Synchronous on purpose: abort runs on cancellation too, where awaiting a thread could be cut
            # short. The flag is set before trying the lock, so a thread holding it sees the flag and cleans up.
            self._abandoned = True
            self._discard_if_free()


class LocalStorage(Storage):
    """Stores the mirror under a local folder, in the archive's own layout.

    Args:
        url: the root folder (a path, or a ``file://`` URL).
        fsync: flush every file to the disk before publishing it (survives power loss; slower).
        link: adopt files that are already on disk (from the s5cmd or mirror transports) with a hard link
            where possible, instead of copying them.
        commit_threads: writer threads that small files' commits may move to when the file system is slow to
            create files (0: every commit stays on the event loop).
        slow_commit: the mean seconds a small file's commit may take on the event loop (measured over the first
            commits, and again and again); above it, commits move to the writer threads, in batches. 0 moves them
            there from the start.
    """

    name: ClassVar[str] = "local"
    schemes: ClassVar[tuple[str, ...]] = ("file",)

    def __init__(
        self,
        url: str | os.PathLike[str] = ".",
        *,
        fsync: bool = False,
        link: bool = True,
        commit_threads: int = 2,
        slow_commit: float = 0.0002,
    ) -> None:
        text = os.fspath(url)
        if text.startswith("file://"):
            text = text[len("file://") :]
        if not text:
            raise ConfigurationError("the local storage needs a folder")
        self.root = Path(text).expanduser()
        refuse_a_file(self.root)
        self.fsync = fsync
        self.link = link
        self.commit_threads = whole_number(commit_threads, "commit_threads", at_most=64)
        self.slow_commit = non_negative(slow_commit, "slow_commit", "seconds")
        self._root = os.path.join(os.fspath(self.root), "")  # with its trailing separator, for _path
        self._folders = Folders()
        self._committer = Committer(self._folders, fsync=self.fsync, threads=self.commit_threads, slow=self.slow_commit)

    @property
    def location(self) -> str:
        return str(self.root)

    @property
    def local_root(self) -> Path:
        return self.root

    async def check_writable(self) -> None:
        """Create a temporary file in the folder the mirror's files go under (``data/`` once it exists), and remove
        it: honest for every user (root writes into a folder of mode 0555, but not into a read-only file system).
        A root folder not made yet is not made here: the nearest folder that exists must let this user make it.
        Microseconds: no thread hop."""
        root = os.fspath(self.root)
        try:
            probe_writes(root)
        except OSError as exc:
            raise _explain(exc, exc.filename or root, "write to") from exc

    def path_of(self, key: str) -> Path:
        """The local path of ``key``; keys never leave the root (the core validates their symbols)."""
        return Path(self._path(key))

    def _path(self, key: str) -> str:
        # Strings, not Path objects: the engine asks for two paths of every file it skips or stores.
        if key.startswith("/") or "/../" in f"/{key}/":
            raise StorageError(f"refusing key {key!r}: it would leave {self.root}")
        if "\0" in key:  # the OS would raise a bare ValueError ("embedded null byte")
            raise StorageError(f"refusing key {key!r}: it holds a NUL character")
        return self._root + key

    async def stat(self, key: str) -> StoredObject | None:
        # A local stat takes microseconds; a thread hop would cost more than it saves.
        path = self._path(key)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(f"cannot inspect {path}: {exc.strerror}") from exc
        return StoredObject(key, st.st_size, dt.datetime.fromtimestamp(st.st_mtime, dt.UTC))

    async def sizes(self, folder: str) -> dict[str, int]:
        """The size of every object directly in ``folder``, by name: one directory scan, in a thread."""
        return await asyncio.to_thread(_sizes, self._path(folder))

    def writer(self, key: str) -> Writer:
        return _LocalWriter(self._path(key), fsync=self.fsync, folders=self._folders, committer=self._committer)

    @property
    def committer(self) -> Committer:
        """What publishes small files (``threaded``: whether their commits go to the writer threads now; ``unnamed``:
        whether files are created unnamed and linked into place), for tuning and tests."""
        return self._committer

    async def put_bytes(self, key: str, data: bytes) -> None:
        # The engine's sidecar write, once per file: a small file published whole by the committer.
        final = self._path(key)
        try:
            await self._committer.put(final, os.path.dirname(final), data)
        except OSError as exc:
            raise _explain(exc, final) from exc

    async def read(self, key: str) -> AsyncIterator[bytes]:
        import aiofiles

        path = self.path_of(key)
        with _reading(path):
            async with aiofiles.open(path, "rb") as handle:
                while chunk := await handle.read(CHUNK_SIZE):
                    yield chunk

    async def read_bytes(self, key: str, *, max_size: int) -> bytes:
        path = self.path_of(key)
        with _reading(path):
            return read_small(
                path, max_size, lambda: StorageError(f"{path} is larger than the {max_size} bytes expected")
            )

    async def put_file(self, key: str, path: Path) -> None:
        final = self._path(key)
        await asyncio.to_thread(self._adopt, path, final)

    def _adopt(self, source: Path, final: str) -> None:
        temp = temp_path(final)
        try:
            self._folders.prepare(os.path.dirname(final))
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
            # When final already was a link to the same file (a mirror hard-linked to a shared copy, adopted again by
            # --force or a refresh), rename(2) does nothing and succeeds: the temporary link is still there.
            with suppress(FileNotFoundError):
                os.unlink(temp)
        except OSError as exc:
            with suppress(OSError):
                os.unlink(temp)
            raise _explain(exc, final) from exc
        finally:
            release(temp)

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

    def temporary_files(self) -> Iterator[str]:
        """Leftover temporary files (from a process that was killed mid-write)."""
        return (str(path) for path in self.root.rglob(temporary_glob()))


def _scan(folder: Path) -> list[tuple[Path, bool, int, float]]:
    try:
        with os.scandir(folder) as it:
            out = []
            for entry in it:
                if is_temporary(entry.name):
                    continue
                is_dir = entry.is_dir(follow_symlinks=False)
                st = entry.stat(follow_symlinks=False)
                out.append((Path(entry.path), is_dir, st.st_size, st.st_mtime))
            return out
    except FileNotFoundError:
        return []
    except OSError as exc:  # a folder it may not read: name it, rather than let an OSError escape to the user
        raise _unlistable(str(folder), exc) from exc


def _sizes(folder: str) -> dict[str, int]:
    found: dict[str, int] = {}
    try:
        # Through a descriptor of the folder: each stat then walks one path component, not the whole key (on a
        # VM, system calls that walk long paths were most of a resumed run's time).
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
    except (FileNotFoundError, NotADirectoryError):
        return {}
    except OSError as exc:
        raise _unlistable(folder, exc) from exc
    try:
        with os.scandir(fd) as it:
            for entry in it:
                name = entry.name
                if is_temporary(name):
                    continue
                try:
                    if not entry.is_file(follow_symlinks=False):  # the directory entry's type: no system call
                        continue
                    # A sidecar's presence is what counts (its size is not worth a stat: see Storage.sizes).
                    found[name] = -1 if name.endswith(CHECKSUM_SUFFIX) else entry.stat(follow_symlinks=False).st_size
                except FileNotFoundError:  # removed since the scan saw it
                    continue
    except OSError as exc:
        raise _unlistable(folder, exc) from exc
    finally:
        os.close(fd)
    return found


@contextmanager
def _reading(path: Path) -> Iterator[None]:
    """A stored file's read, its errors the storage's."""
    try:
        yield
    except FileNotFoundError:
        raise StorageError(f"{path} does not exist") from None
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc.strerror}") from exc


def _unlistable(folder: str, exc: OSError) -> StorageError:
    reason = "permission denied" if exc.errno in (errno.EACCES, errno.EPERM) else exc.strerror
    return StorageError(f"cannot list {folder}: {reason}")


@hookimpl
def register_storages() -> list[type[Storage]]:
    return [LocalStorage]
