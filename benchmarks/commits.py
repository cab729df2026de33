#!/usr/bin/env python3
"""What committing small files costs where creating a file is slow, and what the local storage's writer threads
(``commit_threads``, ``slow_commit``; binance_archive/storages/commits.py) win there (#21).

    python benchmarks/commits.py                     # both parts, 5 alternated runs each
    python benchmarks/commits.py --parts bare --runs 7 --files 2000

Two parts, each run a process of its own, the contenders alternated (the order rotates from one repetition to the
next), medians reported with the ratio of each contender to the first:

- ``bare``: ``--files`` files of 60 KB stored by ``LocalStorage.put_bytes``, 64 at a time, nothing else on the loop:
  on the tmpfs (a fresh folder each run), on the disk in a fresh folder, and on the disk in one folder emptied just
  before each run (where ext4 creates files slowly). Contenders: every commit on the loop (``commit_threads=0``;
  ``loop-named``: with named temporary files renamed, as before #21),
  the writer threads from the start (``slow_commit=0``, 2 and 4 threads; named temporary files instead of unnamed
  ones), and the default (measured: threads once commits are slow).
- ``engine``: a whole download (``Archive.download``) of the harness's small dataset from the fake archive server at
  0 ms per request into one folder on the disk emptied just before each run: the storage as it was (every commit on
  the loop: ``commit_threads=0``) against the default.

The package run is the one ``PYTHONPATH`` names (else the installed one). Results:
``benchmarks/results/commits.json`` (every run) and ``commits.md`` (the medians). It needs the harness's small
dataset (``benchmarks/datasets.py``; generated into ``~/.cache/binance-archive-bench`` when missing).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BARE = {
    "loop": {"commit_threads": 0},
    "loop-named": {"commit_threads": 0, "named": True},  # as the storage committed before #21
    "threads-2": {"commit_threads": 2, "slow_commit": 0},
    "threads-4": {"commit_threads": 4, "slow_commit": 0},
    "threads-2-named": {"commit_threads": 2, "slow_commit": 0, "named": True},
    "default": {},
}
ENGINE = {"loop": {"commit_threads": 0}, "loop-named": {"commit_threads": 0, "named": True}, "default": {}}
WHERE = ("tmpfs", "fresh", "emptied")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def empty(folder: Path) -> None:
    """Remove what ``folder`` holds, keeping the folder itself (its directory blocks stay as they were)."""
    folder.mkdir(parents=True, exist_ok=True)
    for entry in os.scandir(folder):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            os.unlink(entry.path)


# -- the child processes -------------------------------------------------------------------------------------------


def _storage_options(options: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    options = dict(options)
    return options, bool(options.pop("named", False))


def child_bare(dest: str, files: int, options: dict[str, Any]) -> dict[str, Any]:
    import asyncio

    from binance_archive.storages.local import LocalStorage

    storage_options, named = _storage_options(options)
    storage = LocalStorage(dest, **storage_options)
    if named:
        storage.committer.unnamed = False
    data = [os.urandom(1024) * 60 for _ in range(8)]  # 60 KB

    async def main() -> float:
        limit = asyncio.Semaphore(64)

        async def one(i: int) -> None:
            async with limit:
                key = f"data/spot/daily/klines/S{i % 4}USDT/1m/S{i % 4}USDT-1m-{i:05d}.zip"
                await storage.put_bytes(key, data[i % 8])

        async with storage:
            await storage.put_bytes("data/warm", b"")  # the storage's first folder made before the clock starts
            started = time.perf_counter()
            await asyncio.gather(*(one(i) for i in range(files)))
            return time.perf_counter() - started

    seconds = asyncio.run(main())
    return {"seconds": seconds, "threaded": storage.committer.threaded, "unnamed": storage.committer.unnamed}


def child_engine(dest: str, base_url: str, listing_url: str, spec: str, options: dict[str, Any]) -> dict[str, Any]:
    import datetime as dt

    from binance_archive import Archive, Selection
    from binance_archive.runner import run, tune_for_one_job

    tune_for_one_job()  # as the command line does
    selections = [Selection(**item) for item in json.loads(Path(spec).read_text())]
    storage_options, named = _storage_options(options)
    archive = Archive(dest, base_url=base_url, listing_url=listing_url, storage_options=storage_options)
    if named:
        archive.storage.committer.unnamed = False  # type: ignore[attr-defined]
    started = time.perf_counter()
    report = run(archive.download(selections, today=dt.date(2026, 1, 1), detail="problems"))
    seconds = time.perf_counter() - started
    storage = archive.storage
    return {
        "seconds": seconds,
        "downloaded": report.downloaded,
        "failed": report.failed,
        "threaded": storage.committer.threaded,  # type: ignore[attr-defined]
    }


# -- the parent ----------------------------------------------------------------------------------------------------


def run_child(argv: list[str]) -> dict[str, Any]:
    done = subprocess.run([sys.executable, __file__, "--child", json.dumps(argv)], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} run failed: {done.stderr[-2000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def rotate(names: list[str], rep: int) -> list[str]:
    k = rep % len(names)
    return names[k:] + names[:k]


def destination(where: str, args: argparse.Namespace, counter: list[int]) -> Path:
    counter[0] += 1
    if where == "tmpfs":
        return Path(args.tmpfs) / f"dest-{counter[0]}"
    if where == "fresh":
        return Path(args.disk) / f"fresh-{counter[0]}"
    dest = Path(args.disk) / "emptied"
    empty(dest)  # the previous run's files deleted just before this one
    return dest


def settle(dest: Path, where: str) -> None:
    """What a run left: the tmpfs's removed at once; the disk's fresh folders kept until the end (deleting them here
    would make the next fresh folder a slow one)."""
    if where == "tmpfs":
        shutil.rmtree(dest, ignore_errors=True)


def bare(args: argparse.Namespace, runs: list[dict[str, Any]]) -> None:
    counter = [0]
    for where in args.where.split(","):
        for rep in range(-1, args.runs):  # rep -1: a warm-up pass, not counted
            for name in rotate(list(BARE), rep):
                dest = destination(where, args, counter)
                os.sync()
                time.sleep(args.pause)
                result = run_child(["bare", str(dest), args.files, BARE[name]])
                settle(dest, where)
                log(f"bare {where:7} {name:16} rep {rep:2}: {result['seconds']:.3f} s (threaded {result['threaded']})")
                if rep >= 0:
                    runs.append({"part": "bare", "where": where, "contender": name, "rep": rep, **result})


def engine(args: argparse.Namespace, runs: list[dict[str, Any]]) -> None:
    sys.path.insert(0, str(HERE))
    import datasets

    dataset = datasets.small(args.engine_files)
    tree = Path(args.cache).expanduser() / "tree"
    datasets.ensure(dataset, tree, log)
    spec = Path(args.tmpfs) / "spec.json"
    spec.write_text(json.dumps(dataset.spec()))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "binance_archive.testing", "serve", "--root", str(tree / datasets.BUCKET),
         "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        base_url, listing_url = server.stdout.readline().split()
        log(f"fake archive at {base_url}, {len(dataset.files())} files")
        counter = [0]
        for where in args.engine_where.split(","):
            for rep in range(-1, args.runs):
                for name in rotate(list(ENGINE), rep):
                    dest = destination(where, args, counter)
                    os.sync()
                    time.sleep(args.pause)
                    result = run_child(["engine", str(dest), base_url, listing_url, str(spec), ENGINE[name]])
                    settle(dest, where)
                    ok = result["downloaded"] == len(dataset.files()) and not result["failed"]
                    log(f"engine {where:7} {name:8} rep {rep:2}: {result['seconds']:.3f} s, {result['downloaded']} "
                        f"files{'' if ok else ' PROBLEM'} (threaded {result['threaded']})")  # fmt: skip
                    if rep >= 0:
                        runs.append(
                            {"part": "engine", "where": where, "contender": name, "rep": rep, "ok": ok, **result}
                        )
    finally:
        server.terminate()
        server.wait(10)


def table(runs: list[dict[str, Any]]) -> str:
    lines = ["| part | where | contender | median s | runs (s) | vs loop |", "|---|---|---|---|---|---|"]
    groups: dict[tuple[str, str], dict[str, list[float]]] = {}
    for r in runs:
        groups.setdefault((r["part"], r["where"]), {}).setdefault(r["contender"], []).append(r["seconds"])
    for (part, where), contenders in groups.items():
        base = statistics.median(contenders["loop"]) if "loop" in contenders else None
        for name, seconds in contenders.items():
            median = statistics.median(seconds)
            ratio = f"{base / median:.2f}x" if base else "-"
            each = ", ".join(f"{s:.2f}" for s in seconds)
            lines.append(f"| {part} | {where} | {name} | {median:.3f} | {each} | {ratio} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        kind, *rest = json.loads(sys.argv[2])
        result = child_bare(*rest) if kind == "bare" else child_engine(*rest)
        print(json.dumps(result), flush=True)
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="bare,engine")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--files", type=int, default=2000, help="files of the bare part")
    parser.add_argument("--engine-files", type=int, default=2000, help="zips of the engine part (and their sidecars)")
    parser.add_argument("--where", default=",".join(WHERE), help="the bare part's destinations")
    parser.add_argument("--engine-where", default="emptied", help="the engine part's destinations")
    parser.add_argument("--disk", default="/var/tmp/binance-archive-commits", help="a folder on the disk (ext4)")
    parser.add_argument("--tmpfs", default="/dev/shm/binance-archive-commits")
    parser.add_argument("--cache", default="~/.cache/binance-archive-bench")
    parser.add_argument("--pause", type=float, default=0.5, help="seconds of quiet before each run")
    parser.add_argument("--out", default=str(HERE / "results" / "commits"), help="results: OUT.json and OUT.md")
    args = parser.parse_args()
    for folder in (args.disk, args.tmpfs):
        shutil.rmtree(folder, ignore_errors=True)
        Path(folder).mkdir(parents=True)
    runs: list[dict[str, Any]] = []
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    try:
        if "bare" in args.parts:
            bare(args, runs)
        if "engine" in args.parts:
            engine(args, runs)
    finally:
        shutil.rmtree(args.disk, ignore_errors=True)
        shutil.rmtree(args.tmpfs, ignore_errors=True)
    text = table(runs)
    Path(args.out + ".json").write_text(json.dumps(runs, indent=1))
    Path(args.out + ".md").write_text(
        f"# Commits of small files ({started}; `{' '.join(sys.argv[1:]) or 'defaults'}`; {os.cpu_count()} cores)\n\n"
        + text
    )
    print(text)


if __name__ == "__main__":
    main()
