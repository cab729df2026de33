"""Every built-in backend keeps the contract: one-line subclasses of the suites shipped for plugin authors."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from binance_archive.backends import Storage, Transport
from binance_archive.storages.local import LocalStorage
from binance_archive.storages.s3 import MIN_PART_SIZE, S3Storage
from binance_archive.testing import FakeArchiveServer
from binance_archive.testing.contracts import ContractArchive, StorageContract, TransportContract
from binance_archive.transports.http import HttpTransport
from binance_archive.transports.mirror import MirrorTransport
from binance_archive.transports.s5cmd import S5cmdTransport

from ..support.moto import MotoS3
from ..support.s3 import S3Server
from ..support.seaweedfs import SeaweedS3

# -- transports ------------------------------------------------------------------------------------------------


class TestHttpTransport(TransportContract):
    """The HTTP transport through its native client."""

    listing_page_size = 2

    @pytest.fixture
    async def transport(self, contract_archive: ContractArchive) -> AsyncIterator[Transport]:
        async with FakeArchiveServer(contract_archive.root, page_size=2) as server:
            yield HttpTransport(base_url=server.base_url, listing_url=server.listing_url, client="native")


class TestHttpTransportPyreqwest(TransportContract):
    """The HTTP transport through its pyreqwest client."""

    listing_page_size = 2

    @pytest.fixture
    async def transport(self, contract_archive: ContractArchive) -> AsyncIterator[Transport]:
        async with FakeArchiveServer(contract_archive.root, page_size=2) as server:
            yield HttpTransport(base_url=server.base_url, listing_url=server.listing_url, client="pyreqwest")


class TestHttpTransportBlockingGet(TransportContract):
    """The HTTP transport with every body fetched again on a blocking connection (``large_body_bytes=1``)."""

    listing_page_size = 2

    @pytest.fixture
    async def transport(self, contract_archive: ContractArchive) -> AsyncIterator[Transport]:
        async with FakeArchiveServer(contract_archive.root, page_size=2) as server:
            yield HttpTransport(
                base_url=server.base_url, listing_url=server.listing_url, large_body_bytes=1, refetch_within=60.0
            )


class TestMirrorTransport(TransportContract):
    listing_page_size = 2

    @pytest.fixture
    def transport(self, contract_archive: ContractArchive) -> Transport:
        return MirrorTransport(root=contract_archive.root, page_size=2)


class TestS5cmdTransport(TransportContract):
    """s5cmd against moto's S3 server (a mock), anonymously, as the real archive is read."""

    listing_page_size = 2

    @pytest.fixture(scope="class")
    @classmethod
    def server(cls, moto_server: MotoS3) -> S3Server:
        return moto_server

    @pytest.fixture(scope="class")
    @classmethod
    def bucket(cls, server: S3Server, contract_archive: ContractArchive) -> str:
        return server.bucket(public=True, objects=contract_archive.objects)

    @pytest.fixture
    def transport(self, server: S3Server, bucket: str, tmp_path: Path, s5cmd_binary: str) -> Transport:
        return S5cmdTransport(
            endpoint_url=server.url, bucket=bucket, region="us-east-1", page_size=2, staging_dir=tmp_path
        )


class TestS5cmdTransportOnSeaweedFS(TestS5cmdTransport):
    """The same against SeaweedFS, a real S3 server, which refuses unsigned requests but to its public buckets."""

    @pytest.fixture(scope="class")
    @classmethod
    def server(cls, seaweedfs_server: SeaweedS3) -> S3Server:
        return seaweedfs_server


class TestS5cmdTransportSignedOnSeaweedFS(TestS5cmdTransport):
    """s5cmd signing its requests (``sign_requests``, keys from the environment) to a private bucket of SeaweedFS."""

    @pytest.fixture(scope="class")
    @classmethod
    def bucket(cls, seaweedfs_server: SeaweedS3, contract_archive: ContractArchive) -> str:
        return seaweedfs_server.bucket(objects=contract_archive.objects)

    @pytest.fixture
    def transport(self, seaweedfs_server: SeaweedS3, bucket: str, tmp_path: Path, s5cmd_binary: str) -> Transport:
        return S5cmdTransport(
            endpoint_url=seaweedfs_server.url, bucket=bucket, region="us-east-1", page_size=2, staging_dir=tmp_path,
            sign_requests=True,
        )  # fmt: skip


class TestS5cmdTransportOnTheFakeArchive(TransportContract):
    """s5cmd against the fake archive's path-style S3 face, chosen through ``base_url`` as Archive passes it."""

    listing_page_size = 2

    @pytest.fixture
    async def transport(self, contract_archive: ContractArchive, s5cmd_binary: str) -> AsyncIterator[Transport]:
        async with FakeArchiveServer(contract_archive.root, page_size=3) as server:  # s5cmd pages over its pages
            yield S5cmdTransport(base_url=server.listing_url, region="ap-northeast-1", page_size=2)


# -- storages --------------------------------------------------------------------------------------------------


class TestLocalStorage(StorageContract):
    @pytest.fixture
    def storage(self, tmp_path: Path) -> Storage:
        return LocalStorage(tmp_path / "mirror")

    @pytest.mark.parametrize("short", [False, True])
    async def test_write_many_survives_many_chunks_and_short_writes(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, short: bool
    ) -> None:
        """More chunks than one writev(2) takes, and writev writing less than asked (as a signal can make it)."""
        import os

        from binance_archive.storages import local

        if short:
            real = os.writev

            def half(fd: int, buffers: list[bytes]) -> int:
                return real(fd, buffers[: max(1, len(buffers) // 2)])

            monkeypatch.setattr(local.os, "writev", half)
        data = os.urandom(3 * 1024 * 1024 + 5)
        chunks = [data[i : i + 1000] for i in range(0, len(data), 1000)]  # 3,146 chunks, six times IOV_MAX/2
        storage = LocalStorage(tmp_path / "mirror")
        async with storage, storage.writer(self.KEY) as writer:
            await writer.write(data[:0])
            await writer.write_many(chunks[:1100])  # spills past 1 MB here
            await writer.write_many(chunks[1100:1700])  # more than one writev takes
            for start in range(1700, len(chunks), 100):
                await writer.write_many(chunks[start : start + 100])
            await writer.write_many(chunks[:0])
            await writer.commit()
        assert (tmp_path / "mirror" / self.KEY).read_bytes() == data


class TestLocalStorageCommitsInThreads(StorageContract):
    """The local storage with every small file's commit on its writer threads (``slow_commit=0``), as where creating
    a file is slow; files created unnamed (``O_TMPFILE``) and linked into place."""

    @pytest.fixture
    def storage(self, tmp_path: Path) -> Storage:
        return LocalStorage(tmp_path / "mirror", slow_commit=0)


class TestLocalStorageCommitsInThreadsNamed(StorageContract):
    """The same with named temporary files renamed into place (where unnamed files cannot be made)."""

    @pytest.fixture
    def storage(self, tmp_path: Path) -> Storage:
        storage = LocalStorage(tmp_path / "mirror", slow_commit=0)
        storage.committer.unnamed = False
        return storage


class TestS3Storage(StorageContract):
    """The S3 storage against moto's S3 server (a mock)."""

    large_size = 2 * MIN_PART_SIZE + 12345  # three parts: a streamed multipart upload

    @pytest.fixture(scope="class")
    @classmethod
    def server(cls, moto_server: MotoS3) -> S3Server:
        return moto_server

    @pytest.fixture(scope="class")
    @classmethod
    def bucket(cls, server: S3Server) -> str:
        return server.bucket()

    @pytest.fixture
    def storage(self, server: S3Server, bucket: str) -> Storage:
        return S3Storage(f"s3://{bucket}/{uuid.uuid4().hex}", endpoint_url=server.url, part_size=MIN_PART_SIZE)


class TestS3StorageOnSeaweedFS(TestS3Storage):
    """The same against SeaweedFS, a real S3 server (signatures checked, objects on disk, multipart uploads)."""

    @pytest.fixture(scope="class")
    @classmethod
    def server(cls, seaweedfs_server: SeaweedS3) -> S3Server:
        return seaweedfs_server
