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

    import attrs

    from binance_archive import Archive, Selection
    from binance_archive.runner import loop_name, run, tune_for_one_job

    tune_for_one_job()  # as the command line does

    imported = time.perf_counter()
    with open(args.spec) as handle:
        selections = [Selection(**item) for item in json.load(handle)]
    options, storage_options = _options(args.option), _options(args.storage_option)
    archive = Archive(
        args.dest,
        transport=args.transport,
        base_url=args.base_url,
        transport_options=options,
        storage_options=storage_options,
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
        # attrs.asdict, not report.to_dict(): that imports cattrs (~8 ms), which a download from the command line
        # without --json never does, and the process's wall time is what is measured.
        "concurrency_detail": attrs.asdict(report.concurrency) if report.concurrency is not None else None,
        "loop": loop_name(),
        "client": getattr(archive.transport, "client", None),
        "failures": [f"{o.key}: {o.error}" for o in report.failures[:3]],
    }


def _options(items: list[str]) -> dict[str, object]:
    """NAME=VALUE options: whole numbers and decimals as numbers, anything else as text."""
    options: dict[str, object] = {}
    for item in items:
        name, _, value = item.partition("=")
        try:
            options[name] = int(value)
        except ValueError:
            try:
                options[name] = float(value)
            except ValueError:
                options[name] = value
    return options


def _sequential(args: argparse.Namespace) -> dict[str, object]:
    """One file at a time, a new connection per request, as Binance's own download scripts do (urllib)."""
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


FLOOR_THREADS_UP_TO = 16
"""The floor fetches this many zips or fewer on a thread each (large files), more on one event loop (small ones)."""


def _floor(args: argparse.Namespace) -> dict[str, object]:
    """The least a verifying download does in Python, with no engine: every zip's SHA-256 compared with its
    sidecar's, the zip written to a temporary name and renamed, the sidecar stored beside it. No retries, no resume,
    no progress, no timeouts beyond the socket's, nothing of this package imported: what is left when every cost of
    ours but the work itself is gone (#21, against curl and s5cmd, which do not hash). A few zips (large files) are
    fetched on a thread each, received a megabyte at a time into one buffer; many (small files) on one event loop
    (uvloop where installed, as ours) over 128 kept-alive connections, a file's zip and sidecar at once."""
    from urllib.parse import urlsplit

    with open(args.keys) as handle:
        zips = [key for key in (line.strip() for line in handle) if key.endswith(".zip")]
    base = urlsplit(args.base_url)
    if base.scheme != "http":
        raise SystemExit(f"the floor speaks plain HTTP only, not {base.scheme}://")
    started = time.perf_counter()
    fetch = _floor_threads if len(zips) <= FLOOR_THREADS_UP_TO else _floor_loop
    nbytes, errors = fetch(base.hostname or "", base.port or 80, base.path, args.dest, zips)
    return {
        "downloaded": len(zips) - len(errors),
        "failed": len(errors),
        "failures": errors[:3],
        "bytes": nbytes,
        "engine_seconds": time.perf_counter() - started,
    }


def _floor_publish(path: str, sidecar: bytes) -> None:
    """A verified zip's temporary file renamed to its name, and its sidecar stored beside it."""
    os.rename(f"{path}.part", path)
    with open(f"{path}.CHECKSUM", "wb") as handle:
        handle.write(sidecar)


def _floor_store(dest: str, key: str, chunks: list[bytes], sidecar: bytes, made: set[str]) -> None:
    path = os.path.join(dest, key)
    folder = os.path.dirname(path)
    if folder not in made:
        os.makedirs(folder, exist_ok=True)
        made.add(folder)
    fd = os.open(f"{path}.part", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for chunk in chunks:
            os.write(fd, chunk)
    finally:
        os.close(fd)
    _floor_publish(path, sidecar)


def _floor_threads(host: str, port: int, root: str, dest: str, zips: list[str]) -> tuple[int, list[str]]:
    import hashlib
    import http.client
    import threading

    nbytes = [0] * len(zips)
    errors: list[str] = []

    def get(connection: http.client.HTTPConnection, key: str) -> http.client.HTTPResponse:
        connection.request("GET", f"{root}/{key}")
        response = connection.getresponse()
        if response.status != 200:
            raise OSError(f"{key}: HTTP {response.status}")
        return response

    def fetch(index: int, key: str) -> None:
        try:
            connection = http.client.HTTPConnection(host, port, timeout=60)
            sidecar = get(connection, f"{key}.CHECKSUM").read()
            path = os.path.join(dest, key)
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
            if digest.hexdigest() != sidecar.split()[0].decode():
                raise OSError(f"{key}: SHA-256 differs from its sidecar")
            _floor_publish(path, sidecar)
            connection.close()
        except Exception as exc:  # reported in the result, and the run fails its check
            errors.append(f"{key}: {exc}")

    threads = [threading.Thread(target=fetch, args=(i, key)) for i, key in enumerate(zips)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(nbytes), errors


def _floor_loop(host: str, port: int, root: str, dest: str, zips: list[str]) -> tuple[int, list[str]]:
    import asyncio
    import hashlib
    import re

    length_of = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)
    idle: list[Connection] = []
    made: set[str] = set()
    errors: list[str] = []
    total = 0

    class Connection(asyncio.Protocol):
        """One kept-alive HTTP/1.1 connection: a GET at a time, its body gathered as it arrives."""

        def __init__(self) -> None:
            self.head = b""
            self.body: list[bytes] = []
            self.remaining = 0
            self.waiter: asyncio.Future[None] | None = None
            self.lost = False

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport: asyncio.Transport = transport  # type: ignore[assignment]

        def connection_lost(self, exc: Exception | None) -> None:
            self.lost = True
            self._wake()

        def _wake(self) -> None:
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_result(None)

        def data_received(self, data: bytes) -> None:
            if self.remaining < 0:  # the head is not complete yet
                self.head += data
                end = self.head.find(b"\r\n\r\n")
                if end < 0:
                    return
                head, data = self.head[:end], self.head[end + 4 :]
                if head[9:12] != b"200" or (found := length_of.search(head)) is None:
                    self.lost = True  # a status or framing the floor does not handle: the file fails
                    self.transport.close()
                    return
                self.remaining = int(found.group(1))
            if data:
                self.body.append(data)
                self.remaining -= len(data)
            if self.remaining <= 0:
                self._wake()

        async def get(self, path: str) -> list[bytes]:
            self.head, self.body, self.remaining = b"", [], -1
            self.transport.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            while self.remaining != 0:
                if self.lost:
                    raise OSError(f"{path}: the connection broke off")
                self.waiter = asyncio.get_running_loop().create_future()
                await self.waiter
            return self.body

    async def get(path: str) -> list[bytes]:
        if idle:
            connection = idle.pop()
        else:
            _, connection = await asyncio.get_running_loop().create_connection(Connection, host, port)
        body = await connection.get(path)
        idle.append(connection)
        return body

    async def one(key: str) -> None:
        nonlocal total
        try:
            chunks, sidecar_chunks = await asyncio.gather(get(f"{root}/{key}"), get(f"{root}/{key}.CHECKSUM"))
            digest = hashlib.sha256()
            for chunk in chunks:
                digest.update(chunk)
            sidecar = b"".join(sidecar_chunks)
            if digest.hexdigest() != sidecar.split()[0].decode():
                raise OSError(f"{key}: SHA-256 differs from its sidecar")
            _floor_store(dest, key, chunks, sidecar, made)
            total += sum(map(len, chunks))
        except Exception as exc:  # reported in the result, and the run fails its check
            errors.append(f"{key}: {exc}")

    async def main() -> None:
        keys = iter(zips)

        async def worker() -> None:
            for key in keys:
                await one(key)

        await asyncio.gather(*(worker() for _ in range(128)))

    try:
        import uvloop
    except ImportError:
        asyncio.run(main())
    else:
        uvloop.run(main())
    return total, errors


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
    archive.add_argument("--storage-option", action="append", default=[], help="storage option NAME=VALUE")
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
