"""Conformance suites for transports and storages, shipped for plugin authors (as fsspec ships its abstract tests).

A backend proves it keeps the contract of :mod:`binance_archive.backends` with a one-line subclass in its own
test suite; every built-in backend runs these same tests::

    import pytest
    from binance_archive.testing.contracts import StorageContract, TransportContract

    class TestMyStorage(StorageContract):
        @pytest.fixture
        def storage(self, tmp_path):
            return MyStorage(str(tmp_path))

    class TestMyTransport(TransportContract):
        @pytest.fixture
        def transport(self, contract_archive):
            # contract_archive.root holds data/... on disk; contract_archive.objects maps key -> bytes.
            return MyTransport(root=contract_archive.root)

The ``transport`` and ``storage`` fixtures may be async (with pytest-asyncio) and may yield. A transport fixture
serves the small archive of :attr:`ContractArchive.objects` however it likes (from ``root``, a server, a
bucket seeded from ``objects``); ``contract_archive`` is built once per test class. The suites need pytest and
pytest-asyncio; their tests are marked ``asyncio`` so no ``asyncio_mode`` setting is required.

Class attributes tune the suites: :attr:`TransportContract.supports_listing` (``False`` for a transport that
cannot list) and :attr:`TransportContract.listing_page_size` (the page size the fixture configured, to check
paging); :attr:`StorageContract.large_size` (bytes of the "large" object: more than the storage buffers in
memory or puts in one request).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar

import attrs
import pytest

from binance_archive.backends import Storage, StoredObject, Transport
from binance_archive.core import ArchiveFile, DataType, Interval, ListedObject, Market, Period, parse_checksum
from binance_archive.core.checksum import MAX_SIDECAR_BYTES
from binance_archive.errors import FileMissingError, StorageError, VerificationError
from binance_archive.testing.tree import build_archive, key_path

__all__ = ["CONTRACT_FILES", "ContractArchive", "StorageContract", "TransportContract", "build_contract_archive"]


def _daily(market: str, data_type: str, symbol: str, day: str, interval: str | None = "1h") -> ArchiveFile:
    return ArchiveFile(
        Market.parse(market),
        DataType.parse(data_type),
        symbol,
        Period.DAILY,
        dt.date.fromisoformat(day),
        Interval.parse(interval) if interval else None,
    )


def _monthly(market: str, data_type: str, symbol: str, month: str, interval: str | None = None) -> ArchiveFile:
    return ArchiveFile(
        Market.parse(market),
        DataType.parse(data_type),
        symbol,
        Period.MONTHLY,
        dt.date.fromisoformat(month + "-01"),
        Interval.parse(interval) if interval else None,
    )


CONTRACT_FILES: tuple[ArchiveFile, ...] = (
    _daily("spot", "klines", "BTCUSDT", "2024-01-01"),
    _daily("spot", "klines", "BTCUSDT", "2024-01-02"),
    _daily("spot", "klines", "BTCUSDT", "2024-01-03"),
    _daily("spot", "klines", "ETHUSDT", "2024-01-01"),
    _monthly("spot", "klines", "BTCUSDT", "2023-12", "1h"),
    _daily("futures/um", "klines", "币安人生USDT", "2024-01-01"),
    _monthly("futures/um", "fundingRate", "BTCUSDT", "2024-01"),
)
"""The files of the contract archive: daily and monthly, with and without interval, a non-ASCII symbol."""


@attrs.frozen
class ContractArchive:
    """A small archive on disk (``root/data/...``, zips and ``.CHECKSUM`` sidecars) and its objects in memory."""

    root: Path
    files: tuple[ArchiveFile, ...]
    objects: dict[str, bytes]
    """Every object of the archive: key -> bytes (zips and sidecars)."""

    @property
    def missing_key(self) -> str:
        """A well-formed key the archive does not have (in a folder that exists)."""
        return _daily("spot", "klines", "BTCUSDT", "2000-01-01").key

    def keys_under(self, prefix: str) -> list[str]:
        """The object keys starting with ``prefix``, in S3 order."""
        return sorted(k for k in self.objects if k.startswith(prefix))


def build_contract_archive(
    root: str | os.PathLike[str], files: Iterable[ArchiveFile] = CONTRACT_FILES
) -> ContractArchive:
    """Write ``files`` under ``root`` (small real-format zips with their sidecars) and describe them."""
    chosen = tuple(files)
    build_archive(root, chosen, max_rows=24)
    objects: dict[str, bytes] = {}
    for file in chosen:
        for key in (file.key, file.checksum_key):
            objects[key] = key_path(root, key).read_bytes()
    return ContractArchive(Path(root), chosen, objects)


async def _read_body(transport: Transport, key: str) -> tuple[bytes, int | None, Path | None]:
    async with transport.get(key) as body:
        data = b"".join([chunk async for chunk in body.chunks()])
        local = body.local_path.read_bytes() if body.local_path is not None else None
        if local is not None:
            assert local == data, f"{key}: local_path holds other bytes than chunks() gives"
        return data, body.size, body.local_path


async def _listing(
    transport: Transport, prefix: str, delimiter: str | None
) -> tuple[list[str], list[ListedObject], int, list[int]]:
    prefixes: list[str] = []
    objects: list[ListedObject] = []
    sizes: list[int] = []
    pages = 0
    async for page in transport.list(prefix, delimiter=delimiter):
        pages += 1
        prefixes += page.prefixes
        objects += page.objects
        sizes.append(len(page.prefixes) + len(page.objects))
        if page.is_truncated:
            assert page.next_marker, "a truncated page must say where the next one starts"
    return prefixes, objects, pages, sizes


@pytest.mark.asyncio
class TransportContract:
    """The contract of :class:`~binance_archive.backends.Transport`; subclass it and provide ``transport``."""

    supports_listing: ClassVar[bool] = True
    """Whether the transport implements :meth:`Transport.list`."""

    listing_page_size: ClassVar[int | None] = None
    """The listing page size the ``transport`` fixture set up (checks paging), or ``None`` to skip that."""

    @pytest.fixture(scope="class")
    @classmethod
    def contract_archive(cls, tmp_path_factory: pytest.TempPathFactory) -> ContractArchive:
        """The archive the transport must serve; built once per test class."""
        return build_contract_archive(tmp_path_factory.mktemp("contract-archive"))

    @pytest.fixture
    def transport(self, contract_archive: ContractArchive) -> Transport:
        """The transport under test, serving ``contract_archive``: override this."""
        raise NotImplementedError("override the 'transport' fixture to return the transport under test")

    # -- get -----------------------------------------------------------------------------------------------

    async def test_get_gives_the_exact_bytes(self, transport: Transport, contract_archive: ContractArchive) -> None:
        keys = [f.key for f in contract_archive.files]
        async with transport:
            results = await asyncio.gather(*(_read_body(transport, key) for key in keys))
        for key, (data, size, _) in zip(keys, results, strict=True):
            assert data == contract_archive.objects[key], key
            assert size is None or size == len(data), f"{key}: size {size} but {len(data)} bytes"

    async def test_a_loop_free_body_reads_the_same_on_another_threads_loop(
        self, transport: Transport, contract_archive: ContractArchive
    ) -> None:
        key = contract_archive.files[0].key
        async with transport, transport.get(key) as body:
            if not body.loop_free:
                pytest.skip("this transport's bodies are not loop_free: the engine reads them on its own loop")

            async def read() -> bytes:
                return b"".join([bytes(chunk) async for chunk in body.chunks()])

            data = await asyncio.to_thread(asyncio.run, read())
        assert data == contract_archive.objects[key]

    async def test_a_blocking_body_reads_the_same_from_a_worker_thread(
        self, transport: Transport, contract_archive: ContractArchive
    ) -> None:
        keys = [f.key for f in contract_archive.files[:2]]
        async with transport:
            for key in keys:
                async with transport.get(key) as body:
                    if not body.blocking:
                        pytest.skip("this transport's bodies are not blocking: the engine reads them with chunks()")
                    data = await asyncio.to_thread(lambda: b"".join(bytes(c) for c in body.blocking_chunks()))
                assert data == contract_archive.objects[key], key

    async def test_get_non_ascii_key(self, transport: Transport, contract_archive: ContractArchive) -> None:
        key = next(f.key for f in contract_archive.files if not f.symbol.isascii())
        async with transport:
            data, _, _ = await _read_body(transport, key)
        assert data == contract_archive.objects[key]

    async def test_get_missing_raises_file_missing(
        self, transport: Transport, contract_archive: ContractArchive
    ) -> None:
        async with transport:
            with pytest.raises(FileMissingError):
                await _read_body(transport, contract_archive.missing_key)
            with pytest.raises(FileMissingError):
                await _read_body(transport, "data/spot/daily/klines/NOSUCHSYMBOL/1h/NOSUCHSYMBOL-1h-2024-01-01.zip")

    async def test_get_after_a_missing_key_still_works(
        self, transport: Transport, contract_archive: ContractArchive
    ) -> None:
        key = contract_archive.files[0].key
        async with transport:
            outcomes = await asyncio.gather(
                _read_body(transport, contract_archive.missing_key), _read_body(transport, key), return_exceptions=True
            )
            assert isinstance(outcomes[0], FileMissingError)
            assert not isinstance(outcomes[1], BaseException)
            assert outcomes[1][0] == contract_archive.objects[key]

    async def test_get_bytes_reads_a_sidecar(self, transport: Transport, contract_archive: ContractArchive) -> None:
        file = contract_archive.files[0]
        async with transport:
            content = await transport.get_bytes(file.checksum_key, max_size=MAX_SIDECAR_BYTES)
        assert content == contract_archive.objects[file.checksum_key]
        digest = parse_checksum(content, filename=file.filename)
        assert digest == hashlib.sha256(contract_archive.objects[file.key]).hexdigest()

    async def test_get_bytes_refuses_more_than_max_size(
        self, transport: Transport, contract_archive: ContractArchive
    ) -> None:
        key = contract_archive.files[0].key
        async with transport:
            with pytest.raises(VerificationError):
                await transport.get_bytes(key, max_size=10)

    async def test_get_bytes_missing_raises_file_missing(
        self, transport: Transport, contract_archive: ContractArchive
    ) -> None:
        async with transport:
            with pytest.raises(FileMissingError):
                await transport.get_bytes(contract_archive.missing_key + ".CHECKSUM", max_size=MAX_SIDECAR_BYTES)

    async def test_zip_and_sidecar_concurrently(self, transport: Transport, contract_archive: ContractArchive) -> None:
        """The engine's pattern: every file's sidecar and zip requested at once."""
        files = contract_archive.files
        async with transport:
            sidecars = [transport.get_bytes(f.checksum_key, max_size=MAX_SIDECAR_BYTES) for f in files]
            bodies = [_read_body(transport, f.key) for f in files]
            results = await asyncio.gather(*sidecars, *bodies)
        for i, file in enumerate(files):
            assert results[i] == contract_archive.objects[file.checksum_key]
            body = results[len(files) + i]
            assert isinstance(body, tuple)
            assert body[0] == contract_archive.objects[file.key]

    # -- list ----------------------------------------------------------------------------------------------

    def _need_listing(self) -> None:
        if not self.supports_listing:
            pytest.skip(f"{type(self).__name__} declares supports_listing = False")

    async def test_list_with_delimiter_gives_folders(self, transport: Transport) -> None:
        self._need_listing()
        async with transport:
            prefixes, objects, _, _ = await _listing(transport, "data/spot/daily/klines/", "/")
        assert sorted(prefixes) == ["data/spot/daily/klines/BTCUSDT/", "data/spot/daily/klines/ETHUSDT/"]
        assert objects == []

    async def test_list_prefix_matches_part_of_a_name(self, transport: Transport) -> None:
        self._need_listing()
        async with transport:
            prefixes, objects, _, _ = await _listing(transport, "data/spot/daily/klines/BT", "/")
        assert prefixes == ["data/spot/daily/klines/BTCUSDT/"]
        assert objects == []

    async def test_list_folder_gives_objects_with_sizes(
        self, transport: Transport, contract_archive: ContractArchive
    ) -> None:
        self._need_listing()
        folder = contract_archive.files[0].folder + "/"
        async with transport:
            prefixes, objects, _, _ = await _listing(transport, folder, "/")
        assert prefixes == []
        assert [o.key for o in objects] == contract_archive.keys_under(folder)
        for obj in objects:
            assert obj.size == len(contract_archive.objects[obj.key]), obj.key

    async def test_list_without_delimiter_gives_every_object_below(
        self, transport: Transport, contract_archive: ContractArchive
    ) -> None:
        self._need_listing()
        async with transport:
            prefixes, objects, _, _ = await _listing(transport, "data/", None)
        assert prefixes == []
        keys = [o.key for o in objects]
        assert keys == sorted(keys), "objects come in key order"
        assert keys == contract_archive.keys_under("data/")
        for obj in objects:
            assert obj.size == len(contract_archive.objects[obj.key]), obj.key

    async def test_list_non_ascii_folder(self, transport: Transport, contract_archive: ContractArchive) -> None:
        self._need_listing()
        file = next(f for f in contract_archive.files if not f.symbol.isascii())
        async with transport:
            prefixes, _, _, _ = await _listing(transport, f"data/{file.market.value}/daily/klines/", "/")
            _, objects, _, _ = await _listing(transport, file.folder + "/", "/")
        assert f"data/{file.market.value}/daily/klines/{file.symbol}/" in prefixes
        assert [o.key for o in objects] == [file.key, file.checksum_key]

    async def test_list_missing_prefix_is_empty(self, transport: Transport) -> None:
        self._need_listing()
        async with transport:
            prefixes, objects, _, _ = await _listing(transport, "data/spot/daily/klines/NOSUCHSYMBOL/", "/")
            assert (prefixes, objects) == ([], [])
            prefixes, objects, _, _ = await _listing(transport, "data/spot/daily/klines/NOSUCHSYMBOL/", None)
            assert (prefixes, objects) == ([], [])

    async def test_list_pages(self, transport: Transport, contract_archive: ContractArchive) -> None:
        self._need_listing()
        if self.listing_page_size is None:
            pytest.skip("set listing_page_size to the page size the transport fixture configured")
        size = self.listing_page_size
        async with transport:
            _, objects, pages, sizes = await _listing(transport, "data/", None)
            prefixes, _, folder_pages, _ = await _listing(transport, "data/spot/daily/klines/", "/")
        keys = [o.key for o in objects]
        assert keys == contract_archive.keys_under("data/"), "no object lost or repeated across pages"
        assert pages == -(-len(keys) // size)
        assert all(n <= size for n in sizes)
        assert len(prefixes) == 2
        assert folder_pages == -(-2 // size)


async def _keys(storage: Storage, prefix: str = "data/") -> dict[str, int]:
    return {o.key: o.size async for o in storage.list(prefix)}


async def _read(storage: Storage, key: str) -> bytes:
    return b"".join([chunk async for chunk in storage.read(key)])


def _blob(size: int, seed: int) -> bytes:
    """``size`` bytes that differ for every seed (and do not compress to nothing)."""
    block = hashlib.sha256(f"seed-{seed}".encode()).digest() * 2048  # 64 KiB
    return (block * (size // len(block) + 1))[:size]


async def _write(storage: Storage, key: str, data: bytes, *, chunk: int = 256 * 1024) -> None:
    async with storage.writer(key) as writer:
        for start in range(0, len(data), chunk):
            await writer.write(data[start : start + chunk])
        await writer.commit()


class _Boom(Exception):
    pass


async def _fail_inside_writer(storage: Storage, key: str, data: bytes) -> None:
    async with storage.writer(key) as writer:
        await writer.write(data)
        raise _Boom


@pytest.mark.asyncio
class StorageContract:
    """The contract of :class:`~binance_archive.backends.Storage`; subclass it and provide ``storage``.

    The storage must start empty (a fresh folder, a fresh bucket prefix).
    """

    large_size: ClassVar[int] = 3 * 1024 * 1024 + 17
    """Bytes of the "large" object: set it above what the storage buffers or puts in one request."""

    @pytest.fixture
    def storage(self) -> Storage:
        """The (empty) storage under test: override this."""
        raise NotImplementedError("override the 'storage' fixture to return an empty storage under test")

    KEY: ClassVar[str] = "data/spot/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2024-01-01.zip"

    async def test_location_is_text(self, storage: Storage) -> None:
        assert isinstance(storage.location, str)
        assert storage.location

    async def test_stat_of_missing_is_none(self, storage: Storage) -> None:
        async with storage:
            assert await storage.stat(self.KEY) is None

    async def test_put_bytes_then_stat_read_read_bytes(self, storage: Storage) -> None:
        data = b"0123456789abcdef" * 10
        async with storage:
            await storage.put_bytes(self.KEY + ".CHECKSUM", data)
            stat = await storage.stat(self.KEY + ".CHECKSUM")
            assert isinstance(stat, StoredObject)
            assert (stat.key, stat.size) == (self.KEY + ".CHECKSUM", len(data))
            assert await _read(storage, self.KEY + ".CHECKSUM") == data
            assert await storage.read_bytes(self.KEY + ".CHECKSUM", max_size=len(data)) == data

    @pytest.mark.parametrize("size", ["small", "large"])
    async def test_writer_commit_makes_the_exact_bytes_visible(self, storage: Storage, size: str) -> None:
        data = _blob(1000 if size == "small" else self.large_size, 1)
        async with storage:
            await _write(storage, self.KEY, data, chunk=333 if size == "small" else 256 * 1024)
            stat = await storage.stat(self.KEY)
            assert stat is not None
            assert stat.size == len(data)
            assert await _read(storage, self.KEY) == data

    @pytest.mark.parametrize("size", ["small", "large"])
    async def test_write_many_appends_the_chunks_in_order(self, storage: Storage, size: str) -> None:
        data = _blob(1000 if size == "small" else self.large_size, 9)
        step = 97 if size == "small" else 64 * 1024 + 3
        chunks = [data[i : i + step] for i in range(0, len(data), step)]
        third = len(chunks) // 3
        async with storage:
            async with storage.writer(self.KEY) as writer:  # batches and single chunks, mixed, as the engine may
                await writer.write_many(chunks[:third])
                await writer.write(chunks[third])
                await writer.write_many(chunks[third + 1 :])
                await writer.write_many([])
                await writer.commit()
            assert await _read(storage, self.KEY) == data

    @pytest.mark.parametrize("size", ["small", "large"])
    async def test_write_in_thread_appends_from_a_worker_thread(self, storage: Storage, size: str) -> None:
        data = _blob(1000 if size == "small" else self.large_size, 10)
        step = 97 if size == "small" else 256 * 1024 + 5
        async with storage:
            async with storage.writer(self.KEY) as writer:
                if not writer.writes_in_thread:
                    pytest.skip("this storage's writers do not write in threads: the engine uses write_many")

                def write_all() -> None:
                    # Through one buffer filled again after every call, as a blocking body's is: a writer that
                    # kept a chunk instead of writing (or copying) it would store the last one's bytes.
                    buffer = bytearray(step)
                    for start in range(0, len(data), step):
                        piece = data[start : start + step]
                        buffer[: len(piece)] = piece
                        writer.write_in_thread(memoryview(buffer)[: len(piece)])
                        buffer[:] = bytes(step)

                await asyncio.to_thread(write_all)
                assert await storage.stat(self.KEY) is None, "nothing is visible before commit"
                await writer.commit()
            assert await _read(storage, self.KEY) == data
            async with storage.writer(self.KEY + ".x") as writer:
                await asyncio.to_thread(writer.write_in_thread, data)
                await writer.abort()
            assert await _keys(storage) == {self.KEY: len(data)}, "an abort after write_in_thread leaves nothing"

    @pytest.mark.parametrize("size", ["small", "large"])
    async def test_nothing_is_visible_before_commit(self, storage: Storage, size: str) -> None:
        data = _blob(1000 if size == "small" else self.large_size, 2)
        async with storage, storage.writer(self.KEY) as writer:
            for start in range(0, len(data), 256 * 1024):
                await writer.write(data[start : start + 256 * 1024])
            assert await storage.stat(self.KEY) is None
            assert await _keys(storage) == {}, "no temporary object may be listed"
            await writer.commit()
        async with storage:
            assert await _keys(storage) == {self.KEY: len(data)}

    @pytest.mark.parametrize("size", ["small", "large"])
    async def test_abort_leaves_nothing(self, storage: Storage, size: str) -> None:
        data = _blob(1000 if size == "small" else self.large_size, 3)
        async with storage:
            async with storage.writer(self.KEY) as writer:
                await writer.write(data)
                await writer.abort()
                await writer.abort()  # safe to call twice
            assert await storage.stat(self.KEY) is None
            assert await _keys(storage) == {}

    @pytest.mark.parametrize("size", ["small", "large"])
    async def test_exception_in_the_writer_leaves_nothing(self, storage: Storage, size: str) -> None:
        data = _blob(1000 if size == "small" else self.large_size, 4)
        async with storage:
            with pytest.raises(_Boom):
                await _fail_inside_writer(storage, self.KEY, data)
            assert await storage.stat(self.KEY) is None
            assert await _keys(storage) == {}

    async def test_leaving_without_commit_leaves_nothing(self, storage: Storage) -> None:
        async with storage:
            async with storage.writer(self.KEY) as writer:
                await writer.write(b"never committed")
            assert await storage.stat(self.KEY) is None
            assert await _keys(storage) == {}

    async def test_overwrite_is_atomic(self, storage: Storage) -> None:
        old, new = _blob(5000, 5), _blob(self.large_size, 6)
        async with storage:
            await storage.put_bytes(self.KEY, old)
            async with storage.writer(self.KEY) as writer:
                for start in range(0, len(new), 256 * 1024):
                    await writer.write(new[start : start + 256 * 1024])
                assert await _read(storage, self.KEY) == old, "readers see the old object until commit"
                await writer.commit()
            assert await _read(storage, self.KEY) == new
            assert await _keys(storage) == {self.KEY: len(new)}

    async def test_abort_keeps_the_previous_object(self, storage: Storage) -> None:
        old = _blob(5000, 7)
        async with storage:
            await storage.put_bytes(self.KEY, old)
            async with storage.writer(self.KEY) as writer:
                await writer.write(_blob(self.large_size, 8))
                await writer.abort()
            assert await _read(storage, self.KEY) == old
            assert await _keys(storage) == {self.KEY: len(old)}

    @pytest.mark.parametrize("size", ["small", "large"])
    async def test_put_file(self, storage: Storage, tmp_path: Path, size: str) -> None:
        data = _blob(2000 if size == "small" else self.large_size, 9)
        source = tmp_path / "staged.zip"
        source.write_bytes(data)
        async with storage:
            await storage.put_file(self.KEY, source)
            assert await _read(storage, self.KEY) == data
            assert await _keys(storage) == {self.KEY: len(data)}
        assert source.read_bytes() == data, "put_file must leave its source as it was"

    async def test_list_under_a_prefix(self, storage: Storage) -> None:
        spot = [f"data/spot/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2024-01-0{d}.zip" for d in (1, 2, 3)]
        futures = ["data/futures/um/monthly/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2024-01.zip"]
        async with storage:
            for i, key in enumerate(spot + futures):
                await storage.put_bytes(key, _blob(100 + i, i))
            assert await _keys(storage, "data/spot/") == {k: 100 + i for i, k in enumerate(spot)}
            assert await _keys(storage, "data/futures/") == {futures[0]: 103}
            assert set(await _keys(storage, "data/")) == set(spot + futures)
            assert await _keys(storage, "data/option/") == {}

    async def test_non_ascii_key(self, storage: Storage) -> None:
        key = "data/futures/um/daily/klines/币安人生USDT/1h/币安人生USDT-1h-2024-01-01.zip"
        data = _blob(777, 10)
        async with storage:
            await _write(storage, key, data)
            assert await _read(storage, key) == data
            assert await _keys(storage) == {key: len(data)}

    async def test_delete(self, storage: Storage) -> None:
        async with storage:
            await storage.put_bytes(self.KEY, b"x")
            await storage.delete(self.KEY)
            assert await storage.stat(self.KEY) is None
            await storage.delete(self.KEY)  # deleting what is not there is fine

    async def test_read_of_missing_raises_storage_error(self, storage: Storage) -> None:
        async with storage:
            with pytest.raises(StorageError):
                await _read(storage, self.KEY)
            with pytest.raises(StorageError):
                await storage.read_bytes(self.KEY, max_size=MAX_SIDECAR_BYTES)

    async def test_read_bytes_refuses_more_than_max_size(self, storage: Storage) -> None:
        async with storage:
            await storage.put_bytes(self.KEY, b"y" * 100)
            with pytest.raises(StorageError):
                await storage.read_bytes(self.KEY, max_size=10)
