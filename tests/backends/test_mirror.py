"""The mirror transport end to end: a local copy of the archive mirrored again, by hard link where it can."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from binance_archive import Archive, RetryPolicy
from binance_archive.errors import ConfigurationError, FileMissingError, TransportError
from binance_archive.report import Outcome
from binance_archive.testing import key_path
from binance_archive.transports.mirror import MirrorTransport

from ..support.fanotify import fanotify_or_skip, stalled_reads
from ._scenario import CORRUPT, FAST_RETRY, FILES, MISSING, SPOT, TODAY, UM, assert_mirrored, build_upstream, damage
from ._scenario import outcomes as keys_with


@pytest.fixture
def upstream(tmp_path: Path) -> Path:
    return build_upstream(tmp_path / "upstream")


def _archive(mirror: Path, upstream: Path | str) -> Archive:
    return Archive(mirror, transport="mirror", base_url=str(upstream), retry=FAST_RETRY, entry_points=False)


async def test_download_hard_links_then_resume_skips(tmp_path: Path, upstream: Path) -> None:
    mirror = tmp_path / "mirror"
    report = await _archive(mirror, upstream).download(SPOT, today=TODAY)
    assert (report.downloaded, report.missing, report.failed) == (6, 0, 0)
    assert_mirrored(upstream, mirror, FILES[:6])
    for file in FILES[:6]:
        source, stored = key_path(upstream, file.key), key_path(mirror, file.key)
        assert os.stat(source).st_ino == os.stat(stored).st_ino, "same file system: the zip is hard-linked"
        assert os.stat(stored).st_nlink == 2
    resumed = await _archive(mirror, upstream).download(SPOT, today=TODAY)
    assert (resumed.skipped, resumed.downloaded) == (6, 0)


async def test_file_url_and_non_ascii_symbols(tmp_path: Path, upstream: Path) -> None:
    report = await _archive(tmp_path / "mirror", upstream.as_uri()).download(UM, today=TODAY)
    assert report.downloaded == 2
    assert_mirrored(upstream, tmp_path / "mirror", FILES[6:])


async def test_corrupt_file_fails_and_missing_date_is_missing(tmp_path: Path, upstream: Path) -> None:
    damage(upstream)
    corrupt_before = key_path(upstream, CORRUPT.key).read_bytes()
    mirror = tmp_path / "mirror"
    report = await _archive(mirror, upstream).download(SPOT, today=TODAY)
    assert (report.downloaded, report.missing, report.failed) == (4, 1, 1)
    assert keys_with(report, Outcome.MISSING) == {MISSING.key}
    assert keys_with(report, Outcome.FAILED) == {CORRUPT.key}
    assert not key_path(mirror, CORRUPT.key).exists()
    assert not key_path(mirror, CORRUPT.checksum_key).exists()
    assert key_path(upstream, CORRUPT.key).read_bytes() == corrupt_before, "the source is never touched"


async def test_discovery_through_the_listing(tmp_path: Path, upstream: Path) -> None:
    archive = _archive(tmp_path / "mirror", upstream)
    assert await archive.symbols("spot", "klines") == ["BTCUSDT"]
    assert await archive.symbols("um", "klines") == ["币安人生USDT"]
    listed = [obj.key async for obj in archive.list_files("data/spot/")]
    assert listed == sorted(k for f in FILES[:6] for k in (f.key, f.checksum_key))


async def test_listing_leaves_out_temporary_files_and_empty_folders(tmp_path: Path, upstream: Path) -> None:
    folder = key_path(upstream, FILES[0].key).parent
    (folder / ".binance-archive-BTCUSDT-1h-2024-01-09.zip.0a1b2c3d.part").write_bytes(b"half")
    (upstream / "data" / "spot" / "daily" / "klines" / "EMPTY" / "1h").mkdir(parents=True)
    prefix = folder.relative_to(upstream).as_posix() + "/"
    transport = MirrorTransport(root=upstream)
    async with transport:
        keys = [o.key async for page in transport.list(prefix) for o in page.objects]
        assert keys == sorted(k for f in FILES[:6] for k in (f.key, f.checksum_key))
        prefixes = [p async for page in transport.list("data/spot/daily/klines/") for p in page.prefixes]
        assert prefixes == ["data/spot/daily/klines/BTCUSDT/"], "an empty folder is no prefix (S3 has none)"
        with pytest.raises(FileMissingError):
            await transport.get_bytes(prefix + ".binance-archive-BTCUSDT-1h-2024-01-09.zip.0a1b2c3d.part", max_size=100)


async def test_keys_escaping_the_root_are_refused(upstream: Path) -> None:
    (upstream.parent / "secret.txt").write_text("no")
    transport = MirrorTransport(base_url=str(upstream))
    async with transport:
        for key in ("../secret.txt", "data/../../secret.txt", "/etc/passwd", "data//x"):
            with pytest.raises(TransportError, match="refusing") as caught:
                await transport.get_bytes(key, max_size=100)
            assert not isinstance(caught.value, FileMissingError)
        with pytest.raises(FileMissingError):
            await transport.get_bytes("data/spot", max_size=100)  # a folder is not an object


async def test_bad_locations_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="http transport"):
        MirrorTransport(base_url="https://data.binance.vision")
    with pytest.raises(ConfigurationError, match="needs a folder"):
        MirrorTransport()
    with pytest.raises(ConfigurationError, match="does not exist"):
        async with MirrorTransport(root=tmp_path / "nowhere"):
            pass


async def test_adopting_a_file_the_mirror_already_links_leaves_no_temporary_file(tmp_path: Path) -> None:
    """A mirror hard-linked to a shared copy, downloaded again (--force, a refresh): the new link and the stored
    file are the same inode, and rename(2) of one link over another of the same file does nothing and succeeds,
    so the temporary link used to stay behind, forever (found by the SIGKILL trials with the mirror transport)."""
    from binance_archive.storages.local import LocalStorage

    source = tmp_path / "shared" / "a.zip"
    source.parent.mkdir()
    source.write_bytes(b"zip bytes")
    storage = LocalStorage(tmp_path / "mirror")
    key = "data/spot/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2024-01-01.zip"
    async with storage:
        await storage.put_file(key, source)
        await storage.put_file(key, source)  # again: the same inode on both sides
    stored = storage.path_of(key)
    assert stored.read_bytes() == b"zip bytes" and stored.stat().st_ino == source.stat().st_ino
    assert list(storage.temporary_files()) == []
    assert sorted(p.name for p in stored.parent.iterdir()) == [stored.name]


@pytest.mark.parametrize("held", ["reads", "opens"])
async def test_a_mirror_on_a_stalled_file_system_fails_the_stalled_files_and_completes_the_rest(
    held: str, tmp_path: Path, upstream: Path
) -> None:
    """As on a network mount whose server went away: a zip's read (or open) and a sidecar's never return. Each
    call into the folder is given up after read_timeout (its thread left blocked in the kernel), and the engine's
    read of a zip below min_speed: the two files fail as retryable, the rest is mirrored, nothing waits on."""
    fanotify_or_skip()
    stalled_zip, stalled_sidecar = FILES[0], FILES[1]
    archive = Archive(
        tmp_path / "mirror", transport="mirror", base_url=str(upstream), entry_points=False,
        transport_options={"read_timeout": 0.3, "min_speed": 100_000},
        retry=RetryPolicy(attempts=2, backoff=0.01, max_backoff=0.01),
    )  # fmt: skip
    paths = (key_path(upstream, stalled_zip.key), key_path(upstream, stalled_sidecar.checksum_key))
    with stalled_reads(*paths, opens=held == "opens") as stalls:
        started = time.monotonic()
        async with asyncio.timeout(60):
            report = await archive.download([SPOT, UM], today=TODAY)
        took = time.monotonic() - started
        assert stalls[0] > 0, "nothing was held: the test did not stall anything"
    print(f"\nstalled {held}: {stalls[0]} held, the run ended after {took:.1f} s")
    failures = {o.key: o.error or "" for o in report.failures}
    assert set(failures) == {stalled_zip.key, stalled_sidecar.key}, failures
    assert "came too slowly" in failures[stalled_zip.key] and "stalled file system" in failures[stalled_zip.key]
    assert "did not answer within 0.3" in failures[stalled_sidecar.key], failures[stalled_sidecar.key]
    assert report.downloaded == len(FILES) - 2
    assert_mirrored(upstream, tmp_path / "mirror", FILES[2:])
    assert not key_path(tmp_path / "mirror", stalled_zip.key).exists()


def test_the_stall_guards_options_are_checked() -> None:
    transport = MirrorTransport(root="/x")
    assert (transport.read_timeout, transport.min_speed) == (30.0, 1024.0)
    with pytest.raises(ConfigurationError, match="read_timeout must be a positive number of seconds"):
        MirrorTransport(root="/x", read_timeout=0)
    with pytest.raises(ConfigurationError, match="min_speed must be a number of bytes per second"):
        MirrorTransport(root="/x", min_speed=-5)
