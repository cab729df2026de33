"""A third-party binance_archive plugin: the ``memory`` transport, serving objects from a dict."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import ClassVar

from binance_archive.backends import Body, Transport
from binance_archive.core.listing import ListedObject, ListingPage
from binance_archive.errors import FileMissingError, VerificationError
from binance_archive.hookspecs import hookimpl

__all__ = ["MemoryTransport"]


class _BytesBody(Body):
    def __init__(self, data: bytes) -> None:
        self._data = data
        self.size = len(data)

    async def chunks(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self._data), 65536):
            yield self._data[start : start + 65536]


class MemoryTransport(Transport):
    """Serves the archive from memory.

    Args:
        objects: key -> bytes.
        root: or a folder laid out like the archive, read into memory at construction.
        page_size: entries per listing page (S3 sends at most 1000).
    """

    name: ClassVar[str] = "memory"

    def __init__(
        self,
        *,
        objects: Mapping[str, bytes] | None = None,
        root: str | os.PathLike[str] | None = None,
        page_size: int = 1000,
    ) -> None:
        self.objects = dict(objects or {})
        self.page_size = page_size
        if root is not None:
            base = Path(root)
            for path in base.rglob("*"):
                if path.is_file():
                    self.objects[path.relative_to(base).as_posix()] = path.read_bytes()
        self.gets = 0

    def _data(self, key: str) -> bytes:
        self.gets += 1
        try:
            return self.objects[key]
        except KeyError:
            raise FileMissingError(f"not in memory: {key}") from None

    @asynccontextmanager
    async def get(self, key: str) -> AsyncIterator[Body]:
        yield _BytesBody(self._data(key))

    async def get_bytes(self, key: str, *, max_size: int) -> bytes:
        data = self._data(key)
        if len(data) > max_size:
            raise VerificationError(f"{key} is {len(data)} bytes; at most {max_size} expected")
        return data

    async def list(self, prefix: str, *, delimiter: str | None = "/") -> AsyncIterator[ListingPage]:
        # Entries in S3 order: a folder (common prefix) once, where its first key would be.
        entries: list[str | ListedObject] = []
        for key in sorted(k for k in self.objects if k.startswith(prefix)):
            rest = key[len(prefix) :]
            if delimiter and delimiter in rest:
                common = prefix + rest[: rest.index(delimiter) + len(delimiter)]
                if not entries or entries[-1] != common:
                    entries.append(common)
            else:
                entries.append(ListedObject(key=key, size=len(self.objects[key])))
        for start in range(0, max(len(entries), 1), self.page_size):
            page = entries[start : start + self.page_size]
            more = start + self.page_size < len(entries)
            last = page[-1] if page else None
            marker = (last if isinstance(last, str) else last.key) if more and last is not None else None
            yield ListingPage(
                tuple(e for e in page if isinstance(e, str)),
                tuple(e for e in page if isinstance(e, ListedObject)),
                more,
                marker,
            )


@hookimpl
def register_transports() -> list[type[Transport]]:
    return [MemoryTransport]
