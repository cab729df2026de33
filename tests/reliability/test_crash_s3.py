"""Crash consistency on S3: the CLI killed with SIGKILL while it mirrors into a bucket, of moto's S3 server (a mock)
and of SeaweedFS (a real one: objects on disk, signatures checked; fewer trials, to keep the suite's time).

The S3 counterpart of test_crash.py. The CLI (``download --to s3://... --storage-option ...``, credentials from
the environment, as a user runs it) mirrors the fake archive into the bucket, with a multipart part size of 5 MiB
(S3's minimum) and one file of 6.5 MiB among 16 small ones, so that a download goes through a multipart upload.
It is killed at random (seeded) moments: after a random number of its requests, or (every other trial) a random
moment after the server lists one of its multipart uploads begun and not completed, i.e. mid-multipart. Runs cycle
through a fresh download, a resume of the killed one (in place: it meets the killed process's leftovers), and
``--force`` over a complete mirror. After every kill:

- ``verify`` finds no corrupt file, no sidecar without its zip and no stray object; a zip without its sidecar
  ("unverified": killed between the two PUTs) is allowed, but every object under a final name, sidecar or
  not, is the complete upstream file: an S3 object appears whole or not at all;
- a re-run (in process) completes it: every planned file stored, verified and equal to upstream. After a fresh
  run it runs on a server-side copy of the killed mirror, so that the next trial resumes the killed state; after
  the others, in place, where the killed processes' pending uploads of the same keys are.

A killed process cannot abort its multipart upload: the server lists it afterwards. Such uploads are invisible to
listings, reads and ``verify``, and do not hinder a re-run (a new upload of the same key completes, the old one
stays pending); only a bucket lifecycle rule (AbortIncompleteMultipartUpload) reclaims them. The test counts
them, checks that they never surface, and aborts them at the end as that rule would.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sys
from pathlib import Path
from typing import Any

import attrs

from binance_archive import Archive, Selection
from binance_archive.core import CHECKSUM_SUFFIX, ArchiveFile
from binance_archive.storages.s3 import MIN_PART_SIZE, S3Storage
from binance_archive.testing import FakeArchiveServer, key_path, write_file
from binance_archive.verification import ProblemKind

from ..support.s3 import S3Server
from .scenario import TODAY, build, planned
from .support import QUICK_RETRY, config_toml, end_cli, s3_copy_prefix, s3_delete_prefix, s3_keys, s3_uploads

SMALL = Selection(
    markets="spot", data_types="klines", symbols="BTCUSDT", intervals="1h", start="2024-01-01", end="2024-01-16",
    periods="daily",
)  # fmt: skip
LARGE = Selection(
    markets="spot", data_types="klines", symbols="ETHUSDT", intervals="1m", start="2024-03-01", end="2024-03-01",
    periods="daily",
)  # fmt: skip
SELECTIONS = (LARGE, SMALL)  # the large files first, so that they are in flight from the start
LARGE_SIZE = MIN_PART_SIZE + 3 * 1024 * 1024 // 2  # two parts: 5 MiB and 1.5 MiB
MODES = ("fresh", "resume", "force")
MIN_KILLS = {"moto": 20, "seaweedfs": 10}  # the issue asks for at least 20 trials (on SeaweedFS, ~1.4 s each, 10 more)
MIN_MULTIPART_KILLS = {"moto": 4, "seaweedfs": 3}  # of which some must land mid-multipart
MAX_TRIALS = 2  # times MIN_KILLS: bounded in time, the lanes give up after this many runs in all
RUN_BOUND = 60.0  # seconds a CLI run may take at most (a bound, not a measurement)
LANES = 2


# What the CLI sees of AWS: fake keys, and nothing of the machine's (no profile, no metadata service).
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def build_upstream(root: Path, seed: int) -> list[ArchiveFile]:
    """Small real-format files, and LARGE's files as zips of incompressible bytes (several MiB each)."""
    build(root, SMALL, max_rows=24)
    rng = random.Random(seed)
    for file in planned(LARGE):
        write_file(root, file, member=rng.randbytes(LARGE_SIZE))
    return planned(*SELECTIONS)


@attrs.define
class Lane:
    """One mirror (a prefix of its own bucket) being killed over and over, with its own upstream and server."""

    name: str
    upstream: Path
    server: FakeArchiveServer
    bucket_server: S3Server
    client: Any  # boto3, to look at the bucket from outside
    bucket: str
    files: list[ArchiveFile]
    rng: random.Random
    full_run: int = 0
    """Requests a complete run makes (calibrated by one run, not killed)."""
    trials: int = 0
    kills: int = 0
    multipart_kills: int = 0
    """Kills after which the server listed an upload of the killed process (it died mid-multipart)."""
    kinds: dict[str, int] = attrs.Factory(dict)
    leftovers: set[str] = attrs.Factory(set)
    """Upload ids of the killed processes, pending in the bucket after the kill."""
    pending_at_end: int = 0

    @property
    def mirror(self) -> str:
        return f"s3://{self.bucket}/mirror"

    def archive(self, location: str) -> Archive:
        return Archive(
            location, base_url=self.server.base_url, listing_url=self.server.listing_url, retry=QUICK_RETRY,
            storage_options={**self.bucket_server.storage_options(), "part_size": MIN_PART_SIZE}, entry_points=False,
        )  # fmt: skip

    async def complete(self, location: str) -> None:
        report = await self.archive(location).download(SELECTIONS, today=TODAY)
        assert report.ok, report.failures

    async def s3(self, function: Any, *args: Any) -> Any:
        """A boto3 call, off the event loop (the fake archive serves the CLI from this loop)."""
        return await asyncio.to_thread(function, self.client, self.bucket, *args)

    async def stored_fraction(self) -> float:
        keys = set(await self.s3(s3_keys, "mirror/"))
        return sum(1 for f in self.files if f"mirror/{f.checksum_key}" in keys) / len(self.files)

    def cli_args(self, mode: str, config: Path) -> list[str]:
        args = [sys.executable, "-m", "binance_archive", "download", "--quiet", "--concurrency", "4"]
        args += ["--config", str(config), "--today", TODAY.isoformat()]
        args += ["--base-url", self.server.base_url, "--listing-url", self.server.listing_url, "--to", self.mirror]
        args += [
            "--storage-option",
            f"endpoint_url={self.bucket_server.url}",
            "--storage-option",
            f"part_size={MIN_PART_SIZE}",
        ]
        if mode == "force":
            args.append("--force")
        return args


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    # A process that aborts (SIGABRT) says where: Python's stacks, and glibc's message on stderr, not the tty.
    return {**env, **AWS_ENV, "PYTHONFAULTHANDLER": "1", "LIBC_FATAL_STDERR_": "1"}


async def run_cli(lane: Lane, mode: str, config: Path, kill_at: int | str | None) -> tuple[bool, int]:
    """Run the CLI and kill it (None: let it finish): after ``kill_at`` of its requests, or with "multipart" at a
    random moment after the server lists one of its uploads. Each plus a random delay. Counting requests rather than
    seconds keeps the kills inside the download however loaded the machine is.

    Returns whether it was killed while running, and how many requests it made.
    """
    before = lane.server.stats.requests
    pending = {u["UploadId"] for u in await lane.s3(s3_uploads, "mirror/")}
    process = await asyncio.create_subprocess_exec(
        *lane.cli_args(mode, config), env=cli_env(), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + RUN_BOUND
    if kill_at is not None:
        if kill_at == "multipart":
            while process.returncode is None:
                assert loop.time() < deadline, "the CLI never began a multipart upload"
                if {u["UploadId"] for u in await lane.s3(s3_uploads, "mirror/")} - pending:
                    break
                await asyncio.sleep(0.005)
            delay = lane.rng.uniform(0, 0.08)  # a 5 MiB part takes the server tens of milliseconds
        else:
            while lane.server.stats.requests - before < int(kill_at) and process.returncode is None:
                assert loop.time() < deadline, "the CLI made too few requests"
                await asyncio.sleep(0.001)
            delay = lane.rng.uniform(0, 0.004)  # mid-request, mid-write, or between two files
        await asyncio.sleep(delay)
    killed = await end_cli(process, kill=kill_at is not None, bound=RUN_BOUND)
    if killed:
        left = await settled_uploads(lane, "mirror/") - pending
        lane.multipart_kills += bool(left)
        lane.leftovers |= left
    return killed, lane.server.stats.requests - before


async def settled_uploads(lane: Lane, prefix: str, *, quiet: float = 0.2, bound: float = 3.0) -> set[str]:
    """The pending uploads once the server has answered what the killed process had already sent.

    A CreateMultipartUpload sent just before the SIGKILL is still created by the server after the process died; listed
    too early, it would later look like an upload of the re-run's. The listing is taken again until it has not
    changed for ``quiet`` seconds (at most ``bound`` seconds: a bound, not a measurement).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + bound
    uploads = {u["UploadId"] for u in await lane.s3(s3_uploads, prefix)}
    while loop.time() < deadline:
        await asyncio.sleep(quiet)
        again = {u["UploadId"] for u in await lane.s3(s3_uploads, prefix)}
        if again == uploads:
            break
        uploads = again
    return uploads


async def assert_objects_are_upstream(lane: Lane, prefix: str) -> set[str]:
    """Every object under ``prefix`` is a key of the archive with the upstream's bytes; returns the keys.

    A sidecar is compared with upstream's, and so is a zip stored without its sidecar; a zip beside its sidecar
    is the upstream zip when ``verify`` passes it (its SHA-256 is the one the sidecar names).
    """
    stored = {key[len(prefix) :] for key in await lane.s3(s3_keys, prefix)}

    async def check(key: str) -> None:
        if key.endswith(CHECKSUM_SUFFIX) or key + CHECKSUM_SUFFIX not in stored:
            upstream = key_path(lane.upstream, key)
            assert upstream.exists(), f"{prefix}{key} is not a key of the archive"
            body = await lane.s3(
                lambda client, bucket: client.get_object(Bucket=bucket, Key=prefix + key)["Body"].read()
            )
            assert body == upstream.read_bytes(), f"{prefix}{key} is not the upstream file"

    await asyncio.gather(*(check(key) for key in stored))
    return stored


async def check_after_kill(lane: Lane, mode: str) -> None:
    report = await lane.archive(lane.mirror).verify()
    for problem in report.problems:
        lane.kinds[problem.kind.value] = lane.kinds.get(problem.kind.value, 0) + 1
        # A sidecar is only ever written after its zip, and S3 has no temporary objects: only unverified zips.
        assert problem.kind is ProblemKind.UNVERIFIED, f"{mode}: {problem}"
    stored = await assert_objects_are_upstream(lane, "mirror/")
    for key in stored:
        if key.endswith(CHECKSUM_SUFFIX):
            assert key[: -len(CHECKSUM_SUFFIX)] in stored, f"{mode}: {key} without its zip"

    # A re-run completes the killed mirror. After a fresh run, on a copy (the next trial resumes the killed
    # state); otherwise in place, among the killed processes' pending uploads of the same keys.
    where = "mirror"
    if mode == "fresh":
        where = "scratch"
        await lane.s3(s3_delete_prefix, "scratch/")
        await lane.s3(s3_copy_prefix, "mirror/", "scratch/")
    await lane.complete(f"s3://{lane.bucket}/{where}")
    final = await lane.archive(f"s3://{lane.bucket}/{where}").verify()
    assert final.ok and final.checked == len(lane.files), final.problems
    stored = await assert_objects_are_upstream(lane, f"{where}/")
    assert stored == {k for f in lane.files for k in (f.key, f.checksum_key)}
    pending = {u["UploadId"] for u in await lane.s3(s3_uploads, f"{where}/")}
    assert pending <= lane.leftovers, "the re-run left a multipart upload of its own pending"


async def run_lane(lane: Lane, config: Path, kills: int, multipart_kills: int) -> None:
    # Calibrate: one complete run, not killed, to know how many requests a download makes.
    killed, lane.full_run = await run_cli(lane, "fresh", config, None)
    assert not killed
    kills, multipart_kills = -(-kills // LANES), -(-multipart_kills // LANES)  # this lane's share
    # A kill meant for a multipart upload lands after it ended now and then (the process had moved on): the lane
    # runs on, killing at multipart uploads only, until it has its share of both, within MAX_TRIALS.
    while (lane.kills < kills or lane.multipart_kills < multipart_kills) and lane.trials < MAX_TRIALS * kills:
        mode = MODES[lane.trials % len(MODES)]
        trigger = "multipart" if lane.trials % 2 or lane.kills >= kills else "requests"
        lane.trials += 1
        if mode == "fresh":
            await lane.s3(s3_delete_prefix, "mirror/")
            lane.leftovers.clear()  # aborted with the rest (no lifecycle rule here)
            expected = lane.full_run
        elif mode == "resume":
            expected = int(lane.full_run * (1 - await lane.stored_fraction()))
        else:
            expected = lane.full_run  # over the mirror the resume's re-run completed
        kill_at: int | str = trigger if trigger == "multipart" else lane.rng.randint(1, max(1, int(0.95 * expected)))
        killed, _ = await run_cli(lane, mode, config, kill_at)
        lane.kills += killed
        await check_after_kill(lane, mode)

    # The killed processes' uploads are still pending, and invisible: the mirror completes in place around them.
    await lane.complete(lane.mirror)
    report = await lane.archive(lane.mirror).verify()
    assert report.ok and report.checked == len(lane.files), report.problems
    pending = {u["UploadId"] for u in await lane.s3(s3_uploads, "mirror/")}
    # (A leftover may have gone since: a request the process had sent, its abort or completion, lands after it.)
    assert pending <= lane.leftovers, "a run that completed left an upload pending"
    lane.pending_at_end = len(pending)
    # What a lifecycle rule (AbortIncompleteMultipartUpload) does; the mirror does not notice.
    for upload in await lane.s3(s3_uploads, "mirror/"):
        await asyncio.to_thread(
            lane.client.abort_multipart_upload, Bucket=lane.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
        )
    assert (await lane.archive(lane.mirror).verify()).ok
    for prefix in ("mirror/", "scratch/"):  # the server keeps them for the rest of the session
        await lane.s3(s3_delete_prefix, prefix)


async def test_sigkill_mid_download_into_s3_never_leaves_a_partial_object(tmp_path: Path, s3_server: S3Server) -> None:
    lanes: list[Lane] = []
    servers: list[FakeArchiveServer] = []
    config = tmp_path / "run.toml"
    config.write_text(config_toml(*SELECTIONS))
    seed = int(os.environ.get("RELIABILITY_CRASH_SEED", "10"))  # other seeds: other kill moments
    client = s3_server.client()
    try:
        for index in range(LANES):
            upstream = tmp_path / f"lane{index}" / "upstream"
            files = build_upstream(upstream, seed=index)
            # Latency spreads the run over time; 5xx and truncations keep retries and aborted uploads in flight.
            server = FakeArchiveServer(upstream, latency=0.004, error_rate=0.05, truncate_rate=0.02, seed=index)
            await server.start()
            servers.append(server)
            rng = random.Random(100 * seed + index)
            lanes.append(Lane(f"lane{index}", upstream, server, s3_server, client, s3_server.bucket(), files, rng))
        await asyncio.gather(
            *(run_lane(lane, config, MIN_KILLS[s3_server.name], MIN_MULTIPART_KILLS[s3_server.name]) for lane in lanes)
        )
    finally:
        for server in servers:
            await server.close()
    kills = sum(lane.kills for lane in lanes)
    trials = sum(lane.trials for lane in lanes)
    multipart = sum(lane.multipart_kills for lane in lanes)
    print(f"\nS3 SIGKILL trials: {trials} runs, {kills} killed mid-download, {multipart} of them mid-multipart "
          f"(each left its upload pending; {sum(lane.pending_at_end for lane in lanes)} still pending at the end, "
          f"until aborted as a lifecycle rule would); problems seen after kills: {[lane.kinds for lane in lanes]}; "
          f"a full run makes {[lane.full_run for lane in lanes]} requests")  # fmt: skip
    assert kills >= MIN_KILLS[s3_server.name], f"only {kills} of {trials} runs were killed before they finished"
    assert multipart >= MIN_MULTIPART_KILLS[s3_server.name], f"only {multipart} kills landed mid-multipart"


async def test_a_cancelled_large_upload_leaves_no_pending_upload(tmp_path: Path, s3_server: S3Server) -> None:
    """Cancelled at moments spread over a multipart upload (streamed, or of a staged file), the upload is aborted
    on the server: nothing pending in the bucket, and under the final key nothing or the whole object.

    obstore drops a call whose awaiter is cancelled: before the storage shielded its calls, 32 of 50 cancelled
    streamed uploads and 48 of 50 cancelled uploads of a file stayed pending (moto, the same sweep).
    """
    client = s3_server.client()
    bucket = s3_server.bucket()
    data = random.Random(1).randbytes(2 * MIN_PART_SIZE + 1024)
    staged = tmp_path / "staged.zip"
    staged.write_bytes(data)
    storage = S3Storage(f"s3://{bucket}/cancel", **s3_server.storage_options(), part_size=MIN_PART_SIZE)

    async def stream(key: str) -> None:
        async with storage.writer(key) as writer:
            for start in range(0, len(data), 1 << 20):
                await writer.write(data[start : start + (1 << 20)])
            await writer.commit()

    began = 0
    async with storage:
        for index in range(24):
            key = f"data/{index}.zip"
            upload = stream(key) if index % 2 else storage.put_file(key, staged)
            task = asyncio.ensure_future(upload)
            await asyncio.sleep(0.006 * (index // 2))  # 0 to 66 ms: before, during and after the upload's parts
            began += bool(await asyncio.to_thread(s3_uploads, client, bucket, "cancel/"))
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            assert not await asyncio.to_thread(s3_uploads, client, bucket, "cancel/"), f"cancelled {index}: pending"
            stored = await storage.stat(key)
            assert stored is None or stored.size == len(data), f"cancelled {index}: a partial object"
    assert began >= 4, f"only {began} cancellations landed mid-upload: the test tested little"
