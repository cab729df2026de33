#!/usr/bin/env python3
"""Small files into destinations whose file creation costs differ: a tmpfs, a fresh folder on the disk, and one
folder on the disk emptied just before each run (where ext4 creates files slowly: see docs/performance.md, #21).

    python benchmarks/commits.py --engine base=/tmp/base --engine new=. --runs 5

Each ``--engine NAME=PATH`` is a copy of the package (a folder holding ``binance_archive/``) run by
``benchmarks/worker.py`` with ``PYTHONPATH=PATH``, so two versions of the engine can be compared in the same runs;
plain ``s5cmd run`` runs beside them. Every run is a process of its own, the contenders alternated (the order
rotates from one repetition to the next). It reuses the harness's nginx, data and process accounting
(``benchmarks/run.py``, ``server.py``, ``datasets.py``); the results go to ``--out`` as JSON, the medians to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import datasets  # noqa: E402
import run as harness  # noqa: E402
import server as servers  # noqa: E402

MODES = ("tmpfs", "fresh", "same")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def empty(folder: Path) -> None:
    """Remove what ``folder`` holds (its files and sub-folders), keeping the folder itself."""
    if folder.exists():
        for entry in os.scandir(folder):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
    folder.mkdir(parents=True, exist_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", action="append", default=[], help="NAME=PATH: a copy of the package to run")
    parser.add_argument("--no-s5cmd", action="store_true", help="leave plain s5cmd out")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--latencies", default="0,50", help="ms per request")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated subset of " + ",".join(MODES))
    parser.add_argument("--disk", default="/var/tmp/binance-archive-commits", help="a folder on the disk")
    parser.add_argument("--tmpfs", default="/dev/shm/binance-archive-commits")
    parser.add_argument("--cache", default="~/.cache/binance-archive-bench")
    parser.add_argument("--quiet-wait", type=float, default=3.0)
    parser.add_argument("--out", default="/tmp/commits.json")
    args = parser.parse_args()
    os.environ["BENCH_CACHE"] = args.cache
    engines = dict(item.split("=", 1) for item in args.engine) or {"engine": str(HERE.parent)}
    contenders = [*engines, *([] if args.no_s5cmd else ["s5cmd"])]
    latencies = [float(x) / 1000 for x in args.latencies.split(",")]
    modes = [m for m in args.modes.split(",") if m]
    tree = Path(args.cache).expanduser() / "tree"
    dataset = datasets.small(args.files)
    manifest = datasets.ensure(dataset, tree, log)
    files = dataset.files()
    expect = manifest["zip_bytes"] + manifest["sidecar_bytes"]
    s5cmd = harness.s5cmd_binary()
    disk, tmpfs = Path(args.disk), Path(args.tmpfs)
    for folder in (disk, tmpfs):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    work = tmpfs / "work"
    work.mkdir()
    spec = work / "spec.json"
    spec.write_text(json.dumps(dataset.spec()))
    server = servers.make_server(tree, datasets.BUCKET, sorted({0.0, *latencies}), log)
    log(f"server: {server.describe()}; engines {engines}; modes {modes}")
    runs: list[dict[str, Any]] = []
    fresh = 0
    try:
        for mode in modes:
            for latency in latencies:
                base_url = server.base_url(latency)
                for rep in range(-1, args.runs):  # rep -1: a warm-up pass, not counted
                    order = contenders[rep % len(contenders) :] + contenders[: rep % len(contenders)]
                    for contender in order:
                        if mode == "tmpfs":
                            dest = tmpfs / f"dest-{fresh}"
                        elif mode == "fresh":
                            dest = disk / f"fresh-{fresh}"  # deleted only at the end (see benchmarks/README.md)
                        else:
                            dest = disk / "same"
                            empty(dest)  # the previous run's files deleted just before this one
                        fresh += 1
                        cmds = work / "cmds.txt"
                        if contender == "s5cmd":
                            keys = [k for f in files for k in (f.key, f.checksum_key)]
                            cmds.write_text("".join(f"cp s3://{datasets.BUCKET}/{k} {dest}/{k}\n" for k in keys))
                            argv = [s5cmd, "--endpoint-url", base_url, "--no-sign-request", "run", str(cmds)]
                            env = dict(os.environ, AWS_REGION=harness.REGION)
                        else:
                            argv = [sys.executable, str(harness.WORKER), "archive", "--transport", "http"]
                            argv += ["--base-url", base_url, "--dest", str(dest), "--spec", str(spec)]
                            env = harness.python_env()
                            env["PYTHONPATH"] = str(Path(engines[contender]).resolve())
                        os.sync()
                        harness.wait_for_quiet(args.quiet_wait)
                        result = harness.run_process(argv, work / "logs", env=env)
                        zips, sidecars, nbytes = harness.scan(dest) if dest.exists() else (0, 0, 0)
                        ok = result["returncode"] == 0 and (zips, sidecars, nbytes) == (len(files), len(files), expect)
                        record = {
                            "mode": mode,
                            "latency_ms": int(latency * 1000),
                            "contender": contender,
                            "rep": rep,
                            "ok": ok,
                            **{k: v for k, v in result.items() if k != "error"},
                        }
                        if not ok:
                            record["error"] = result.get("error", f"{zips} zips, {sidecars} sidecars, {nbytes} bytes")
                        if rep >= 0:
                            runs.append(record)
                        log(
                            f"{mode:5} {int(latency * 1000):3} ms {contender:8} rep {rep:2}: {result['wall_s']:.2f} s, "
                            f"cpu {result['cpu_s']:.2f} s{'' if ok else ' PROBLEM ' + record['error'][-300:]}"
                        )
                        if mode == "tmpfs":
                            shutil.rmtree(dest, ignore_errors=True)
    finally:
        server.stop()
        Path(args.out).write_text(json.dumps(runs, indent=1))
        shutil.rmtree(disk, ignore_errors=True)
        shutil.rmtree(tmpfs, ignore_errors=True)
    summary(runs, contenders)


def summary(runs: list[dict[str, Any]], contenders: list[str]) -> None:
    keys = sorted({(r["mode"], r["latency_ms"]) for r in runs}, key=lambda k: (MODES.index(k[0]), k[1]))
    print("\n| destination | ms | " + " | ".join(f"{c} s (CPU s)" for c in contenders) + " | vs s5cmd |")
    print("|---|---|" + "---|" * len(contenders) + "---|")
    for mode, latency in keys:
        cells, walls = [], {}
        for contender in contenders:
            mine = [r for r in runs if (r["mode"], r["latency_ms"], r["contender"]) == (mode, latency, contender)]
            if not mine:
                cells.append("-")
                continue
            walls[contender] = statistics.median(r["wall_s"] for r in mine)
            cpu = statistics.median(r["cpu_s"] for r in mine)
            bad = sum(not r["ok"] for r in mine)
            cells.append(f"{walls[contender]:.2f} ({cpu:.2f}){f' [{bad} failed]' if bad else ''}")
        ratios = (
            ", ".join(f"{c} {walls['s5cmd'] / w:.2f}x" for c, w in walls.items() if c != "s5cmd")
            if "s5cmd" in walls
            else "-"
        )
        print(f"| {mode} | {latency} | " + " | ".join(cells) + f" | {ratios} |")


if __name__ == "__main__":
    main()
