#!/usr/bin/env python3
"""HTTP/1.1 against HTTP/2 for the HTTP transport's pyreqwest client, over the harness's nginx with HTTPS.

    python benchmarks/http2.py --latencies 0,50,200 --runs 5 [--scheme https-far]

A bare client, not the library: the small dataset's zips and sidecars (``--files``, default 400), ``--in-flight``
files at once (default 80, the transport's default), zip and sidecar fetched together, SHA-256 of every body,
nothing stored. pyreqwest as the transport builds it (HTTP/1.1) against the same with ``http2(True)``, each run a
process of its own, the two alternated. ``--scheme https-far`` delays every TLS handshake as long as a request (a
real link's round trip for each new connection). Prints each run and the medians; see docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
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


async def _fetch(base: str, ca_pem: bytes, keys: list[str], http2: bool, in_flight: int) -> list[str]:
    from pyreqwest.client import ClientBuilder

    builder = (
        ClientBuilder()
        .max_connections(2 * in_flight)
        .add_root_certificate_pem(ca_pem)
        .gzip(False)
        .brotli(False)
        .zstd(False)
        .deflate(False)
        .connect_timeout(dt.timedelta(seconds=10))
        .read_timeout(dt.timedelta(seconds=30))
    )
    client = (builder.http2(True) if http2 else builder).build()
    slots = asyncio.Semaphore(in_flight)
    versions: set[str] = set()

    async def get(url: str) -> str:
        async with client.get(url).streamed_read_buffer_limit(0).build_streamed() as response:
            versions.add(str(response.version))
            digest = hashlib.sha256()
            while (chunk := await response.body_reader.read_chunk()) is not None:
                digest.update(bytes(chunk))
            return digest.hexdigest()

    async def one(key: str) -> None:
        async with slots:
            await asyncio.gather(get(f"{base}/{key}"), get(f"{base}/{key}.CHECKSUM"))

    async with client:
        await asyncio.gather(*(one(k) for k in keys))
    return sorted(versions)


def _child(argv: list[str]) -> None:
    base, ca, keyfile, http2, in_flight = argv
    keys = Path(keyfile).read_text().split()
    started = time.perf_counter()
    versions = asyncio.run(_fetch(base, Path(ca).read_bytes(), keys, http2 == "1", int(in_flight)))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime
    print(json.dumps({"wall_s": time.perf_counter() - started, "cpu_s": cpu, "versions": versions}), flush=True)
    # Out at once: pyreqwest 0.15's Tokio thread can abort the interpreter as it finalises ("PyGILState_Release:
    # thread state must be current"), after the figures are out but with a status that would hide them.
    os._exit(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latencies", default="0,50,200", help="ms per request (default 0,50,200)")
    parser.add_argument("--runs", type=int, default=5, help="runs of each variant per latency (default 5)")
    parser.add_argument("--files", type=int, default=400, help="zips of the small dataset (default 400)")
    parser.add_argument("--in-flight", type=int, default=80, help="files at once (default 80)")
    parser.add_argument("--cache", default="~/.cache/binance-archive-bench", help="the harness's cache")
    parser.add_argument(
        "--scheme", choices=("https", "https-far"), default="https", help="https-far: every handshake delayed too"
    )
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    import datasets
    import server

    latencies = [float(x) / 1000 for x in args.latencies.split(",")]
    tree = Path(args.cache).expanduser() / "tree"
    dataset = datasets.small(args.files)
    datasets.ensure(dataset, tree, print)
    keyfile = tree / f"http2-keys-{args.files}.txt"
    keyfile.write_text("\n".join(f.key for f in dataset.files()) + "\n")
    nginx = server.find_or_install_nginx(print)
    if nginx is None:
        raise SystemExit("nginx with the lua module is needed (apt-get install nginx-light libnginx-mod-http-lua)")
    site = server.NginxServer(tree, datasets.BUCKET, latencies, *nginx)
    site.start()
    results: dict[tuple[float, int], list[dict[str, object]]] = {}
    try:
        for latency in latencies:
            for rep in range(args.runs):
                for http2 in (0, 1) if rep % 2 == 0 else (1, 0):
                    argv = [sys.executable, __file__, "--child", site.base_url(latency, args.scheme), str(site.ca_file)]
                    argv += [str(keyfile), str(http2), str(args.in_flight)]
                    done = subprocess.run(argv, capture_output=True, text=True, check=True)
                    run = json.loads(done.stdout.splitlines()[-1])
                    results.setdefault((latency, http2), []).append(run)
                    print(f"{latency * 1000:.0f} ms, {'HTTP/2' if http2 else 'HTTP/1.1'}: {run}", flush=True)
    finally:
        site.stop()
    for (latency, http2), runs in results.items():
        walls = [float(r["wall_s"]) for r in runs]  # type: ignore[arg-type]
        cpus = [float(r["cpu_s"]) for r in runs]  # type: ignore[arg-type]
        print(
            f"{latency * 1000:.0f} ms, {'HTTP/2  ' if http2 else 'HTTP/1.1'}: {statistics.median(walls):.3f} s "
            f"({min(walls):.3f} - {max(walls):.3f}), {statistics.median(cpus):.2f} CPU-s, {runs[0]['versions']}"
        )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        _child(sys.argv[2:])
    else:
        main()
