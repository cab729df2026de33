"""The S3 storage end to end against moto's S3 server and SeaweedFS (``s3_server``: each in turn): mirrors, resumes,
multipart, secrets kept secret. Credentials and anonymous access: test_s3_credentials.py."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from binance_archive import Archive, ArchiveFile
from binance_archive.errors import ConfigurationError, StorageError
from binance_archive.storages.s3 import MIN_PART_SIZE, S3Storage
from binance_archive.testing import FakeArchiveServer

from ..support.moto import MotoS3
from ..support.s3 import S3Server
from ._scenario import FAST_RETRY, FILES, SPOT, TODAY, UM, build_upstream

SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"


@pytest.fixture
def upstream(tmp_path: Path) -> Path:
    return build_upstream(tmp_path / "upstream")


def _expected(upstream: Path, prefix: str, files: list[ArchiveFile]) -> dict[str, int]:
    """The objects (key -> size) the bucket should hold under ``prefix`` for ``files``."""
    return {prefix + key: (upstream / key).stat().st_size for file in files for key in (file.key, file.checksum_key)}


async def test_mirror_over_http_into_s3_then_resume(tmp_path: Path, upstream: Path, s3_server: S3Server) -> None:
    bucket = s3_server.bucket()
    async with FakeArchiveServer(upstream) as server:

        def archive() -> Archive:
            return Archive(
                f"s3://{bucket}/binance",
                base_url=server.base_url,
                listing_url=server.listing_url,
                storage_options={"endpoint_url": s3_server.url},
                retry=FAST_RETRY,
                entry_points=False,
            )

        first = archive()
        assert isinstance(first.storage, S3Storage)
        report = await first.download(SPOT, today=TODAY)
        assert (report.downloaded, report.failed) == (6, 0)
        assert s3_server.keys(bucket) == _expected(upstream, "binance/", FILES[:6])
        fetched = server.stats.zip_requests
        resumed = await archive().download(SPOT, today=TODAY)
        assert (resumed.skipped, resumed.downloaded) == (6, 0)
        assert server.stats.zip_requests == fetched, "a resumed run fetches no zip"


async def test_mirror_transport_into_s3_uploads_files(tmp_path: Path, upstream: Path, s3_server: S3Server) -> None:
    bucket = s3_server.bucket()
    archive = Archive(
        f"s3://{bucket}",
        transport="mirror",
        base_url=str(upstream),
        storage_options={"endpoint_url": s3_server.url},
        entry_points=False,
    )
    report = await archive.download(UM, today=TODAY)
    assert report.downloaded == 2
    assert s3_server.keys(bucket) == _expected(upstream, "", FILES[6:])


async def test_large_objects_go_up_in_parts_and_aborts_leave_no_upload(s3_server: S3Server) -> None:
    bucket = s3_server.bucket()
    storage = S3Storage(f"s3://{bucket}/big", endpoint_url=s3_server.url, part_size=MIN_PART_SIZE)
    data = bytes(range(256)) * (3 * MIN_PART_SIZE // 256)
    async with storage:
        async with storage.writer("data/a.zip") as writer:
            for start in range(0, len(data), 1 << 20):
                await writer.write(data[start : start + (1 << 20)])
            assert s3_server.uploads(bucket) == ["big/data/a.zip"], "the multipart upload is under way"
            await writer.commit()
        etag = s3_server.client().head_object(Bucket=bucket, Key="big/data/a.zip")["ETag"]
        assert etag.strip('"').endswith("-3"), f"three parts, got ETag {etag}"
        assert s3_server.client().get_object(Bucket=bucket, Key="big/data/a.zip")["Body"].read() == data
        async with storage.writer("data/b.zip") as writer:
            await writer.write(data)
            await writer.abort()
        assert s3_server.uploads(bucket) == [], "an aborted write aborts its multipart upload"
        assert await storage.stat("data/b.zip") is None


async def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, moto_server: MotoS3) -> None:
    bucket = moto_server.bucket()
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.url)
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    storage = Archive(f"s3://{bucket}/p", entry_points=False).storage
    assert isinstance(storage, S3Storage)
    assert (storage.endpoint_url, storage.region, storage.allow_http) == (moto_server.url, "eu-west-3", True)
    async with storage:
        await storage.put_bytes("data/x", b"x")
    assert moto_server.keys(bucket) == {"p/data/x": 1}


async def test_credentials_never_show(
    monkeypatch: pytest.MonkeyPatch, moto_server: MotoS3, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    storage = S3Storage("s3://no-such-bucket/prefix", endpoint_url=moto_server.url, session_token=SECRET + "TOKEN")
    assert storage.location == "s3://no-such-bucket/prefix"
    assert SECRET not in repr(storage) and SECRET not in str(vars(storage))
    async with storage:
        with pytest.raises(StorageError) as caught:
            await storage.put_bytes("data/x.zip", b"x")
    assert "does not exist" in str(caught.value)
    assert SECRET not in str(caught.value)
    assert SECRET not in caplog.text


def test_bad_settings_are_refused_before_io(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match="s3://bucket/prefix"):
        S3Storage("s3://")
    with pytest.raises(ConfigurationError, match="part_size"):
        S3Storage("s3://bucket", part_size=1024)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(ConfigurationError, match="both"):
        S3Storage("s3://bucket", access_key_id="AKIA")


def test_missing_client_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "obstore", None)  # makes "import obstore" fail
    with pytest.raises(ConfigurationError, match=r"pip install 'binance-archive\[s3\]'"):
        Archive("s3://bucket/prefix", entry_points=False)
