"""Retries under the issue's fault mix, and the time to stop against a dead host (docs/reliability.md).

    PYTHONPATH=. .venv/bin/python benchmarks/retries.py faults --seeds 1-8 --files 300
    PYTHONPATH=. .venv/bin/python benchmarks/retries.py dead

``faults``: a fresh mirror per seed, one download with the library's default retry policy through the fake archive
with 10% 5xx, 2% connection resets and 2% truncated bodies; prints the files that failed and the run's time.
``dead``: one download (default policy) against a closed port and against a server answering 503 to everything;
prints how long the run took to end, and what it said.
Not part of the test suite: the suite's tests use quicker policies (tests/reliability/test_faults.py).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import shutil
import socket
import tempfile
import time
from pathlib import Path

from binance_archive import Archive, Selection, plan
from binance_archive.testing import FakeArchiveServer, build_archive

TODAY = dt.date(2026, 11, 22)
MIX = {"error_rate": 0.10, "reset_rate": 0.02, "truncate_rate": 0.02}


def selection(files: int) -> Selection:
    days = max(1, files // 3)
    end = dt.date(2024, 1, 1) + dt.timedelta(days=days - 1)
    return Selection(
        markets="spot", data_types="klines", symbols=("BTCUSDT", "ETHUSDT", "BNBUSDT"), intervals="1h",
        start="2024-01-01", end=end.isoformat(), periods="daily",
    )  # fmt: skip


async def faults(seeds: list[int], files: int, root: Path) -> None:
    chosen = selection(files)
    upstream = root / "upstream"
    build_archive(upstream, plan(chosen, today=TODAY), max_rows=24)
    total_failed = 0
    for seed in seeds:
        mirror = root / f"mirror-{seed}"
        async with FakeArchiveServer(upstream, seed=seed, **MIX) as server:
            archive = Archive(mirror, base_url=server.base_url, listing_url=server.listing_url, entry_points=False)
            started = time.perf_counter()
            report = await archive.download(chosen, today=TODAY)
            took = time.perf_counter() - started
            injected = dict(server.stats.faults)
        total_failed += report.failed
        reasons = sorted({(o.error or "")[:60] for o in report.failures})
        print(
            f"seed {seed}: {report.total} files, {report.downloaded} downloaded, {report.failed} failed, "
            f"{took:.1f} s; injected {injected}" + (f"; {reasons}" if reasons else ""),
            flush=True,
        )
        shutil.rmtree(mirror)
    print(f"in all: {total_failed} failed over {len(seeds)} runs")


async def dead(files: int, root: Path) -> None:
    chosen = selection(files)
    upstream = root / "upstream"
    build_archive(upstream, plan(chosen, today=TODAY), max_rows=24)
    with socket.socket() as sock:  # a port nobody listens on: bound, never listening, so nobody takes it meanwhile
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        url = f"http://127.0.0.1:{port}"
        await one_dead("closed port", Archive(root / "m1", base_url=url, listing_url=url, entry_points=False), chosen)
    async with FakeArchiveServer(upstream, error_rate=1.0) as server:
        archive = Archive(root / "m2", base_url=server.base_url, listing_url=server.listing_url, entry_points=False)
        await one_dead("503 to everything", archive, chosen)


async def one_dead(name: str, archive: Archive, chosen: Selection) -> None:
    started = time.perf_counter()
    try:
        report = await archive.download(chosen, today=TODAY)
        said = f"{report.failed} failed; stopped: {getattr(report, 'stopped', None)}"
    except Exception as exc:
        said = f"raised {type(exc).__name__}: {exc}"
    print(f"{name}: ended after {time.perf_counter() - started:.1f} s; {said}", flush=True)


def seeds_of(text: str) -> list[int]:
    first, _, last = text.partition("-")
    return list(range(int(first), int(last or first) + 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("faults", "dead"))
    parser.add_argument("--seeds", default="1-8", help="seeds of the fault draws, e.g. 1-8")
    parser.add_argument("--files", type=int, default=300, help="files in the selection (3 symbols, daily)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        if args.what == "faults":
            asyncio.run(faults(seeds_of(args.seeds), args.files, Path(folder)))
        else:
            asyncio.run(dead(args.files, Path(folder)))


if __name__ == "__main__":
    main()
