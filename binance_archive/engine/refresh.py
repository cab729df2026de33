"""Refresh decisions: is a stored file still what the archive has? (Binance re-uploads files it fixed.)

A stored file's sidecar is compared with the archive's. The archive's listing vouches for an unchanged sidecar
without fetching it: S3 gives an object uploaded in one part (a sidecar is ~100 bytes) the MD5 of its bytes as
ETag, so one listing request covers a year of one series' files. Where the listing cannot vouch, the upstream
sidecar is fetched and its digest compared.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re

from binance_archive.backends import Storage, Transport
from binance_archive.core.checksum import MAX_SIDECAR_BYTES, parse_checksum
from binance_archive.core.files import CHECKSUM_SUFFIX, ArchiveFile
from binance_archive.core.listing import ListedObject
from binance_archive.core.periods import Period
from binance_archive.engine.retry import Retrying, RetryPolicy
from binance_archive.engine.stored import stored_zip
from binance_archive.errors import RetryableError, StorageError, TransportError, VerificationError

__all__ = ["Refresh"]

log = logging.getLogger(__name__)

_LISTINGS_KEPT = 16  # listings of sidecars kept (each at most a year of one series: ~370 entries)
_MAX_LISTED_SIDECARS = 1000
_MD5 = re.compile(r"[0-9a-fA-F]{32}")


class Refresh:
    """The refresh decisions of one run; :meth:`close` when the run ends."""

    def __init__(self, transport: Transport, storage: Storage, retry: RetryPolicy) -> None:
        self._transport = transport
        self._storage = storage
        self._retry = retry
        self._use_listing = True
        # The listing of sidecars, by scope (see listing_vouches); shared by the workers.
        self._listings: dict[str, asyncio.Future[dict[str, ListedObject] | None]] = {}

    def close(self) -> None:
        for task in self._listings.values():
            task.cancel()  # only a run that ends early leaves one unfinished

    async def stored_sidecar(self, file: ArchiveFile) -> tuple[str | None, bytes]:
        """The digest and bytes of the stored sidecar; ``(None, b"")`` when the file is not (completely) stored."""
        if not await stored_zip(self._storage, file):
            return None, b""
        try:
            content = await self._storage.read_bytes(file.checksum_key, max_size=MAX_SIDECAR_BYTES)
            return parse_checksum(content), content
        except (StorageError, VerificationError):
            return None, b""

    async def upstream_sidecar(self, file: ArchiveFile) -> tuple[bytes, str]:
        """The archive's sidecar of ``file`` and its digest (one try: the caller retries)."""
        content = await self._transport.get_bytes(file.checksum_key, max_size=MAX_SIDECAR_BYTES)
        return content, parse_checksum(content, filename=file.filename)

    async def listing_vouches(self, file: ArchiveFile, stored: bytes) -> bool:
        """Whether the archive's listing shows ``file``'s sidecar with exactly the ``stored`` bytes.

        An equal ETag (the MD5 of a one-part upload) and size mean an equal sidecar, hence an equal digest.
        Anything else (no listing, another kind of ETag, the sidecar absent from the listing) proves nothing.
        """
        if not self._use_listing:
            return False
        # One listing per series and year of daily files (at most 732 entries: one page), or per series of
        # monthly files; the workers share it, and the last few are kept (the plan walks series in order).
        scope = file.name_prefix + (f"{file.date.year}-" if file.period is Period.DAILY else "")
        task = self._listings.get(scope)
        if task is None:
            task = asyncio.ensure_future(self._list_sidecars(scope))
            self._listings[scope] = task
            while len(self._listings) > _LISTINGS_KEPT:
                self._listings.pop(next(iter(self._listings)))
        listed = (await asyncio.shield(task) or {}).get(file.checksum_key)
        return (
            listed is not None
            and listed.size == len(stored)
            and listed.etag.lower() == hashlib.md5(stored, usedforsecurity=False).hexdigest()
        )

    async def _list_sidecars(self, scope: str) -> dict[str, ListedObject] | None:
        """The sidecars the listing shows under ``scope``, or ``None`` when it cannot be read (then: GETs)."""

        async def read(_attempt: int) -> dict[str, ListedObject] | None:
            found: dict[str, ListedObject] = {}
            async for page in self._transport.list(scope, delimiter=None):
                for obj in page.objects:
                    if obj.key.endswith(CHECKSUM_SUFFIX):
                        found[obj.key] = obj
                if len(found) > _MAX_LISTED_SIDECARS:  # not a year of one series: a listing gone wrong
                    return None
            return found

        try:
            found = await Retrying(self._retry, what=f"the listing of {scope}")(read)
        except RetryableError:
            return None
        except (TransportError, VerificationError) as exc:
            # A transport that cannot list, or a listing that is not one: fetch each sidecar for the rest of the run.
            log.debug("refresh without the listing of %s: %s", scope, exc)
            self._use_listing = False
            return None
        if found and not any(_MD5.fullmatch(obj.etag) for obj in found.values()):
            self._use_listing = False  # this transport's listing has no MD5 ETags (a local mirror)
        return found
