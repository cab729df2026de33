#!/usr/bin/env python3
"""The command's start-up: what ``binance-archive download --help`` and a one-file download cost in imports and in
the whole process, for two copies of the package side by side (#21: large files are limited by start-up).

    python benchmarks/startup.py --engine before=/tmp/before --engine after=. --runs 9

Each ``--engine NAME=PATH`` is a folder holding ``binance_archive/`` (compiled first, as an installed wheel is), run
with ``PYTHONPATH=PATH``; the runs alternate between them. A one-file download fetches one monthly kline file (and
its sidecar, and the listing) from the fake archive server on loopback. Import seconds are the sum of the top-level
lines of ``python -X importtime`` (modules imported by ``importlib.import_module``, the built-in plugins', are
counted in their parents' imports only); process seconds are the wall time of the whole process. Medians, and the
fastest run (the least disturbed by other work on the machine).
"""

from __future__ import annotations

import argparse
import compileall
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def import_seconds(stderr: str) -> float:
    total = 0
    for line in stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\S)", line)
        if match:
            total += int(match.group(1))
    return total / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", action="append", default=[], help="NAME=PATH")
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    engines = dict(item.split("=", 1) for item in args.engine) or {"this": str(Path(__file__).parent.parent)}
    for path in engines.values():
        compileall.compile_dir(str(Path(path) / "binance_archive"), quiet=1)
    env0 = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH")}
    work = Path(tempfile.mkdtemp(prefix="startup-"))
    first = dict(env0, PYTHONPATH=next(iter(engines.values())))
    build = [sys.executable, "-m", "binance_archive.testing", "build", "--root", str(work / "up"), "--market", "spot",
             "--data-type", "klines", "--symbol", "BTCUSDT", "--interval", "1d", "--start", "2024-01-01",
             "--end", "2024-01-31", "--period", "monthly"]  # fmt: skip
    subprocess.run(build, env=first, check=True, capture_output=True, cwd=work)
    server = subprocess.Popen(
        [sys.executable, "-m", "binance_archive.testing", "serve", "--root", str(work / "up")],
        env=first, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=work,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        base_url, listing_url = server.stdout.readline().split()
        download = ["download", "--market", "spot", "--data-type", "klines", "--symbol", "BTCUSDT", "--interval", "1d",
                    "--start", "2024-01-01", "--end", "2024-01-31", "--period", "monthly", "--today", "2026-11-22",
                    "--base-url", base_url, "--listing-url", listing_url, "--quiet"]  # fmt: skip
        cases = {"--help": ["download", "--help"], "one file": download}
        results: dict[tuple[str, str, str], list[float]] = {}
        for rep in range(-1, args.runs):
            names = list(engines)
            names = names[rep % len(names) :] + names[: rep % len(names)]
            for case, argv in cases.items():
                for name in names:
                    env = dict(env0, PYTHONPATH=engines[name])
                    extra = ["--to", str(work / "mirror")] if case == "one file" else []
                    for importtime in (False, True):
                        shutil.rmtree(work / "mirror", ignore_errors=True)
                        command = [sys.executable, *(["-X", "importtime"] if importtime else []), "-m",
                                   "binance_archive", *argv, *extra]  # fmt: skip
                        started = time.perf_counter()
                        done = subprocess.run(
                            command, env=env, capture_output=True, text=True, cwd=work
                        )  # not this checkout's
                        seconds = time.perf_counter() - started
                        if done.returncode != 0:
                            raise SystemExit(f"{name} {case}: {done.stderr[-1500:]}")
                        if rep >= 0:
                            what = "imports" if importtime else "process"
                            value = import_seconds(done.stderr) if importtime else seconds
                            results.setdefault((case, what, name), []).append(value)
    finally:
        server.terminate()
        server.wait(10)
        shutil.rmtree(work, ignore_errors=True)
    print("| case | measure | " + " | ".join(engines) + " |")
    print("|---|---|" + "---|" * len(engines))
    for case in cases:
        for what in ("imports", "process"):
            cells = [
                f"{statistics.median(results[(case, what, n)]):.3f} s (min {min(results[(case, what, n)]):.3f})"
                for n in engines
            ]
            print(f"| {case} | {what} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
