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

- :mod:`.archive`: :class:`ContractArchive`, the small archive a transport serves, and :data:`CONTRACT_FILES`;
- :mod:`.transport`: :class:`TransportContract`;
- :mod:`.storage`: :class:`StorageContract`.
"""

from binance_archive.testing.contracts.archive import CONTRACT_FILES, ContractArchive, build_contract_archive
from binance_archive.testing.contracts.storage import StorageContract
from binance_archive.testing.contracts.transport import TransportContract

__all__ = ["CONTRACT_FILES", "ContractArchive", "StorageContract", "TransportContract", "build_contract_archive"]
