"""Re-uploaded files: ``--refresh`` re-downloads what Binance replaced, keeps the old checksum, touches nothing else.

The sidecar is the source of truth. The archive's listing shows each sidecar's ETag (the MD5 of its bytes, as
S3 gives for objects uploaded in one part) and size, so one listing request can vouch for a year of stored
sidecars that would otherwise cost one GET each; where the listing cannot vouch (no listing, another ETag,
another size), the sidecar itself is fetched and compared.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from binance_archive import Archive, Selection
from binance_archive.cli import main
from binance_archive.core import ArchiveFile, ListingPage, parse_checksum
from binance_archive.errors import TransportError
from binance_archive.testing import FakeArchiveServer, replace_file
from binance_archive.transports.http import HttpTransport

from ..support.moto import MotoS3
from .scenario import TODAY, build, planned
from .support import MATRIX, QUICK_RETRY, assert_mirror_trustworthy, backends, stored_keys

YEAR = Selection(
    markets="spot", data_types="klines", symbols="BTCUSDT", intervals="1h", start="2023-01-01", end="2023-12-31",
    periods="daily",
)  # fmt: skip
MIXED = Selection(
    markets="um",
    data_types="klines",
    symbols=("BTCUSDT", "ETHUSDT"),
    intervals="1d",
    start="2023-01-01",
    end="2024-03-10",
)  # fmt: skip  monthly and daily files, two years


class NoListingHttp(HttpTransport):
    """The HTTP transport without its listing: the refresh falls back to one sidecar GET per stored file."""

    name = "http-no-listing"

    def list(self, prefix: str, *, delimiter: str | None = "/") -> AsyncIterator[ListingPage]:
        raise TransportError("this transport cannot list")


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@asynccontextmanager
async def mirrored(
    tmp_path: Path, *selections: Selection, **knobs: Any
) -> AsyncIterator[tuple[Path, Path, FakeArchiveServer]]:
    upstream, mirror = tmp_path / "upstream", tmp_path / "mirror"
    build(upstream, *selections, max_rows=3)
    async with FakeArchiveServer(upstream, **knobs) as server:
        archive = Archive(mirror, base_url=server.base_url, listing_url=server.listing_url, entry_points=False)
        for selection in selections:
            assert (await archive.download(selection, today=TODAY)).ok
        server.stats.reset()
        yield upstream, mirror, server


def archive_for(server: FakeArchiveServer, mirror: Path, **kwargs: object) -> Archive:
    return Archive(mirror, base_url=server.base_url, listing_url=server.listing_url, retry=QUICK_RETRY,
                   entry_points=False, **kwargs)  # type: ignore[arg-type]  # fmt: skip


def replace_some(upstream: Path, files: list[ArchiveFile], count: int, seed: int) -> dict[str, tuple[str, str]]:
    """Binance re-uploads ``count`` files; returns key -> (old digest, new digest)."""
    changed = {}
    for file in random.Random(seed).sample(files, count):
        old = sha(upstream / file.key)
        changed[file.key] = (old, replace_file(upstream, file, max_rows=3, seed=seed))
    return changed


async def test_refresh_replaces_exactly_the_changed_files_and_keeps_their_old_checksums(tmp_path: Path) -> None:
    files = planned(MIXED)
    async with mirrored(tmp_path, MIXED) as (upstream, mirror, server):
        changed = replace_some(upstream, files, 7, seed=3)
        server.refresh()
        untouched = {f.key: (mirror / f.key).stat().st_mtime_ns for f in files if f.key not in changed}
        report = await archive_for(server, mirror).download(MIXED, today=TODAY, refresh=True)
        assert report.ok and report.downloaded == 7 and report.skipped == len(files) - 7
        by_key = {o.key: o for o in report.outcomes}
        assert set(by_key) == set(changed)
        for key, (old, new) in changed.items():
            assert by_key[key].previous_sha256 == old and by_key[key].sha256 == new
            assert sha(mirror / key) == new
        # Only the changed zips were fetched, and unchanged files were not rewritten.
        assert {k for k in server.stats.by_key if k.endswith(".zip")} == set(changed)
        assert {f.key: (mirror / f.key).stat().st_mtime_ns for f in files if f.key not in changed} == untouched
        # A second refresh finds nothing to do.
        server.stats.reset()
        again = await archive_for(server, mirror).download(MIXED, today=TODAY, refresh=True)
        assert again.downloaded == 0 and again.skipped == len(files) and server.stats.zip_requests == 0
    await assert_mirror_trustworthy(Archive(mirror, entry_points=False), upstream)


async def test_the_listing_vouches_for_unchanged_sidecars_with_one_request_a_year(tmp_path: Path) -> None:
    files = planned(YEAR)
    assert len(files) == 365
    async with mirrored(tmp_path, YEAR) as (upstream, mirror, server):
        changed = replace_some(upstream, files, 5, seed=8)
        server.refresh()
        report = await archive_for(server, mirror).download(YEAR, today=TODAY, refresh=True)
        assert report.ok and report.downloaded == 5 and report.skipped == 360
        listing_requests, sidecar_requests = server.stats.listing_requests, server.stats.checksum_requests
        # One listing page covers the year; only the 5 changed sidecars (and their zips) are fetched.
        assert listing_requests == 1
        assert sidecar_requests == 5 and server.stats.zip_requests == 5
        assert {o.key for o in report.outcomes} == set(changed)

        # The same refresh without a listing costs one sidecar GET per stored file.
        replace_some(upstream, files, 5, seed=9)
        server.stats.reset()
        fallback = Archive(
            mirror, transport=NoListingHttp(base_url=server.base_url, listing_url=server.listing_url),
            retry=QUICK_RETRY, entry_points=False,
        )  # fmt: skip
        report = await fallback.download(YEAR, today=TODAY, refresh=True)
        assert report.ok and report.downloaded == 5
        assert server.stats.listing_requests == 0 and server.stats.checksum_requests == 365


async def test_the_sidecar_stays_the_source_of_truth_when_the_listing_disagrees(tmp_path: Path) -> None:
    """A stored sidecar whose bytes differ from upstream only in form (no newline) is not re-downloaded, and
    a listing that cannot vouch (its ETag is not an MD5) costs a GET, never a wrong skip."""
    files = planned(YEAR.with_(end="2023-01-20"))
    async with mirrored(tmp_path, YEAR.with_(end="2023-01-20")) as (upstream, mirror, server):
        # Same digest, other bytes: the listing cannot vouch, the GET finds the digest unchanged: skipped.
        reformatted = files[0]
        sidecar = mirror / reformatted.checksum_key
        sidecar.write_bytes(sidecar.read_bytes().rstrip(b"\n") + b"\r\n")
        # A replaced file whose sidecar keeps its size: the ETag changes, so it is fetched.
        changed = replace_some(upstream, files[1:], 3, seed=5)
        server.refresh()
        report = await archive_for(server, mirror).download(YEAR.with_(end="2023-01-20"), today=TODAY, refresh=True)
        assert report.ok and {o.key for o in report.outcomes} == set(changed)
        asked = {k for k in server.stats.by_key if k.endswith(".CHECKSUM")}
        assert asked == {reformatted.checksum_key} | {k + ".CHECKSUM" for k in changed}
    await assert_mirror_trustworthy(Archive(mirror, entry_points=False))


async def test_refresh_survives_a_faulty_listing_and_faulty_sidecars(tmp_path: Path) -> None:
    files = planned(YEAR.with_(end="2023-03-31"))
    async with mirrored(tmp_path, YEAR.with_(end="2023-03-31")) as (upstream, mirror, server):
        changed = replace_some(upstream, files, 6, seed=2)
        server.refresh()
        server.faults.error_rate = 0.3
        server.faults.seed = 4
        report = await archive_for(server, mirror).download(YEAR.with_(end="2023-03-31"), today=TODAY, refresh=True)
        assert report.ok and {o.key for o in report.outcomes} == set(changed)
        assert server.stats.faults["error"] > 0
    await assert_mirror_trustworthy(Archive(mirror, entry_points=False), upstream)


async def test_refresh_of_a_file_removed_upstream_keeps_the_stored_copy(tmp_path: Path) -> None:
    files = planned(YEAR.with_(end="2023-01-10"))
    async with mirrored(tmp_path, YEAR.with_(end="2023-01-10")) as (_, mirror, server):
        gone = files[4]
        server.faults.missing_keys = {gone.key}
        report = await archive_for(server, mirror).download(YEAR.with_(end="2023-01-10"), today=TODAY, refresh=True)
    assert report.ok and report.missing == 1 and report.skipped == len(files) - 1
    assert (mirror / gone.key).exists() and (mirror / gone.checksum_key).exists()


@pytest.mark.parametrize(("transport", "storage"), MATRIX)
async def test_refresh_on_every_transport_and_storage(
    transport: str, storage: str, tmp_path: Path, moto_if_needed: MotoS3 | None
) -> None:
    selection = YEAR.with_(end="2023-01-25")
    upstream = tmp_path / "upstream"
    files = build(upstream, selection, max_rows=3)
    async with backends(transport, storage, upstream, tmp_path, moto_if_needed) as cell:
        assert (await cell.archive().download(selection, today=TODAY)).ok
        async with cell.archive() as archive:
            before = {k: v for k, v in (await stored_keys(archive.storage)).items()}
        changed = replace_some(upstream, files, 4, seed=6)
        if cell.server is not None:
            cell.server.refresh()
            cell.server.stats.reset()
        report = await cell.archive().download(selection, today=TODAY, refresh=True)
        assert report.ok and report.downloaded == 4 and report.skipped == len(files) - 4
        assert {o.key: o.previous_sha256 for o in report.outcomes} == {k: old for k, (old, _) in changed.items()}
        if cell.server is not None:
            assert {k for k in cell.server.stats.by_key if k.endswith(".zip")} == set(changed)
        stored = await assert_mirror_trustworthy(cell.archive(), upstream)
        assert set(stored) == set(before)


def test_the_cli_refresh_flag(tmp_path: Path) -> None:
    from .support import ServerThread

    upstream, mirror = tmp_path / "upstream", tmp_path / "mirror"
    files = build(upstream, YEAR.with_(end="2023-01-05"), max_rows=3)
    args = ["download", "--market", "spot", "--data-type", "klines", "--symbol", "BTCUSDT", "--interval", "1h",
            "--start", "2023-01-01", "--end", "2023-01-05", "--period", "daily", "--quiet"]  # fmt: skip
    with ServerThread(upstream) as server:
        args += ["--base-url", server.base_url, "--listing-url", server.listing_url, "--to", str(mirror)]
        assert main(args) == 0
        old = parse_checksum((mirror / files[2].checksum_key).read_bytes())
        new = replace_file(upstream, files[2], max_rows=3)
        assert main(args) == 0 and sha(mirror / files[2].key) == old  # without --refresh: left alone
        assert main([*args, "--refresh"]) == 0 and sha(mirror / files[2].key) == new
