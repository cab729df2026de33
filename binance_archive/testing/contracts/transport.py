"""The conformance suite of :class:`~binance_archive.backends.Transport`: :class:`TransportContract`."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import pytest

from binance_archive.backends import Body, Transport
from binance_archive.core import ListedObject, parse_checksum
from binance_archive.core.checksum import MAX_SIDECAR_BYTES
from binance_archive.errors import BinanceArchiveError, FileMissingError, VerificationError
from binance_archive.testing.contracts.archive import ContractArchive, build_contract_archive

__all__ = ["TransportContract"]


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


async def _two_read_in_threads(
    transport: Transport,
    archive: ContractArchive,
    can: Callable[[Body], bool],
    skip: str,
    read: Callable[[Body], bytes],
) -> None:
    """Two files read by ``read`` in a worker thread give their exact bytes (skipped with ``skip`` unless ``can``)."""
    async with transport:
        for key in [f.key for f in archive.files[:2]]:
            async with transport.get(key) as body:
                if not can(body):
                    pytest.skip(skip)
                data = await asyncio.to_thread(read, body)
            assert data == archive.objects[key], key


def _copying_into(chunks: list[bytes]) -> Callable[[bytes | memoryview], None]:
    """An ``absorb`` for :meth:`~Body.read_in_thread` that keeps a copy of every chunk in ``chunks``."""

    def absorb(chunk: bytes | memoryview) -> None:
        chunks.append(bytes(chunk))

    return absorb


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
        def read(body: Body) -> bytes:
            return b"".join(bytes(c) for c in body.blocking_chunks())

        skip = "this transport's bodies are not blocking: the engine reads them with chunks()"
        await _two_read_in_threads(transport, contract_archive, lambda body: body.blocking, skip, read)

    async def test_a_body_read_in_a_worker_thread_gives_the_same_bytes(
        self, transport: Transport, contract_archive: ContractArchive
    ) -> None:
        """What the engine does with a large body that :attr:`~Body.reads_in_thread`: :meth:`~Body.read_in_thread`
        in a worker thread, each chunk absorbed (copied here) before the next is read."""

        def read(body: Body) -> bytes:
            chunks: list[bytes] = []
            body.read_in_thread(_copying_into(chunks))
            return b"".join(chunks)

        skip = "this transport's bodies are not read in threads: the engine reads chunks()"
        await _two_read_in_threads(transport, contract_archive, lambda body: body.reads_in_thread, skip, read)

    async def test_a_body_stopped_before_its_read_in_a_thread_delivers_nothing(
        self, transport: Transport, contract_archive: ContractArchive
    ) -> None:
        """:meth:`~Body.stop_reading` (a cancelled download) before the worker thread starts to read: the read
        ends at once, in an error, and hands over nothing."""
        key = contract_archive.files[0].key
        chunks: list[bytes] = []
        stopped: BaseException | None = None
        async with transport, transport.get(key) as body:
            if not body.reads_in_thread:
                pytest.skip("this transport's bodies are not read in threads: the engine reads chunks()")
            body.stop_reading()
            try:
                await asyncio.wait_for(asyncio.to_thread(body.read_in_thread, _copying_into(chunks)), 30)
            except (asyncio.CancelledError, BinanceArchiveError) as exc:
                stopped = exc
        assert stopped is not None, "the read went on after stop_reading()"
        assert chunks == []

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

    async def test_listing_is_authoritative_only_where_it_lists(self, transport: Transport) -> None:
        # The engine refuses a named symbol this listing lacks: a transport that cannot list must not say it can.
        assert isinstance(transport.listing_is_authoritative, bool)
        if transport.listing_is_authoritative:
            assert self.supports_listing, "listing_is_authoritative is true, but the transport cannot list"

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
