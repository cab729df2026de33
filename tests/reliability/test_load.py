"""Load: a 100,000-file plan completes with bounded memory and leaks no connection, task or file descriptor.

The download runs in a subprocess (its own peak RSS, file descriptors and tasks, measured at the end of the
run); the fake archive runs here and counts the connections left open.

On two cores the engine and the fake archive together move ~500 tiny files a second, so downloading all
100,000 takes more than three minutes. The default run therefore plans 100,000 files of which 90,000 are
already stored (as a previous run left them: skipped without a request) and 10,000 are downloaded; the full
download of all 100,000 runs with ``RELIABILITY_FULL_LOAD=1`` (its results are in docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import struct
import sys
import tempfile
import textwrap
import time
import zlib
from pathlib import Path

import pytest

from binance_archive import Selection, plan
from binance_archive.core import format_checksum

from .support import backends, wait_until

TODAY = "2026-01-01"
SYMBOLS = 100  # x 1000 days = 100,000 daily files
FULL = os.environ.get("RELIABILITY_FULL_LOAD") == "1"


def selection(symbols: int = SYMBOLS) -> Selection:
    return Selection(
        markets="spot", data_types="klines", symbols=[f"S{i:03d}USDT" for i in range(symbols)], intervals="1d",
        start="2021-01-01", end="2023-09-27", periods="daily",
    )  # fmt: skip


def tiny_zip(name: str, row: bytes) -> bytes:
    """A real one-entry zip (stored, not deflated), written by hand: zipfile costs 50 times more per file."""
    crc, size, encoded = zlib.crc32(row), len(row), name.encode()
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0x21, crc, size, size, len(encoded), 0)
    central = struct.pack(
        "<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 0, 0, 0x21, crc, size, size, len(encoded), 0, 0, 0, 0, 0, 0
    )
    local += encoded + row
    central += encoded
    return local + central + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central), len(local), 0)


def write_trees(upstream: Path, mirror: Path, download_every: int) -> tuple[int, int]:
    """Every planned file: one in ``download_every`` goes upstream (to download), the rest straight into the mirror
    (stored, with its sidecar, as a previous run leaves it). Returns (to download, already stored)."""
    made: set[str] = set()
    counts = [0, 0]
    for index, file in enumerate(plan(selection(), today=__import__("datetime").date.fromisoformat(TODAY))):
        root = upstream if index % download_every == 0 else mirror
        folder = f"{root}/{file.folder}"
        if folder not in made:
            os.makedirs(folder, exist_ok=True)
            made.add(folder)
        data = tiny_zip(file.filename[:-4] + ".csv", b"%d,1,2,3,4,5\n" % index)
        with open(f"{root}/{file.key}", "wb") as handle:
            handle.write(data)
        with open(f"{root}/{file.checksum_key}", "wb") as handle:
            handle.write(format_checksum(hashlib.sha256(data).hexdigest(), file.filename).encode())
        counts[root is mirror] += 1
    return counts[0], counts[1]


CLIENT = textwrap.dedent(
    """
    import asyncio, gc, json, os, resource, sys, threading, datetime as dt
    from binance_archive import Archive, Selection
    from binance_archive.events import EventKind

    def rss():
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def peak_rss():
        # VmHWM, not getrusage's ru_maxrss: Linux keeps ru_maxrss across exec, so a child forked from a large
        # pytest process would report the parent's size.
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))

    async def main():
        base_url, mirror, symbols, concurrency, to_download = sys.argv[1:6]
        selection = Selection(markets="spot", data_types="klines", symbols=[f"S{i:03d}USDT" for i in range(int(symbols))],
                              intervals="1d", start="2021-01-01", end="2023-09-27", periods="daily")
        try:  # pyreqwest's Tokio runtime (and its descriptors) is made once per process and kept: made before
            from pyreqwest.client import ClientBuilder  # counting, so that only what the download leaks counts
            await ClientBuilder().build().close()
        except ImportError:
            pass
        fds_before = sorted(os.listdir("/proc/self/fd"))
        threads_before = threading.active_count()
        downloaded = 0
        samples = {}
        checkpoints = {int(to_download) // 5, int(to_download)}

        def progress(event):
            nonlocal downloaded
            if event.kind is EventKind.DONE:
                downloaded += 1
                if downloaded in checkpoints:
                    gc.collect()
                    samples[downloaded] = rss()

        archive = Archive(mirror, base_url=base_url, listing_url=base_url + "/b", concurrency=int(concurrency),
                          progress=progress, entry_points=False)
        report = await archive.download(selection, today=dt.date.fromisoformat("TODAY"), detail="problems")
        await asyncio.sleep(0.1)  # closed connections finish closing
        gc.collect()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        print(json.dumps({
            "downloaded": report.downloaded, "skipped": report.skipped, "failed": report.failed,
            "missing": report.missing, "outcomes_kept": len(report.outcomes), "seconds": report.duration,
            "fds_before": fds_before, "fds_after": sorted(os.listdir("/proc/self/fd")),
            "tasks_left": [repr(t) for t in others], "threads": [threads_before, threading.active_count()],
            "rss_samples": samples, "peak_rss": peak_rss(),
            "ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        }), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)  # hold on while connections are counted

    asyncio.run(main())
    """
).replace("TODAY", TODAY)


async def run_load(tmp_path: Path, download_every: int) -> None:
    # 200,000 small files: in memory (tmpfs) where there is one, for speed, and removed at the end.
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        tmp_path = Path(tempfile.mkdtemp(prefix="binance-archive-load-", dir=shm))
    upstream, mirror = tmp_path / "upstream", tmp_path / "mirror"
    started = time.perf_counter()
    try:
        to_download, stored = await asyncio.to_thread(write_trees, upstream, mirror, download_every)
        print(f"\ntrees written in {time.perf_counter() - started:.1f} s")
        assert to_download + stored == 100_000
        async with backends("http", "local", upstream, tmp_path) as cell:
            assert cell.server is not None
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-c", CLIENT, cell.server.base_url, str(mirror), str(SYMBOLS), "128", str(to_download),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            assert process.stdout is not None and process.stdin is not None
            line = await asyncio.wait_for(process.stdout.readline(), 900)
            if not line:
                pytest.fail((await process.stderr.read()).decode() if process.stderr else "the client died")
            result = json.loads(line)
            # While the client still lives (its archive closed): the server must see no connection left.
            stats = cell.server.stats
            assert await wait_until(lambda: stats.connections == 0, 10), f"{stats.connections} connections left"
            process.stdin.write(b"\n")
            await process.stdin.drain()
            assert await asyncio.wait_for(process.wait(), 30) == 0
        print(f"\nload: {result['downloaded']} downloaded + {result['skipped']} skipped in {result['seconds']:.1f} s; "
              f"peak RSS {result['peak_rss'] / 1e6:.0f} MB; RSS samples {result['rss_samples']}; "
              f"most connections at once {stats.max_connections}")  # fmt: skip
        assert result["downloaded"] == to_download and result["skipped"] == stored
        assert result["failed"] == result["missing"] == 0 and result["outcomes_kept"] == 0
        assert result["fds_after"] == result["fds_before"], "file descriptors leaked"
        assert result["tasks_left"] == [], result["tasks_left"]
        # aiohttp caps connections; pyreqwest (the default client) caps requests in flight, and its pool (hyper's)
        # keeps a connection it finished making for a request that meanwhile got one come free: the server then
        # counts one or two over the limit (seen: 254 to 257 of 256 in five runs).
        assert stats.max_connections <= 2 * 128 + 4
        # Bounded memory: a flat line once the run is under way (a leak of 1 KB a file would add 12+ MB here),
        # and a peak far below what 100,000 files' state would take.
        samples = {int(k): v for k, v in result["rss_samples"].items()}
        early, late = samples[to_download // 5], samples[to_download]
        assert late - early < 12 * 1024 * 1024, f"RSS grew {(late - early) / 1e6:.1f} MB during the run"
        assert result["peak_rss"] < 160 * 1024 * 1024
    finally:
        started = time.perf_counter()
        await asyncio.to_thread(shutil.rmtree, tmp_path, True)
        print(f"trees removed in {time.perf_counter() - started:.1f} s")


async def test_a_100k_file_plan_runs_in_bounded_memory_without_leaks(tmp_path: Path) -> None:
    """100,000 planned: 10,000 downloaded over HTTP, 90,000 already stored (skipped without a request)."""
    await run_load(tmp_path, download_every=10)


@pytest.mark.slow
@pytest.mark.skipif(not FULL, reason="downloads 100,000 files (over 3 minutes on 2 cores); RELIABILITY_FULL_LOAD=1")
async def test_a_100k_file_download(tmp_path: Path) -> None:
    await run_load(tmp_path, download_every=1)
