"""The mirror transport: reads a folder laid out like the archive (a LocalStorage mirror or a shared copy).

Files are handed to the storage as they are on disk (``Body.local_path``), so a local storage on the same
file system adopts them with a hard link instead of a copy. The listing follows S3's semantics over the
folder tree, so discovery (symbols, first dates) works as it does against the real bucket.

The folder may be a network mount whose server goes away: a call into it may then block for as long as the mount
waits (for ever, on a hard NFS mount), and no thread blocked there can be interrupted. So every call into the
folder runs in a daemon thread (:class:`~binance_archive.common.threads.Daemons`) and is given up after
``read_timeout`` seconds as retryable, and the engine reads a file's bytes at ``min_speed`` or gives it up (see
:attr:`~binance_archive.backends.Body.min_speed`); the dead-host rule of the retry policy then stops a run whose
every file stalls.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import stat
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, ClassVar, TypeVar
from urllib.parse import unquote, urlsplit

from binance_archive.backends import Body, FileBody, Transport
from binance_archive.common.files import read_small
from binance_archive.common.options import non_negative, seconds, whole_number
from binance_archive.common.staging import is_temporary
from binance_archive.common.threads import Daemons
from binance_archive.common.urls import as_typed
from binance_archive.core.listing import ListedObject, ListingPage, Paginator
from binance_archive.errors import (
    ConfigurationError,
    FileMissingError,
    RetryableError,
    TransportError,
    VerificationError,
)
from binance_archive.hookspecs import hookimpl

__all__ = ["MirrorTransport"]

log = logging.getLogger(__name__)

_MAX_PAGE = 1000
_T = TypeVar("_T")


def _root_of(location: str | os.PathLike[str]) -> Path:
    """A folder from a path or a ``file://`` URL."""
    text = os.fspath(location)
    if "://" in text:
        parts = urlsplit(text)
        if parts.scheme != "file":
            raise ConfigurationError(
                f"the mirror transport reads a local folder, not {parts.scheme}:// URLs; "
                "give a path or a file:// URL (use the http transport for web servers)"
            )
        if parts.netloc not in ("", "localhost"):
            # Named as typed less its secrets (user:password@, the query string), never the whole netloc.
            raise ConfigurationError(
                f"file:// URLs must name a local path (no host but localhost, no user or password), "
                f"not {as_typed(text)!r}"
            )
        text = unquote(parts.path)
    if not text:
        raise ConfigurationError("the mirror transport needs a folder: pass base_url='/path' or root='/path'")
    return Path(text).expanduser()


class MirrorTransport(Transport):
    """Reads the archive from a local folder that holds it in its own layout (``ROOT/data/spot/...``).

    Use it to build a mirror from another mirror (a shared copy on a network file system, a disk shipped
    around) without touching the network: ``Archive("./mine", transport="mirror", base_url="/shared/binance")``.
    On the same file system as a local storage, files are hard-linked rather than copied (safe: a local
    storage replaces files by renaming, never rewrites them in place, so the two trees cannot change each
    other). Every file is still verified against its ``.CHECKSUM`` sidecar.

    Args:
        base_url: the mirror's folder, as a path or a ``file://`` URL (what ``Archive(base_url=...)`` passes).
        root: the same, under a plainer name; give one of the two.
        page_size: the most entries a listing page holds (S3's 1000 by default).
        read_timeout: seconds a call into the folder (a stat, an open, a sidecar's read, a listing's folder) may
            take before it is given up as retryable: a network mount whose server went away.
        min_speed: bytes per second the engine's read of a file must average over each ``read_timeout`` window;
            a slower or stalled read is given up and retried. 0 turns both guards off: the folder is then read as
            any local folder, which is quicker on a local disk (the thread hops cost about a tenth of a
            millisecond a file; docs/backends.md) but lets a stalled mount hold the run for as long as it stalls.
    """

    name: ClassVar[str] = "mirror"
    default_concurrency: ClassVar[int] = 32

    def __init__(
        self,
        *,
        base_url: str | os.PathLike[str] | None = None,
        root: str | os.PathLike[str] | None = None,
        page_size: int = _MAX_PAGE,
        read_timeout: float = 30.0,
        min_speed: float = 1024.0,
    ) -> None:
        if base_url is not None and root is not None and _root_of(base_url) != _root_of(root):
            raise ConfigurationError("give the mirror's folder once: base_url or root, not both")
        location = root if root is not None else base_url
        if location is None:
            raise ConfigurationError("the mirror transport needs a folder: pass base_url='/path' or root='/path'")
        self.root = _root_of(location)
        self.page_size = whole_number(page_size, "page_size", at_least=1, at_most=_MAX_PAGE)
        self.read_timeout = seconds(read_timeout, "read_timeout")
        self.min_speed = non_negative(min_speed, "min_speed", "bytes per second")
        self._threads: Daemons | None = None

    def __repr__(self) -> str:
        return f"MirrorTransport(root={str(self.root)!r})"

    async def open(self) -> None:
        self._threads = Daemons(64, "binance-archive-mirror")
        try:
            is_dir = await self._call(f"the mirror folder {self.root}", self.root.is_dir)
        except RetryableError as exc:
            raise TransportError(str(exc)) from None
        if not is_dir:
            raise ConfigurationError(f"the mirror folder {self.root} does not exist or is not a folder")

    async def close(self) -> None:
        threads, self._threads = self._threads, None
        if threads is not None:
            threads.close()

    async def _call(self, what: str, function: Callable[..., _T], *args: Any, limit: float | None = None) -> _T:
        """``function(*args)`` in a daemon thread, given up as retryable after ``limit`` (``read_timeout``); with
        ``min_speed`` 0, at once in this thread."""
        if self._threads is None:
            raise TransportError("the mirror transport is not open; use it inside 'async with'")
        if not self.min_speed:
            return function(*args)
        limit = limit or self.read_timeout
        try:
            async with asyncio.timeout(limit):
                return await self._threads.run(function, *args)
        except TimeoutError:
            raise RetryableError(
                f"{what} did not answer within {limit:g} s (a stalled network file system?); see read_timeout"
            ) from None

    def path_of(self, key: str) -> Path:
        """The path of ``key`` under the root.

        Raises:
            TransportError: for a key that would leave the root (absolute, ``..``, empty segments, NUL).
        """
        parts = key.split("/")
        if not key or any(p in ("", ".", "..") or "\\" in p or "\0" in p for p in parts):
            raise TransportError(f"refusing key {key!r}: it would leave the mirror {self.root}")
        return self.root.joinpath(*parts)

    def _regular_file(self, key: str) -> tuple[Path, int]:
        """The path of ``key`` and its size (in a worker thread: it may block)."""
        path = self.path_of(key)
        if is_temporary(path.name):
            raise FileMissingError(f"file not found in the mirror: {key}")
        with _reading(path):
            st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise FileMissingError(f"not a file in the mirror: {path}")
        return path, st.st_size

    def _small(self, key: str, max_size: int) -> bytes:
        path, _ = self._regular_file(key)
        with _reading(path):
            return read_small(
                path, max_size, lambda: VerificationError(f"{key} is larger than the {max_size} bytes expected")
            )

    @asynccontextmanager
    async def get(self, key: str) -> AsyncIterator[Body]:
        path, size = await self._call(f"{self.root}/{key}", self._regular_file, key)
        # The engine reads the bytes itself (and a local storage may adopt the file by a hard link), watched for
        # min_speed over read_timeout windows.
        yield FileBody(path, size=size, min_speed=self.min_speed, speed_window=self.read_timeout)

    async def get_bytes(self, key: str, *, max_size: int) -> bytes:
        limit = self.read_timeout + (max_size / self.min_speed if self.min_speed else 0)
        return await self._call(f"{self.root}/{key}", self._small, key, max_size, limit=limit)

    async def list(self, prefix: str, *, delimiter: str | None = "/") -> AsyncIterator[ListingPage]:
        """The listing of ``prefix`` with S3's semantics: keys in byte order, pages of ``page_size`` entries.

        With ``delimiter="/"`` only the prefix's own folder is read, and sub-folders holding files come as
        ``prefixes``; with no delimiter the whole subtree is walked, one folder at a time in a thread.
        """
        if prefix.startswith("/") or ".." in prefix.split("/"):
            raise TransportError(f"refusing prefix {prefix!r}: it would leave the mirror {self.root}")
        entries = _Entries(self.root, prefix, delimiter)
        pages = Paginator(self.page_size)
        while True:
            if self.min_speed:
                batch = await self._call(f"the listing of {self.root}/{prefix}", entries.take, self.page_size + 1)
            else:
                batch = await asyncio.to_thread(entries.take, self.page_size + 1)
            for entry in batch:
                if (page := pages.add(entry)) is not None:
                    yield page
            if len(batch) < self.page_size + 1:
                break
        yield pages.last()


@contextmanager
def _reading(path: Path) -> Iterator[None]:
    """A read of the mirror's file ``path``, its errors the transport's."""
    try:
        yield
    except (FileNotFoundError, NotADirectoryError):
        raise FileMissingError(f"file not found in the mirror: {path}") from None
    except OSError as exc:
        raise TransportError(f"cannot read {path}: {exc.strerror}") from exc


class _Entries:
    """The entries of a listing in key order, produced lazily (a folder at a time) in a worker thread.

    An entry is ``(key, ListedObject)`` for an object or ``(prefix, None)`` for a common prefix. A
    depth-first walk that sorts each folder's entries by ``name`` for files and ``name + "/"`` for folders
    yields keys in the same order as S3's byte-wise sort (UTF-8 keeps code point order).
    """

    def __init__(self, root: Path, prefix: str, delimiter: str | None) -> None:
        self.root = root
        self.prefix = prefix
        self.delimiter = delimiter or None
        folder, _, self.start = prefix.rpartition("/")
        self.folder = f"{folder}/" if folder else ""
        self._iterator = self._walk()
        self._last_prefix: str | None = None

    def take(self, count: int) -> list[tuple[str, ListedObject | None]]:
        out: list[tuple[str, ListedObject | None]] = []
        for entry in self._iterator:
            out.append(entry)
            if len(out) == count:
                break
        return out

    def _walk(self) -> Iterator[tuple[str, ListedObject | None]]:
        for key, obj, is_dir in self._tree(self.folder, top=True):
            if self.delimiter is None:
                if not is_dir:
                    yield key, obj
                continue
            rest = key[len(self.prefix) :]
            cut = rest.find(self.delimiter)
            if cut >= 0:
                common = self.prefix + rest[: cut + len(self.delimiter)]
                if common != self._last_prefix:
                    self._last_prefix = common
                    yield common, None
            elif not is_dir:
                yield key, obj

    def _tree(self, folder: str, *, top: bool) -> Iterator[tuple[str, ListedObject | None, bool]]:
        """Every file under ``folder`` (a key prefix ending in "/"), in key order.

        With the "/" delimiter, sub-folders are yielded (as ``is_dir``) instead of walked when they hold files.
        """
        for name, st in _scan(self.root / folder if folder else self.root):
            if top and not name.startswith(self.start):
                continue
            key = folder + name
            if stat.S_ISDIR(st.st_mode):
                if self.delimiter == "/":
                    if _holds_files(self.root / key):
                        yield key + "/", None, True
                else:
                    yield from self._tree(key + "/", top=False)
            elif stat.S_ISREG(st.st_mode):
                modified = dt.datetime.fromtimestamp(st.st_mtime, dt.UTC).replace(microsecond=0)
                yield key, ListedObject(key=key, size=st.st_size, etag="", last_modified=modified), False


def _scan(folder: Path) -> list[tuple[str, os.stat_result]]:
    """A folder's entries (temporary files left out), sorted as S3 sorts their keys."""
    found: list[tuple[str, os.stat_result]] = []
    try:
        with os.scandir(folder) as it:
            for entry in it:
                if is_temporary(entry.name):
                    continue
                try:
                    found.append((entry.name, entry.stat()))  # follows links: a shared copy may use them
                except FileNotFoundError:
                    continue  # removed meanwhile, or a dangling link
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        raise TransportError(f"cannot list {folder}: {exc.strerror}") from exc
    return sorted(found, key=lambda item: item[0] + "/" if stat.S_ISDIR(item[1].st_mode) else item[0])


def _holds_files(folder: Path) -> bool:
    """Whether ``folder`` has a file anywhere below it (S3 has no empty folders); stops at the first."""
    for name, st in _scan(folder):
        if stat.S_ISREG(st.st_mode) or (stat.S_ISDIR(st.st_mode) and _holds_files(folder / name)):
            return True
    return False


@hookimpl
def register_transports() -> list[type[Transport]]:
    return [MirrorTransport]
