"""One contender (or one core measurement) in its own process, so the harness can take its CPU time and
peak RSS from ``os.wait4``. Prints one JSON line on stdout.

    python benchmarks/worker.py archive --transport http --base-url URL --dest DIR --spec FILE
    python benchmarks/worker.py sequential --base-url URL --dest DIR --keys FILE
    python benchmarks/worker.py floor --base-url URL --dest DIR --keys FILE
    python benchmarks/worker.py plan --symbols 2740 --start 2016-01-01 --end 2025-12-31
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

STARTED = time.perf_counter()


def _archive(args: argparse.Namespace) -> dict[str, object]:
    import datetime as dt

    from binance_archive import Archive, Selection
    from binance_archive.runner import loop_name, run, tune_for_one_job

    tune_for_one_job()  # as the command line does

    imported = time.perf_counter()
    with open(args.spec) as handle:
        selections = [Selection(**item) for item in json.load(handle)]
    options: dict[str, object] = {}
    for item in args.option:
        name, _, value = item.partition("=")
        options[name] = int(value) if value.isdigit() else value
    archive = Archive(
        args.dest,
        transport=args.transport,
        base_url=args.base_url,
        transport_options=options,
        concurrency=args.concurrency,
        max_concurrency=args.max_concurrency,
    )
    # The event loop the command line would use (uvloop when installed; BINANCE_ARCHIVE_LOOP chooses), and the
    # report it keeps when it prints a summary rather than --json: counts and problems, not every file's outcome.
    report = run(archive.download(selections, today=dt.date.fromisoformat(args.today), detail="problems"))
    return {
        "downloaded": report.downloaded,
        "skipped": report.skipped,
        "missing": report.missing,
        "failed": report.failed,
        "bytes": report.bytes,
        "engine_seconds": report.duration,
        "import_seconds": imported - STARTED,
        "concurrency": archive.concurrency,
        # The level an adaptive run settled on (issue #21): the latency bound is taken at it; None where
        # --concurrency pinned the level. The detail (start, low, high, ceiling, back-offs) for benchmarks/storm.py.
        "settled_concurrency": report.concurrency.settled
        if report.concurrency is not None and report.concurrency.adaptive
        else None,
        "concurrency_detail": report.to_dict().get("concurrency"),
        "loop": loop_name(),
        "client": getattr(archive.transport, "client", None),
        "failures": [f"{o.key}: {o.error}" for o in report.failures[:3]],
    }


def _sequential(args: argparse.Namespace) -> dict[str, object]:
    """One file at a time, a new connection per request, as Binance's own download scripts do (urllib)."""
    import os
    import shutil
    import urllib.request

    with open(args.keys) as handle:
        keys = [line.strip() for line in handle if line.strip()]
    started = time.perf_counter()
    nbytes = 0
    made: set[str] = set()
    for key in keys:
        path = os.path.join(args.dest, key)
        folder = os.path.dirname(path)
        if folder not in made:
            os.makedirs(folder, exist_ok=True)
            made.add(folder)
        with urllib.request.urlopen(f"{args.base_url}/{key}") as response, open(path, "wb") as out:
            shutil.copyfileobj(response, out, 1 << 20)
            nbytes += out.tell()
    return {"downloaded": len(keys), "bytes": nbytes, "engine_seconds": time.perf_counter() - started}


def _floor(args: argparse.Namespace) -> dict[str, object]:
    """The least a verifying download of large files does in Python, with no engine: a thread a zip, which GETs
    its sidecar, then receives the zip a megabyte at a time into one buffer (``readinto``), hashes it, writes it
    to a temporary name, compares the SHA-256 and renames. No retries, no resume, no progress, nothing imported
    but the standard library: what is left when every cost of ours but the work itself is gone (#21: large files
    against s5cmd, which does not hash)."""
    import hashlib
    import http.client
    import threading
    from urllib.parse import urlsplit

    with open(args.keys) as handle:
        zips = [key for key in (line.strip() for line in handle) if key.endswith(".zip")]
    base = urlsplit(args.base_url)
    if base.scheme != "http":
        raise SystemExit(f"the floor speaks plain HTTP only, not {base.scheme}://")
    host, port = base.hostname or "", base.port
    nbytes = [0] * len(zips)
    errors: list[str] = []

    def get(connection: http.client.HTTPConnection, key: str) -> http.client.HTTPResponse:
        connection.request("GET", f"{base.path}/{key}")
        response = connection.getresponse()
        if response.status != 200:
            raise OSError(f"{key}: HTTP {response.status}")
        return response

    def fetch(index: int, key: str) -> None:
        try:
            connection = http.client.HTTPConnection(host, port, timeout=60)
            sidecar = get(connection, f"{key}.CHECKSUM").read()
            expected = sidecar.split()[0].decode()
            path = os.path.join(args.dest, key)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            response, digest = get(connection, key), hashlib.sha256()
            buffer = memoryview(bytearray(1 << 20))
            fd = os.open(f"{path}.part", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                while count := response.readinto(buffer):
                    digest.update(buffer[:count])
                    os.write(fd, buffer[:count])
                    nbytes[index] += count
            finally:
                os.close(fd)
            if digest.hexdigest() != expected:
                raise OSError(f"{key}: SHA-256 differs from its sidecar")
            os.rename(f"{path}.part", path)
            with open(f"{path}.CHECKSUM", "wb") as handle:
                handle.write(sidecar)
            connection.close()
        except Exception as exc:  # reported in the result, and the run fails its check
            errors.append(f"{key}: {exc}")

    started = time.perf_counter()
    threads = [threading.Thread(target=fetch, args=(i, key)) for i, key in enumerate(zips)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {
        "downloaded": len(zips) - len(errors),
        "failed": len(errors),
        "failures": errors[:3],
        "bytes": sum(nbytes),
        "engine_seconds": time.perf_counter() - started,
    }


def _plan(args: argparse.Namespace) -> dict[str, object]:
    import datetime as dt

    from binance_archive.core import Selection, plan

    symbols = [f"S{i:04d}USDT" for i in range(args.symbols)]
    selection = Selection(
        markets="spot",
        data_types="klines",
        symbols=symbols,
        intervals="1m",
        start=args.start,
        end=args.end,
        periods="daily",
    )
    started, cpu = time.perf_counter(), time.process_time()
    count = 0
    chars = 0
    for file in plan(selection, today=dt.date(2026, 6, 1)):
        chars += len(file.key)
        count += 1
    return {
        "files": count,
        "key_chars": chars,
        "engine_seconds": time.perf_counter() - started,
        "engine_cpu_seconds": time.process_time() - cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    archive = commands.add_parser("archive")
    archive.add_argument("--transport", default="http")
    archive.add_argument("--base-url", required=True)
    archive.add_argument("--dest", required=True)
    archive.add_argument("--spec", required=True)
    archive.add_argument("--today", default="2026-01-01")
    archive.add_argument("--concurrency", type=int)
    archive.add_argument(
        "--max-concurrency", type=int, help="with --concurrency: where the level starts and its ceiling"
    )
    archive.add_argument("--option", action="append", default=[], help="transport option NAME=VALUE")
    sequential = commands.add_parser("sequential")
    sequential.add_argument("--base-url", required=True)
    sequential.add_argument("--dest", required=True)
    sequential.add_argument("--keys", required=True)
    floor = commands.add_parser("floor")
    floor.add_argument("--base-url", required=True)
    floor.add_argument("--dest", required=True)
    floor.add_argument("--keys", required=True)
    planning = commands.add_parser("plan")
    planning.add_argument("--symbols", type=int, required=True)
    planning.add_argument("--start", default="2016-01-01")
    planning.add_argument("--end", default="2025-12-31")
    args = parser.parse_args()
    result = {"archive": _archive, "sequential": _sequential, "floor": _floor, "plan": _plan}[args.command](args)
    sys.stdout.write(json.dumps(result) + "\n")
    if args.command == "floor":
        sys.stdout.flush()
        os._exit(1 if result["failed"] else 0)  # without importing the package below: the floor imports none of it
    from binance_archive.runner import end_process

    end_process(0)  # as the command ends: without the interpreter's finalization


if __name__ == "__main__":
    main()
