"""The conformance suite of :class:`~binance_archive.backends.Storage`: :class:`StorageContract`."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import ClassVar

import pytest

from binance_archive.backends import Storage, StoredObject
from binance_archive.core.checksum import MAX_SIDECAR_BYTES
from binance_archive.errors import StorageError

__all__ = ["StorageContract"]


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

    async def test_local_root_holds_the_objects_as_files(self, storage: Storage) -> None:
        """A storage that names a :attr:`~Storage.local_root` keeps every object there, as a file under its key (a
        transport that stages files on disk stages them on that file system, for :meth:`Storage.put_file`)."""
        key = "data/spot/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2024-01-02.zip"
        async with storage:
            await storage.put_bytes(key, b"local")
            root = storage.local_root
            if root is None:
                pytest.skip("this storage keeps no objects on the local file system (local_root is None)")
            assert (Path(root) / key).read_bytes() == b"local"

    async def test_check_writable_passes_on_a_fresh_storage_and_leaves_nothing(self, storage: Storage) -> None:
        """:meth:`Storage.check_writable` is asked at the start of every download: a storage that can be written
        must pass it (else nothing is ever fetched), and the check must leave no object behind."""
        async with storage:
            await storage.check_writable()
            await storage.check_writable()  # once per download: again and again
            assert await _keys(storage, "") == {}
            left = await asyncio.to_thread(lambda: list(storage.temporary_files()))
            await storage.put_bytes(self.KEY, b"after the check")
            assert await _read(storage, self.KEY) == b"after the check"
        assert left == [], "the check left a temporary object behind"

    async def test_temporary_files_are_none_after_clean_writes(self, storage: Storage) -> None:
        async with storage:
            await storage.put_bytes("data/a/one.zip", b"1")
            await _write(storage, "data/a/two.zip", _blob(1000, 2))
            left = await asyncio.to_thread(lambda: list(storage.temporary_files()))
        assert left == [], "only an interrupted write may leave a temporary file behind"

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
