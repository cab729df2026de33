#!/usr/bin/env python3
"""The HTTP transport's three clients side by side (native, pyreqwest, aiohttp), over the harness's nginx.

    python benchmarks/clients.py --latencies 0,50 --runs 5 [--scheme https]

The transport without the engine or a storage: the small dataset's zips and sidecars (``--files``, default
2,000), ``--in-flight`` files at once (default 128, the transport's start), each file's zip read chunk by chunk
and its sidecar read whole, together, SHA-256 of every zip, nothing stored. Each run is a process of its own on
the loop the command uses (uvloop where installed), the clients alternated; it reports the wall time and the CPU
time of the fetching alone (every thread of the process, imports excluded). Prints each run and the medians; see
docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLIENTS = ("native", "pyreqwest", "aiohttp")


async def _fetch(base: str, ca: str | None, keys: list[str], client: str, in_flight: int) -> int:
    from binance_archive.transports.http import HttpTransport

    options = {"ca_bundle": ca} if ca else {}
    received = 0
    async with HttpTransport(base_url=base, client=client, limit=2 * in_flight, **options) as transport:  # type: ignore[arg-type]

        async def one(key: str) -> None:
            nonlocal received
            sidecar = asyncio.ensure_future(transport.get_bytes(key + ".CHECKSUM", max_size=4096))
            digest = hashlib.sha256()
            async with transport.get(key) as body:
                async for chunk in body.chunks():
                    digest.update(chunk)
                    received += len(chunk)
            checksum = await sidecar  # awaited first: "received += len(await ...)" would lose the others' bytes
            received += len(checksum)

        pending = iter(keys)

        async def worker() -> None:
            for key in pending:
                await one(key)

        await asyncio.gather(*(worker() for _ in range(in_flight)))
    return received


def _child(argv: list[str]) -> None:
    base, ca, keyfile, client, in_flight, expected = argv
    from binance_archive.runner import loop_name, run

    keys = Path(keyfile).read_text().split()
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    received = run(_fetch(base, ca or None, keys, client, int(in_flight)))
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(json.dumps({"wall_s": wall, "cpu_s": cpu, "bytes": received, "loop": loop_name()}), flush=True)
    if received != int(expected):
        raise SystemExit(f"{client}: {received} bytes received, {expected} expected")
    os._exit(0)  # pyreqwest's thread may abort an interpreter that finalises (docs/reliability.md)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latencies", default="0,50", help="ms per request (default 0,50)")
    parser.add_argument("--runs", type=int, default=5, help="runs of each client per latency (default 5)")
    parser.add_argument("--files", type=int, default=2000, help="zips of the small dataset (default 2000)")
    parser.add_argument("--in-flight", type=int, default=128, help="files at once (default 128)")
    parser.add_argument("--scheme", choices=("http", "https"), default="http", help="plain HTTP or HTTPS")
    parser.add_argument("--clients", default=",".join(CLIENTS), help="a comma-separated subset")
    parser.add_argument("--cache", default="~/.cache/binance-archive-bench", help="the harness's cache")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    import datasets
    import server

    clients = [c for c in CLIENTS if c in args.clients.split(",")]
    latencies = [float(x) / 1000 for x in args.latencies.split(",")]
    tree = Path(args.cache).expanduser() / "tree"
    dataset = datasets.small(args.files)
    datasets.ensure(dataset, tree, print)
    keyfile = tree / f"client-keys-{args.files}.txt"
    keyfile.write_text("\n".join(f.key for f in dataset.files()) + "\n")
    root = tree / datasets.BUCKET
    total = sum((root / f.key).stat().st_size + (root / f.checksum_key).stat().st_size for f in dataset.files())
    nginx = server.find_or_install_nginx(print)
    if nginx is None:
        raise SystemExit("nginx with the lua module is needed (apt-get install nginx-light libnginx-mod-http-lua)")
    site = server.NginxServer(tree, datasets.BUCKET, latencies, *nginx)
    site.start()
    results: dict[tuple[float, str], list[dict[str, float]]] = {}
    try:
        for latency in latencies:
            for rep in range(args.runs + 1):  # the first pass warms nginx and the page cache, not counted
                order = clients if rep % 2 == 0 else clients[::-1]
                for client in order:
                    ca = str(site.ca_file) if args.scheme == "https" else ""
                    argv = [sys.executable, __file__, "--child", site.base_url(latency, args.scheme), ca]
                    argv += [str(keyfile), client, str(args.in_flight), str(total)]
                    done = subprocess.run(argv, capture_output=True, text=True, check=True)
                    run = json.loads(done.stdout.splitlines()[-1])
                    if rep:
                        results.setdefault((latency, client), []).append(run)
                    print(f"{latency * 1000:.0f} ms, {client}{'' if rep else ' (warm-up)'}: {run}", flush=True)
    finally:
        site.stop()
    files = len(dataset.files())
    for (latency, client), runs in results.items():
        walls = [r["wall_s"] for r in runs]
        cpus = [r["cpu_s"] for r in runs]
        print(
            f"{latency * 1000:.0f} ms {args.scheme}, {client:9}: {statistics.median(walls):.3f} s "
            f"({min(walls):.3f} - {max(walls):.3f}), {statistics.median(cpus):.2f} CPU-s, "
            f"{statistics.median(cpus) / files * 1000:.3f} CPU-ms a file"
        )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        _child(sys.argv[2:])
    else:
        main()
