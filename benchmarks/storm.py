"""A 429 storm on loopback: the files in flight found by measuring against a fixed 256 (issue #21's target: fewer
requests refused than with a fixed concurrency of 256, and the run completes).

    PYTHONPATH=. .venv/bin/python benchmarks/storm.py [--files 1000] [--runs 5] [--out benchmarks/results/storm.json]

The fake archive (``binance_archive.testing.FakeArchiveServer``, in a thread of this process so that its counts
can be read) serves small daily files with a latency per request, in two storms:

- ``shed``: a server shedding load: it takes ``--max-in-flight`` requests at once (128: 64 files, a zip and its
  sidecar each) and answers 429 with ``Retry-After: 1`` to any beyond, after the same latency;
- ``random``: 10% of requests answered 429 (``Retry-After: 1``) whatever the load, drawn per key and try: the same
  requests are refused however many are sent at once, so backing off cannot lower the count; what it costs is
  the question.

Each contender is ``benchmarks/worker.py archive`` (a process of its own, the library's default retry policy and
event loop, a fresh folder under /dev/shm): ``adaptive`` (the default: from 80 up to 256, found by measuring) and
``fixed-256`` (``--concurrency 256``), alternated within each repetition, the order rotating. Per run: requests
refused, requests in all, wall time, files/s, files failed, and the level the adaptive run settled on. Prints the
medians and their ratios; writes every run to ``--out``. It also times the gate itself (a try passing it, 79
others in flight), against the ~600 µs of CPU a small file costs.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from binance_archive import Selection, plan
from binance_archive.testing import FakeArchiveServer, Faults, build_archive

HERE = Path(__file__).resolve().parent
TODAY = dt.date(2026, 11, 22)
CONTENDERS = {"adaptive": [], "fixed-256": ["--concurrency", "256"], "fixed-80": ["--concurrency", "80"]}


def spec(files: int) -> dict[str, Any]:
    """About ``files`` daily 1h klines of four symbols, as ``Selection(**spec)`` takes them (the worker's --spec)."""
    days = max(1, files // 4)
    end = dt.date(2023, 1, 1) + dt.timedelta(days=days - 1)
    return {
        "markets": "spot",
        "data_types": "klines",
        "symbols": ["BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT"],
        "intervals": "1h",
        "start": "2023-01-01",
        "end": end.isoformat(),
        "periods": "daily",
    }


@contextmanager
def serving(root: Path, faults: Faults) -> Iterator[FakeArchiveServer]:
    """The fake archive on its own loop, in a thread of this process."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fake-archive", daemon=True)
    thread.start()
    server = FakeArchiveServer(root, faults=faults)
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(30)
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def one_run(server: FakeArchiveServer, spec: Path, dest: Path, extra: list[str]) -> dict[str, Any]:
    server.stats.reset()
    command = [
        sys.executable,
        str(HERE / "worker.py"),
        "archive",
        "--base-url",
        server.base_url,
        "--dest",
        str(dest),
        "--spec",
        str(spec),
        "--today",
        TODAY.isoformat(),
        *extra,
    ]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"the worker failed ({done.returncode}): {done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    faults = dict(server.stats.faults)
    result.update(
        wall_seconds=wall,
        refused=faults.get("shed", 0) + faults.get("429", 0),
        requests=server.stats.requests,
        files_per_second=result["downloaded"] / wall,
        # The level: the one settled on where it was found by measuring, else the pinned one.
        concurrency=result["settled_concurrency"] or result["concurrency"],
    )
    shutil.rmtree(dest)
    return result


def gate_cost(tries: int = 200_000) -> float:
    """Microseconds a try spends passing the level's gate (enter, then leave as done), 79 others in flight."""
    from binance_archive.engine.pace import Pace, TryEnd

    pace = Pace(80, 256)
    held = [pace.enter() for _ in range(79)]
    started = time.perf_counter()
    for _ in range(tries):
        ticket = pace.enter()
        assert ticket is not None
        pace.leave(ticket, TryEnd.DONE)
    took = time.perf_counter() - started
    del held
    return took / tries * 1e6


def median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(float(r[key]) for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per request (default 0.05)")
    parser.add_argument("--max-in-flight", type=int, default=128, help="requests the shedding server takes at once")
    parser.add_argument("--storms", default="shed,random", help="shed, random, calm (latency alone)")
    parser.add_argument("--contenders", default="adaptive,fixed-256", help=", ".join(CONTENDERS))
    parser.add_argument("--out", type=Path, default=HERE / "results" / "storm.json")
    args = parser.parse_args()
    storms = {
        "shed": Faults(latency=args.latency, max_in_flight=args.max_in_flight, retry_after=1),
        "random": Faults(latency=args.latency, rate_429=0.10, retry_after=1),
        "calm": Faults(latency=args.latency),
    }
    contenders = args.contenders.split(",")
    chosen = Selection(**spec(args.files))
    scratch = Path(tempfile.mkdtemp(prefix="storm-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    started = dt.datetime.now(dt.UTC)
    results: dict[str, Any] = {
        "command": " ".join(sys.argv),
        "started": started.isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "settings": {
            "files": sum(1 for _ in plan(chosen, today=TODAY)),
            "runs": args.runs,
            "latency": args.latency,
            "max_in_flight": args.max_in_flight,
        },
        "storms": {},
        "gate_microseconds_per_try": gate_cost(),
    }
    print(f"the gate: {results['gate_microseconds_per_try']:.2f} µs a try", flush=True)
    try:
        upstream = scratch / "upstream"
        build_archive(upstream, plan(chosen, today=TODAY), max_rows=24)
        spec_file = scratch / "spec.json"
        spec_file.write_text(json.dumps([spec(args.files)]))
        for name in args.storms.split(","):
            runs: dict[str, list[dict[str, Any]]] = {c: [] for c in contenders}
            with serving(upstream, storms[name]) as server:
                for repetition in range(args.runs):
                    shift = repetition % len(contenders)
                    for contender in contenders[shift:] + contenders[:shift]:
                        dest = scratch / f"{name}-{contender}-{repetition}"
                        result = one_run(server, spec_file, dest, CONTENDERS[contender])
                        runs[contender].append(result)
                        print(
                            f"{name} {contender:>9} #{repetition + 1}: {result['refused']:>5} refused of "
                            f"{result['requests']:>5} requests, {result['wall_seconds']:5.2f} s, "
                            f"{result['files_per_second']:6.0f} files/s, {result['downloaded']} downloaded, "
                            f"{result['failed']} failed; level {result['concurrency_detail']}",
                            flush=True,
                        )
            summary = {
                contender: {
                    key: median(r, key)
                    for key in ("refused", "requests", "wall_seconds", "files_per_second", "failed", "concurrency")
                }
                for contender, r in runs.items()
            }
            adaptive = runs.get("adaptive", [])
            ratios: dict[str, Any] = {
                "all_completed": all(
                    r["failed"] == 0 and r["downloaded"] == results["settings"]["files"]
                    for r in (x for c in runs.values() for x in c)
                )
            }
            for other, theirs in runs.items():
                if other != "adaptive" and adaptive:
                    ratios[f"refused_{other}_over_adaptive"] = median(theirs, "refused") / max(
                        1.0, median(adaptive, "refused")
                    )
                    ratios[f"files_per_second_adaptive_over_{other}"] = median(adaptive, "files_per_second") / median(
                        theirs, "files_per_second"
                    )
            results["storms"][name] = {"faults": str(storms[name]), "runs": runs, "medians": summary, "ratios": ratios}
            print(f"{name}: medians {json.dumps(summary)}", flush=True)
            print(f"{name}: ratios {json.dumps(ratios)}", flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    results["finished"] = dt.datetime.now(dt.UTC).isoformat()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
