"""One file's transfer: its sidecar and zip fetched at once, the zip hashed while it streams into the storage,
verified against the sidecar, committed, and the sidecar stored last as the marker of a complete file."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib

import attrs

from binance_archive.backends import Body, Storage, Transport
from binance_archive.core.checksum import MAX_SIDECAR_BYTES, parse_checksum
from binance_archive.core.files import ArchiveFile
from binance_archive.engine.receive import Receiver
from binance_archive.engine.stored import StoredIndex
from binance_archive.errors import FileMissingError, StorageError, TransportError, VerificationError
from binance_archive.report import FileOutcome, Outcome

__all__ = ["Transfer"]


@attrs.frozen
class Transfer:
    """Moves files from ``transport`` to ``storage``, verified; one :meth:`attempt` per try of a file.

    Attributes:
        force: a stored file is replaced (its sidecar removed first).
        index: told of every file stored, should the plan name it again.
    """

    _transport: Transport
    _storage: Storage
    _receiver: Receiver
    _force: bool = attrs.field(kw_only=True)
    _index: StoredIndex | None = attrs.field(kw_only=True)

    async def attempt(
        self, file: ArchiveFile, previous: str | None, attempt: int, known_sidecar: bytes | None = None
    ) -> FileOutcome:
        """One try: sidecar and zip fetched concurrently, the zip hashed as it streams into storage.

        ``previous`` is the digest of the stored copy a refresh replaces; ``known_sidecar`` the upstream sidecar
        a refresh has fetched already. Raises the library's errors (the caller decides what to retry).
        """
        sidecar: asyncio.Future[bytes]
        if known_sidecar is not None:
            sidecar = asyncio.get_running_loop().create_future()
            sidecar.set_result(known_sidecar)
        else:
            sidecar = asyncio.create_task(self._transport.get_bytes(file.checksum_key, max_size=MAX_SIDECAR_BYTES))
        try:
            async with self._transport.get(file.key) as body:
                expected, size = await self._store_verified(file, body, sidecar, previous)
            sidecar_bytes = sidecar.result()
        except FileMissingError:
            # Whether the sidecar exists decides between a missing date and an archive inconsistency, so wait
            # for its answer (it is already in flight) instead of racing it: a zip that 404s before its sidecar
            # has answered must not be reported missing one run and failed the next.
            sidecar_error = (await asyncio.gather(sidecar, return_exceptions=True))[0]
            if not isinstance(sidecar_error, BaseException):
                # The sidecar exists but the zip does not: an archive inconsistency, not a missing date.
                raise TransportError(f"{file.key} is missing but its .CHECKSUM exists") from None
            if isinstance(sidecar_error, FileMissingError | asyncio.CancelledError):
                raise
            raise sidecar_error from None  # e.g. a 503 for the sidecar: retried, and the next try decides
        finally:
            if not sidecar.done():
                sidecar.cancel()
                await asyncio.gather(sidecar, return_exceptions=True)
            elif not sidecar.cancelled():
                sidecar.exception()  # marks its exception (if any) retrieved: no "never retrieved" warning
        # The sidecar goes last: its presence marks a complete, verified file.
        try:
            await self._storage.put_bytes(file.checksum_key, sidecar_bytes)
        except StorageError:
            # The disk filled up between the zip and its sidecar, say: take the zip back rather than leave it
            # under its final name without its marker (verify would call it unverified); the next run fetches it.
            with contextlib.suppress(StorageError):
                await self._storage.delete(file.key)
            raise
        if self._index is not None:
            self._index.stored(file, size, len(sidecar_bytes))
        return FileOutcome(
            file.key,
            Outcome.DOWNLOADED,
            size,
            sha256=expected,
            attempts=attempt,
            previous_sha256=previous if previous != expected else None,
        )

    async def _store_verified(
        self, file: ArchiveFile, body: Body, sidecar: asyncio.Future[bytes], previous: str | None
    ) -> tuple[str, int]:
        if previous is not None or self._force:
            # Unmark the old copy first: a crash between zip and sidecar must not pair new bytes with an old
            # sidecar (or old bytes with a new one).
            await self._storage.delete(file.checksum_key)
        if body.local_path is not None:
            size, actual = await self._receiver.local_file(file, body)
            expected = await _expected_digest(file, sidecar)
            _check(file, actual, expected)
            await self._storage.put_file(file.key, body.local_path)
            return expected, size
        digest = hashlib.sha256()
        async with self._storage.writer(file.key) as writer:
            size = await self._receiver.body(file, body, writer, digest)
            expected = await _expected_digest(file, sidecar)
            _check(file, digest.hexdigest(), expected)
            await writer.commit()
        return expected, size


async def _expected_digest(file: ArchiveFile, sidecar: asyncio.Future[bytes]) -> str:
    try:
        content = await sidecar
    except FileMissingError:
        raise TransportError(f"{file.checksum_key} is missing: the file cannot be verified") from None
    return parse_checksum(content, filename=file.filename)


def _check(file: ArchiveFile, actual: str, expected: str) -> None:
    if actual != expected:
        raise VerificationError(f"{file.key}: SHA-256 {actual} does not match the sidecar's {expected}")
