"""A month folder's manifest: for each table file, the source zip it was made from and that zip's SHA-256, so that a
re-run converts only what changed (a file Binance re-uploaded has a new digest)."""

from __future__ import annotations

import json
from typing import Any

import attrs

from binance_archive.backends import Storage
from binance_archive.errors import StorageError
from binance_archive.tables.layout import MANIFEST

__all__ = ["FORMAT", "Manifest", "Source"]

FORMAT = "binance_archive.tables/1"
_MAX_BYTES = 4 * 1024 * 1024  # a month of daily files is ~31 entries of ~200 bytes


@attrs.frozen
class Source:
    """Where one table file came from."""

    key: str
    sha256: str
    rows: int


@attrs.define
class Manifest:
    """The manifest of the month folder ``folder``: table file names to their sources."""

    folder: str
    files: dict[str, Source] = attrs.Factory(dict)

    @property
    def key(self) -> str:
        return f"{self.folder}/{MANIFEST}"

    @classmethod
    async def load(cls, storage: Storage, folder: str) -> Manifest:
        """The folder's manifest; empty where there is none, or where it cannot be read (then everything in the
        folder is converted again: a manifest only ever saves work)."""
        manifest = cls(folder)
        if await storage.stat(manifest.key) is None:
            return manifest
        try:
            data: Any = json.loads(await storage.read_bytes(manifest.key, max_size=_MAX_BYTES))
            if data.get("format") == FORMAT:
                manifest.files = {name: Source(**entry) for name, entry in data["files"].items()}
        except (StorageError, ValueError, TypeError, AttributeError, KeyError):
            manifest.files = {}
        return manifest

    async def save(self, storage: Storage) -> None:
        """Write the manifest (atomically, as the storage writes every object)."""
        files = {name: attrs.asdict(source) for name, source in sorted(self.files.items())}
        data = json.dumps({"format": FORMAT, "files": files}, indent=1, ensure_ascii=False).encode()
        await storage.put_bytes(self.key, data)
