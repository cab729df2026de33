"""Crash consistency: the CLI killed with SIGKILL at random moments of a download never leaves a corrupt file.

Two lanes run side by side (each its own fake archive, upstream tree and mirror), cycling through four kinds of
run, each killed at a random (seeded) moment of its download (after a random number of its requests, plus a random
fraction of a request's time): a fresh download, a resume of the killed one, ``--force`` over a complete mirror,
and ``--refresh`` after Binance replaced some files. After every kill:

- ``verify`` finds no corrupt file (no zip under its final name that mismatches the sidecar beside it) and no
  sidecar without its zip; unverified zips (no sidecar yet) and orphan temporary files are allowed;
- every stored pair is the current upstream version, or (refresh) the version it replaces;
- a re-run (in process, on a copy of the killed mirror) completes it: every file stored, verified, equal to
  upstream, and no temporary file left (the re-run sweeps those of the killed process).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import random
import shutil
import signal
import sys
from pathlib import Path

import attrs
import pytest

from binance_archive import Archive, Selection
from binance_archive.core import ArchiveFile
from binance_archive.storages.local import LocalStorage
from binance_archive.testing import FakeArchiveServer, replace_file
from binance_archive.verification import ProblemKind

from .scenario import TODAY, build, planned
from .support import QUICK_RETRY, config_toml, end_cli, s5cmd_or_skip, temp_files

HOURLY = Selection(
    markets="spot", data_types="klines", symbols=("BTCUSDT", "ETHUSDT"), intervals="1h", start="2024-01-01",
    end="2024-02-29", periods="daily",
)  # fmt: skip
MINUTES = Selection(
    markets="spot", data_types="klines", symbols="BTCUSDT", intervals="1m", start="2024-03-01", end="2024-03-08",
    periods="daily",
)  # fmt: skip
SELECTIONS = (HOURLY, MINUTES)  # 120 files of ~2 KB and 8 of ~70 KB
MODES = ("fresh", "resume", "force", "refresh")
MIN_KILLS = 20  # the issue asks for at least 20 trials
MAX_TRIALS = 40  # bounded in time: a lane gives up after this many runs in all
RUN_BOUND = 60.0  # seconds a CLI run may take at most (a bound, not a measurement)


def cli_args(server: FakeArchiveServer, mirror: Path, mode: str, transport: str, upstream: Path) -> list[str]:
    """The command line a user types: the selections in a config file, the rest as options."""
    config = mirror.parent / "run.toml"
    config.write_text(config_toml(*SELECTIONS))
    args = [sys.executable, "-m", "binance_archive", "download", "--quiet", "--concurrency", "4"]
    args += ["--config", str(config), "--today", TODAY.isoformat(), "--to", str(mirror)]
    if transport == "s5cmd":  # s5cmd fetches the zips from the fake archive's S3 face, in its own processes
        args += ["--transport", "s5cmd", "--base-url", server.listing_url, "--transport-option", "region=us-east-1"]
    elif transport == "mirror":  # the upstream folder itself, as a shared copy of the archive
        args += ["--transport", "mirror", "--base-url", str(upstream)]
    else:
        args += ["--base-url", server.base_url, "--listing-url", server.listing_url]
    if transport.endswith("+threads"):  # every small file's commit on the storage's writer threads
        args += ["--storage-option", "slow_commit=0"]
    if mode == "force":
        args.append("--force")
    elif mode == "refresh":
        args.append("--refresh")
    return args


@attrs.define
class Lane:
    """One mirror being killed over and over, with its own upstream and fake archive."""

    name: str
    transport: str
    upstream: Path
    mirror: Path
    scratch: Path
    server: FakeArchiveServer
    files: list[ArchiveFile]
    rng: random.Random
    accepted: dict[str, set[str]] = attrs.Factory(dict)
    """key -> the SHA-256s a stored copy may have (the current upstream one, and during a refresh the old)."""
    full_run: int = 0
    """Requests a complete run makes (calibrated by one run, not killed)."""
    trials: int = 0
    kills: int = 0
    kinds: dict[str, int] = attrs.Factory(dict)

    def current(self, file: ArchiveFile) -> str:
        return hashlib.sha256((self.upstream / file.key).read_bytes()).hexdigest()

    def reset_accepted(self) -> None:
        self.accepted = {f.key: {self.current(f)} for f in self.files}

    def archive(self, location: Path) -> Archive:
        """The re-run a user makes: the same transport (an s5cmd run also sweeps a killed one's staging folder)."""
        if self.transport == "s5cmd":
            return Archive(
                location, transport="s5cmd", base_url=self.server.listing_url, retry=QUICK_RETRY,
                transport_options={"region": "us-east-1"}, entry_points=False,
            )  # fmt: skip
        if self.transport == "mirror":
            return Archive(location, transport="mirror", base_url=str(self.upstream), entry_points=False)
        return Archive(
            location, base_url=self.server.base_url, listing_url=self.server.listing_url, retry=QUICK_RETRY,
            entry_points=False,
        )  # fmt: skip

    async def complete(self, location: Path, *, refresh: bool) -> None:
        report = await self.archive(location).download(SELECTIONS, today=TODAY, refresh=refresh)
        assert report.ok, report.failures

    def stored_fraction(self) -> float:
        stored = sum(1 for f in self.files if (self.mirror / f.checksum_key).exists())
        return stored / len(self.files)


async def run_cli(lane: Lane, mode: str, kill_at: int | None) -> tuple[bool, int]:
    """Run the CLI; kill it once the server has seen ``kill_at`` of its requests, plus a random fraction of a
    request's time (None: let it finish). Counting requests rather than seconds keeps the kills inside the
    download however loaded the machine is.

    Returns whether it was killed while running, and how many requests it made.
    """
    before = lane.server.stats.requests
    sidecars_before = _sidecars(lane.mirror) if lane.transport == "mirror" else {}
    process = await asyncio.create_subprocess_exec(
        *cli_args(lane.server, lane.mirror, mode, lane.transport, lane.upstream),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + RUN_BOUND
    if kill_at is not None and lane.transport == "mirror":
        # The mirror transport sends no request to count: count the files it has finished (a sidecar written
        # or rewritten since it started) instead.
        while process.returncode is None:
            now = _sidecars(lane.mirror)
            if sum(1 for path, stamp in now.items() if sidecars_before.get(path) != stamp) >= kill_at:
                break
            assert loop.time() < deadline, "the CLI stored too few files"
            await asyncio.sleep(0.002)
        await asyncio.sleep(lane.rng.uniform(0, 0.004))
    elif kill_at is not None:
        while lane.server.stats.requests - before < kill_at and process.returncode is None:
            assert loop.time() < deadline, "the CLI made too few requests"
            await asyncio.sleep(0.001)
        await asyncio.sleep(lane.rng.uniform(0, 0.004))  # mid-request, mid-write, or between two files
    killed = await end_cli(process, kill=kill_at is not None, bound=RUN_BOUND)
    return killed, lane.server.stats.requests - before


def _sidecars(mirror: Path) -> dict[Path, int]:
    """Every stored sidecar, with the time it was last written."""
    found = {}
    for path in mirror.rglob("*.CHECKSUM"):
        with contextlib.suppress(FileNotFoundError):  # replaced or removed while the scan ran
            found[path] = path.stat().st_mtime_ns
    return found


async def check_after_kill(lane: Lane, mode: str) -> None:
    if not lane.mirror.exists():
        # Killed before it stored anything (while listing, say) in a fresh run, or in a resume of one: verify
        # rightly refuses a folder that does not exist, and there is nothing to check but the re-run below.
        assert mode in ("fresh", "resume"), f"{mode}: the killed run removed the mirror"
        lane.kinds["nothing stored"] = lane.kinds.get("nothing stored", 0) + 1
    else:
        await check_killed_mirror(lane, mode)
    # A re-run completes the killed mirror (on a copy, so that the next trial resumes the killed state).
    shutil.rmtree(lane.scratch, ignore_errors=True)
    if lane.mirror.exists():
        shutil.copytree(lane.mirror, lane.scratch, symlinks=True)
    await lane.complete(lane.scratch, refresh=mode == "refresh")
    final = await Archive(lane.scratch, entry_points=False).verify()
    assert final.ok and final.checked == len(lane.files), final.problems
    assert not temp_files(lane.scratch), "the re-run left the killed process's temporary files"
    for file in lane.files:
        assert (lane.scratch / file.key).read_bytes() == (lane.upstream / file.key).read_bytes()


async def check_killed_mirror(lane: Lane, mode: str) -> None:
    """What a kill left: nothing corrupt, no sidecar without its zip, only versions Binance published."""
    report = await Archive(lane.mirror, entry_points=False).verify()
    kinds = {p.kind for p in report.problems}
    assert ProblemKind.CORRUPT not in kinds, [p for p in report.problems if p.kind is ProblemKind.CORRUPT]
    # A sidecar is only ever written after its zip, and removed before its zip is replaced.
    assert ProblemKind.MISSING not in kinds, [p for p in report.problems if p.kind is ProblemKind.MISSING]
    for problem in report.problems:
        lane.kinds[problem.kind.value] = lane.kinds.get(problem.kind.value, 0) + 1
        if problem.kind is ProblemKind.ORPHAN:
            assert ".binance-archive-" in problem.key, problem
    for file in lane.files:
        zip_path, sidecar = lane.mirror / file.key, lane.mirror / file.checksum_key
        if sidecar.exists():
            digest = hashlib.sha256(zip_path.read_bytes()).hexdigest()
            assert digest in lane.accepted[file.key], f"{mode}: {file.key} is stored as a version never published"


async def run_lane(lane: Lane) -> None:
    # Calibrate: one complete run, not killed, to know how many requests a download makes.
    killed, lane.full_run = await run_cli(lane, "fresh", None)
    assert not killed
    if lane.transport == "mirror":
        lane.full_run = len(lane.files)  # its kills count stored files, not requests
    await lane.complete(lane.mirror, refresh=False)
    while lane.kills < MIN_KILLS // 2 + 2 and lane.trials < MAX_TRIALS // 2:
        mode = MODES[lane.trials % len(MODES)]
        lane.trials += 1
        if mode == "fresh":
            shutil.rmtree(lane.mirror, ignore_errors=True)
            expected = lane.full_run
        elif mode == "resume":
            expected = int(lane.full_run * (1 - lane.stored_fraction()))
        elif mode == "force":
            await lane.complete(lane.mirror, refresh=False)
            expected = lane.full_run
        else:
            await lane.complete(lane.mirror, refresh=False)
            # Binance re-uploads some files: the old and the new version are both acceptable mid-refresh.
            for file in lane.rng.sample(lane.files, 25):
                old = lane.current(file)
                replace_file(lane.upstream, file, seed=lane.rng.randrange(1, 10**6), max_rows=24)
                lane.accepted[file.key] = {old, lane.current(file)}
            # The changed files' sidecars and zips (and a few listings); the mirror transport: the files.
            expected = 25 if lane.transport == "mirror" else 2 * 25
        killed, _ = await run_cli(lane, mode, lane.rng.randint(1, max(1, int(0.95 * expected))))
        lane.kills += killed
        await check_after_kill(lane, mode)
        lane.reset_accepted()


@pytest.mark.parametrize("transport", ["http", "http+threads", "s5cmd", "mirror"])
async def test_sigkill_at_random_moments_never_leaves_a_corrupt_file(tmp_path: Path, transport: str) -> None:
    if transport == "s5cmd":
        s5cmd_or_skip()
    lanes: list[Lane] = []
    servers: list[FakeArchiveServer] = []
    try:
        for index in range(2):
            root = tmp_path / f"lane{index}"
            upstream = root / "upstream"
            build(upstream, HOURLY, max_rows=24)
            build(upstream, MINUTES, max_rows=None)
            files = planned(*SELECTIONS)
            # Latency spreads the run over time; 5xx and truncations keep retries and aborted writes in flight.
            server = FakeArchiveServer(upstream, latency=0.004, error_rate=0.05, truncate_rate=0.02, seed=index)
            await server.start()
            servers.append(server)
            seed = int(os.environ.get("RELIABILITY_CRASH_SEED", "10"))  # other seeds: other kill moments
            lane = Lane(f"lane{index}", transport, upstream, root / "mirror", root / "scratch", server, files,
                        random.Random(100 * seed + index))  # fmt: skip
            lane.reset_accepted()
            lanes.append(lane)
        await asyncio.gather(*(run_lane(lane) for lane in lanes))
    finally:
        for server in servers:
            await server.close()
    kills = sum(lane.kills for lane in lanes)
    trials = sum(lane.trials for lane in lanes)
    print(f"\nSIGKILL trials ({transport}): {trials} runs, {kills} killed mid-download; problems seen after kills: "
          f"{[lane.kinds for lane in lanes]}; a full run makes {[lane.full_run for lane in lanes]} requests "
          f"(the mirror transport: stores so many files)")  # fmt: skip
    assert kills >= MIN_KILLS, f"only {kills} of {trials} runs were killed before they finished"
    # The kills did land mid-write: somewhere a zip was left without its sidecar, or a temporary file.
    seen = {kind for lane in lanes for kind in lane.kinds}
    assert seen & {"unverified", "orphan"}, "no kill ever interrupted a file: the trials tested nothing"


class _Killed(BaseException):
    """The process dying at a chosen point (raised where a SIGKILL could land, and caught by nothing)."""


class CrashingStorage(LocalStorage):
    """A local storage whose process "dies" just before it stores the sidecar of one of ``crash_keys``."""

    def __init__(self, root: Path, crash_keys: set[str]) -> None:
        super().__init__(root)
        self.crash_keys = crash_keys

    async def put_bytes(self, key: str, data: bytes) -> None:
        if key in self.crash_keys:
            raise _Killed(key)
        await super().put_bytes(key, data)


@pytest.mark.parametrize("refresh", [False, True])
@pytest.mark.parametrize("damage", ["lost", "empty"])
async def test_a_sidecar_left_without_its_zip_is_never_paired_with_new_bytes(
    tmp_path: Path, damage: str, refresh: bool
) -> None:
    """A zip lost (or emptied) beside its sidecar, Binance re-uploads the file, and the re-run dies between
    storing the new zip and its sidecar: the old sidecar must not end up beside the new bytes."""
    upstream, mirror = tmp_path / "upstream", tmp_path / "mirror"
    files = build(upstream, HOURLY.with_(symbols="BTCUSDT", end="2024-01-05"))
    victim = files[2]
    async with FakeArchiveServer(upstream) as server:

        def archive(storage: LocalStorage) -> Archive:
            return Archive(storage, base_url=server.base_url, listing_url=server.listing_url, entry_points=False)

        report = await archive(LocalStorage(mirror)).download(HOURLY.with_(symbols="BTCUSDT", end="2024-01-05"),
                                                               today=TODAY)  # fmt: skip
        assert report.ok
        if damage == "lost":
            (mirror / victim.key).unlink()
        else:
            (mirror / victim.key).write_bytes(b"")
        replace_file(upstream, victim, max_rows=24)
        crashing = CrashingStorage(mirror, {victim.checksum_key})
        with pytest.raises(BaseException) as caught:  # noqa: PT011 - a _Killed, alone or in a group
            await archive(crashing).download(HOURLY.with_(symbols="BTCUSDT", end="2024-01-05"), today=TODAY,
                                             refresh=refresh)  # fmt: skip
        assert (
            caught.group_contains(_Killed)
            if isinstance(caught.value, BaseExceptionGroup)
            else isinstance(caught.value, _Killed)
        )
    assert (mirror / victim.key).read_bytes() == (upstream / victim.key).read_bytes()  # the new bytes, stored
    verified = await Archive(mirror, entry_points=False).verify()
    assert not [p for p in verified.problems if p.kind is ProblemKind.CORRUPT], verified.problems


WRITER = """
import asyncio, sys
from binance_archive.storages.local import LocalStorage

async def main():
    async with LocalStorage(sys.argv[1]).writer(sys.argv[2]) as writer:
        await writer.write(b"x" * (2 * 1024 * 1024))  # more than is buffered: it is in its temporary file now
        print("writing", flush=True)
        await asyncio.sleep(3600)

asyncio.run(main())
"""


async def test_the_next_write_sweeps_a_killed_process_temporary_files_and_no_one_else_s(tmp_path: Path) -> None:
    folder = "data/spot/daily/klines/BTCUSDT/1h"
    mirror = tmp_path / "mirror"
    (mirror / folder).mkdir(parents=True)
    foreign = mirror / folder / ".binance-archive-BTCUSDT-1h-2024-01-09.zip.0a1b2c3d.part"  # not ours to judge
    foreign.write_bytes(b"half")
    writers = []
    for day in ("01", "02"):
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", WRITER, str(mirror), f"{folder}/BTCUSDT-1h-2024-01-{day}.zip",
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert process.stdout is not None
        assert await asyncio.wait_for(process.stdout.readline(), RUN_BOUND) == b"writing\n"
        writers.append(process)
    killed, alive = writers
    try:
        killed.send_signal(signal.SIGKILL)
        await killed.wait()
        left = {p.name for p in temp_files(mirror)}
        assert len(left) == 3 and any("2024-01-01" in n for n in left) and any("2024-01-02" in n for n in left)
        # The next process that writes into the folder removes the dead process's file, and only that one.
        await LocalStorage(mirror).put_bytes(f"{folder}/BTCUSDT-1h-2024-01-03.zip", b"zip")
        remaining = {p.name for p in temp_files(mirror)}
        assert not any("2024-01-01" in n for n in remaining), "the killed process's temporary file is still there"
        assert any("2024-01-02" in n for n in remaining), "a live process's temporary file was removed"
        assert foreign.exists()
    finally:
        alive.kill()
        await alive.wait()
        for process in writers:
            if process.stdout is not None:
                await process.stdout.read()
