"""The fault matrix: every transport and storage through the faults of a real network and a real archive.

A run through 10% 5xx, 2% resets, 2% truncated bodies, 1% corrupted bodies and 429s with Retry-After must
end with every planned file either stored and verified or reported as failed with its reason; no file under
its final name may be unverified; a second run completes the rest and fetches nothing already done. With the
default retry policy (10 tries, then a final pass), one run through the issue's mix completes on its own.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from binance_archive import RetryPolicy
from binance_archive.core import ArchiveFile
from binance_archive.report import Outcome, Report
from binance_archive.testing import Faults

from ..support.moto import MotoS3
from .scenario import MATRIX_SELECTION, TODAY, build
from .support import MATRIX, assert_mirror_trustworthy, backends, temp_files

# What a file's failure may say, by fault: the report must carry a reason a person can act on.
REASONS = (
    "HTTP 5",  # 500, 503
    "HTTP 429",
    "broke off",  # reset or truncated body
    "truncated",
    "connection failed",
    "does not match the sidecar",
    "sidecar",
    "timed out",
    "cannot be verified",
    "CHECKSUM exists",
    "s3://",  # s5cmd names the object it could not fetch
)
NETWORK_FAULTS = {
    "error_rate": 0.10,
    "reset_rate": 0.02,
    "truncate_rate": 0.02,
    "corrupt_rate": 0.01,
    "rate_429": 0.05,
    "retry_after": 1,
}
# Few tries in the first run, and no final pass, so that some files do fail and the report's reasons can be checked.
FIRST_RUN = RetryPolicy(
    attempts=3, backoff=0.005, max_backoff=0.02, max_retry_after=0.05, verify_attempts=2, final_pass=False
)
# The issue's mix: 10% 5xx, 2% connection resets, 2% truncated bodies.
ISSUE_MIX = {"error_rate": 0.10, "reset_rate": 0.02, "truncate_rate": 0.02}
# The default policy (10 tries, a final pass, the dead-host rule) with its waits shortened for the suite's sake.
DEFAULT_QUICKLY = RetryPolicy(backoff=0.005, max_backoff=0.05, max_retry_after=0.05)


def damage_upstream(upstream: Path, files: list[ArchiveFile], seed: int) -> dict[str, str]:
    """On-disk faults for the mirror transport (it has no network): flipped bytes, lost sidecars, lost zips.

    Returns the damaged keys and what was done to them.
    """
    rng = random.Random(seed)
    victims = rng.sample(files, 12)
    damage: dict[str, str] = {}
    for file in victims[:6]:
        path = upstream / file.key
        data = bytearray(path.read_bytes())
        data[rng.randrange(len(data))] ^= 0xFF
        path.write_bytes(bytes(data))
        damage[file.key] = "corrupt"
    for file in victims[6:9]:
        (upstream / file.checksum_key).unlink()
        damage[file.key] = "no sidecar"
    for file in victims[9:]:
        (upstream / file.key).unlink()
        damage[file.key] = "no zip"
    return damage


def damage_summary(damage: dict[str, str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for what in damage.values():
        counts[what] = counts.get(what, 0) + 1
    return counts


def check_first_run(report: Report, files: list[ArchiveFile]) -> tuple[set[str], set[str]]:
    """Every planned file has exactly one outcome: downloaded, or failed with a reason."""
    outcomes = {o.key: o for o in report.outcomes}
    assert set(outcomes) == {f.key for f in files}
    assert report.total == len(files) and report.skipped == 0
    done = {k for k, o in outcomes.items() if o.outcome is Outcome.DOWNLOADED}
    failed = {k for k, o in outcomes.items() if o.outcome is Outcome.FAILED}
    assert done | failed == set(outcomes), "an outcome other than downloaded or failed"
    for key in failed:
        error = outcomes[key].error or ""
        assert any(reason in error for reason in REASONS), f"{key} failed without a usable reason: {error!r}"
    for key in done:
        assert outcomes[key].sha256 is not None
    return done, failed


@pytest.mark.parametrize(("transport", "storage"), MATRIX)
async def test_a_faulty_run_stores_only_verified_files_and_a_second_run_completes_it(
    transport: str, storage: str, tmp_path: Path, moto_if_needed: MotoS3 | None
) -> None:
    # moto's S3 server takes ~5 ms a request: the S3 cells mirror one of the three symbols (50 files).
    selection = MATRIX_SELECTION if storage == "local" else MATRIX_SELECTION.with_(symbols="ETHUSDT")
    upstream = tmp_path / "upstream"
    files = build(upstream, selection, max_rows=24)
    damage: dict[str, str] = {}
    if transport == "mirror":
        pristine = tmp_path / "pristine"
        build(pristine, selection, max_rows=24)
        damage = damage_upstream(upstream, files, seed=int(os.environ.get("RELIABILITY_FAULT_SEED", "11")))
    faults = NETWORK_FAULTS if transport != "mirror" else {}
    # A fixed seed (the fault draws are reproducible); other seeds for longer campaigns, see docs/reliability.md.
    seed = int(os.environ.get("RELIABILITY_FAULT_SEED", "3"))
    async with backends(transport, storage, upstream, tmp_path, moto_if_needed, seed=seed, **faults) as cell:
        # s5cmd would retry on its own and hide the failures: here the engine does all the retrying.
        options = {"retry_count": 0} if transport == "s5cmd" else {}
        # (s5cmd runs a process per batch of files in flight: larger batches, fewer processes.)
        concurrency = 64 if transport == "s5cmd" else 16
        first = await cell.archive(retry=FIRST_RUN, concurrency=concurrency, transport_options=options).download(
            selection, today=TODAY
        )
        done, failed = check_first_run(first, files)
        stored = await assert_mirror_trustworthy(cell.archive(), upstream)
        # What was reported downloaded is exactly what is stored; nothing of a failed file is.
        assert {k for k in stored if k.endswith(".zip")} == done
        if cell.server is not None:
            injected = cell.server.stats.faults
            if "RELIABILITY_FAULT_SEED" not in os.environ:  # the default seed is chosen to fire every knob
                assert {"error", "429", "reset", "truncate", "corrupt"} <= set(injected), injected
                # ... and to fail files whatever the timing. (A file fails by the draws of its own requests, but
                # a sidecar request cancelled before it reached the server, its zip having failed first, shifts
                # that sidecar's later draws: with seed 3 two S3-cell failures depend on timing, two never do.)
                # With 50 files (the S3 cells) about one seed in seven fails none: no failure is then no bug.
                assert failed, "the first run was meant to fail some files (3 tries against 10% 5xx and more)"
        else:
            for key, what in damage.items():
                assert key in failed, f"{key} ({what}) was not reported failed"
            assert failed == set(damage)
            # The damage is repaired upstream (Binance fixes its files), for the second run.
            for key in damage:
                for suffix in ("", ".CHECKSUM"):
                    (upstream / (key + suffix)).write_bytes((pristine / (key + suffix)).read_bytes())

        injected_text = dict(cell.server.stats.faults) if cell.server is not None else damage_summary(damage)
        # The second run: the network is healthy again.
        if cell.server is not None:
            cell.server.faults = Faults()
            cell.server.stats.reset()
        second = await cell.archive(concurrency=16).download(selection, today=TODAY)
        assert second.ok, second.failures
        assert second.downloaded == len(failed) and second.skipped == len(done)
        assert {o.key for o in second.outcomes} == failed
        if cell.server is not None:
            # Nothing already done was asked for again, not even its sidecar.
            asked = {k for k, n in cell.server.stats.by_key.items() if n}
            assert not asked & done, sorted(asked & done)[:5]
            assert {k for k in asked if k.endswith(".zip")} == failed
        stored = await assert_mirror_trustworthy(cell.archive(), upstream)
        assert {k for k in stored if k.endswith(".zip")} == {f.key for f in files}
    reasons = sorted({next((r for r in REASONS if r in (o.error or "")), "other") for o in first.failures})
    print(f"\nfault cell {transport}/{storage} seed {seed}: {len(files)} files; first run {len(done)} stored, "
          f"{len(failed)} failed; injected {injected_text}; second run fetched {second.downloaded}; "
          f"reasons {reasons}")  # fmt: skip
    if storage == "local":
        assert not temp_files(tmp_path / "mirror")


@pytest.mark.parametrize("transport", ["http", "http-pyreqwest", "s5cmd"])
async def test_faults_that_never_clear_end_in_failures_with_their_reasons(transport: str, tmp_path: Path) -> None:
    """Corrupt on every try, a lost sidecar, a lost zip beside its sidecar: failed, named, nothing stored."""
    selection = MATRIX_SELECTION.with_(symbols="BTCUSDT", end="2024-01-06")
    upstream = tmp_path / "upstream"
    files = build(upstream, selection)
    corrupt, no_sidecar, no_zip = files[0], files[1], files[2]
    async with backends(transport, "local", upstream, tmp_path) as cell:
        assert cell.server is not None
        cell.server.faults.corrupt_keys = {corrupt.key}
        cell.server.faults.missing_keys = {no_sidecar.checksum_key, no_zip.key + "#"}
        (upstream / no_zip.key).unlink()
        report = await cell.archive(retry=RetryPolicy(attempts=3, backoff=0.001, verify_attempts=2)).download(
            selection, today=TODAY
        )
    failures = {o.key: o.error or "" for o in report.failures}
    assert set(failures) == {corrupt.key, no_sidecar.key, no_zip.key}, failures
    assert "does not match the sidecar" in failures[corrupt.key]
    assert "cannot be verified" in failures[no_sidecar.key] or "CHECKSUM" in failures[no_sidecar.key]
    assert "CHECKSUM exists" in failures[no_zip.key] or "missing" in failures[no_zip.key]
    assert report.downloaded == len(files) - 3
    mirror = tmp_path / "mirror"
    for file in (corrupt, no_sidecar, no_zip):
        assert not (mirror / file.key).exists() and not (mirror / file.checksum_key).exists()
    assert not temp_files(mirror)


async def test_discovery_reads_the_listing_through_5xx_and_resets(tmp_path: Path) -> None:
    """No symbols and no start date: the plan comes from the listing, whose pages fail like the files do."""
    selection = MATRIX_SELECTION.with_(symbols=(), start=None, end="2024-01-10")
    upstream = tmp_path / "upstream"
    files = build(upstream, MATRIX_SELECTION.with_(end="2024-01-10"))
    async with backends("http", "local", upstream, tmp_path, error_rate=0.3, seed=1) as cell:
        assert cell.server is not None
        cell.server.page_size = 2  # many listing pages, each of which may fail
        report = await cell.archive().download(selection, today=TODAY)
        assert cell.server.stats.faults["error"] > 0 and cell.server.stats.listing_requests > 10
    assert report.ok and report.downloaded == len(files) == 30


@pytest.mark.parametrize("transport", ["http", "http-pyreqwest", "s5cmd"])
async def test_one_run_completes_under_the_issue_s_fault_mix(transport: str, tmp_path: Path) -> None:
    """With 5 tries and no final pass, about one run of 300 files in four ended with a file "gave up after 5 tries:
    HTTP 503" (benchmarks/retries.py; docs/reliability.md). Each transport with its own defaults (s5cmd retries
    on its own too), the engine's retry policy the default one but for shorter waits."""
    selection = MATRIX_SELECTION.with_(end="2024-04-09")  # 3 symbols x 100 days
    upstream = tmp_path / "upstream"
    files = build(upstream, selection, max_rows=24)
    # Seed 13: the draws with which 5 tries and no final pass failed a file in each of the three cells.
    seed = int(os.environ.get("RELIABILITY_FAULT_SEED", "13"))
    async with backends(transport, "local", upstream, tmp_path, seed=seed, **ISSUE_MIX) as cell:
        report = await cell.archive(retry=DEFAULT_QUICKLY).download(selection, today=TODAY)
        assert cell.server is not None
        injected = dict(cell.server.stats.faults)
    assert {"error", "reset", "truncate"} <= set(injected), injected
    assert report.ok and report.downloaded == len(files) == 300, report.failures
    assert len(report.outcomes) == len(files), "one outcome a file, however many rounds it took"
    stored = await assert_mirror_trustworthy(cell.archive(), upstream)
    assert {k for k in stored if k.endswith(".zip")} == {f.key for f in files}
    print(f"\nissue mix {transport} seed {seed}: {len(files)} files, injected {injected}, all downloaded")
