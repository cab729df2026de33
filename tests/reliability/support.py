"""Helpers of the reliability suite: the backend matrix (moto: tests/support/moto.py) and the mirror invariants.

Every fake here is a real server on loopback (the fake archive, moto's S3 server, small aiohttp servers in
the tests), never a mock of the library's own functions.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import shutil
import signal
import socket
import sys
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import pytest

from binance_archive import Archive, RetryPolicy, Selection
from binance_archive.backends import Storage
from binance_archive.cli import main
from binance_archive.core import CHECKSUM_SUFFIX, ArchiveFile
from binance_archive.testing import FakeArchiveServer
from binance_archive.verification import ProblemKind, VerifyReport

from ..support.moto import MotoS3

TRANSPORTS = ("http", "http-pyreqwest", "s5cmd", "mirror")
"""``http`` is the http transport through its native client, ``http-pyreqwest`` through pyreqwest (the default
where it is installed, as here); aiohttp is run by the tests that name each client."""
STORAGES = ("local", "s3")
MATRIX = [(t, s) for t in TRANSPORTS for s in STORAGES]

# Quick retries: the faults are injected, so nothing is gained by waiting long between tries.
QUICK_RETRY = RetryPolicy(attempts=6, backoff=0.005, max_backoff=0.05, max_retry_after=0.05, verify_attempts=3)


def s5cmd_or_skip() -> None:
    from binance_archive.errors import ConfigurationError
    from binance_archive.transports.s5cmd import find_binary

    try:
        find_binary()
    except ConfigurationError as exc:
        pytest.skip(f"s5cmd is not installed: {exc}")


async def end_cli(process: asyncio.subprocess.Process, *, kill: bool, bound: float) -> bool:
    """SIGKILL the CLI (if ``kill``), reap it, and return whether it was killed while running.

    It may have finished just before the signal: then it was not a kill, and must have succeeded. (Status 255:
    it ended just as it was signalled; Popen.send_signal() then reaps it itself and asyncio's child watcher,
    finding no child left, reports 255. It finished on its own: not a kill, and not a failure.)
    """
    if kill:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGKILL)
    stderr = await asyncio.wait_for(process.stderr.read(), bound) if process.stderr else b""
    status = await asyncio.wait_for(process.wait(), bound)
    killed = status == -signal.SIGKILL
    assert killed or status in (0, 255), stderr.decode(errors="replace")
    return killed


def run_main(argv: list[str], *, usage_errors: bool = False) -> tuple[int, str, str]:
    """The CLI in process: (status, stdout, stderr). Any traceback fails the calling test; with ``usage_errors``,
    argparse's own errors (SystemExit 2, usage on stderr) count as a status instead."""
    out, err = io.StringIO(), io.StringIO()
    saved = sys.stderr
    sys.stderr = err
    try:
        status = main(argv, out=out)
    except SystemExit as exc:
        if not usage_errors:
            raise
        status = exc.code if isinstance(exc.code, int) else 2
    finally:
        sys.stderr = saved
    return status, out.getvalue(), err.getvalue()


def config_toml(*selections: Selection) -> str:
    """A ``download --config`` file holding ``selections``, as a user would write it (one table per selection)."""

    def strings(values: Any) -> str:
        return "[" + ", ".join(json.dumps(getattr(v, "value", v)) for v in values) + "]"

    tables = []
    for selection in selections:
        lines = ["[[selection]]"]
        lines += [f"{name} = {strings(getattr(selection, name))}" for name in ("markets", "data_types", "symbols")]
        if selection.intervals:
            lines.append(f"intervals = {strings(selection.intervals)}")
        lines += [f"{name} = {getattr(selection, name)}" for name in ("start", "end") if getattr(selection, name)]
        periods = selection.periods
        lines.append(f"periods = {json.dumps(periods) if isinstance(periods, str) else strings(periods)}")
        tables.append("\n".join(lines))
    return "\n\n".join(tables) + "\n"


def s3_keys(client: Any, bucket: str, prefix: str) -> list[str]:
    """Every object key under ``prefix`` (a folder, with its trailing slash)."""
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def s3_uploads(client: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    """The multipart uploads under ``prefix`` begun and neither completed nor aborted (Key, UploadId, ...)."""
    uploads: list[dict[str, Any]] = []
    pages = client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix)
    for page in pages:
        uploads += page.get("Uploads", [])
    return uploads


def s3_delete_prefix(client: Any, bucket: str, prefix: str) -> None:
    """Remove every object under ``prefix``, and abort every multipart upload there."""
    keys = s3_keys(client, bucket, prefix)
    for start in range(0, len(keys), 1000):
        batch = [{"Key": key} for key in keys[start : start + 1000]]
        client.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
    for upload in s3_uploads(client, bucket, prefix):
        client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])


def s3_copy_prefix(client: Any, bucket: str, source: str, target: str) -> None:
    """Copy every object under the folder ``source`` to the same key under ``target`` (server side)."""

    def copy(key: str) -> None:
        client.copy_object(Bucket=bucket, Key=target + key[len(source) :], CopySource={"Bucket": bucket, "Key": key})

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(copy, s3_keys(client, bucket, source)))


@attrs.define
class Backends:
    """One cell of the matrix: builds Archives for a transport and a storage over one upstream tree."""

    transport: str
    storage: str
    upstream: Path
    server: FakeArchiveServer | None
    mirror_location: str
    storage_options: dict[str, Any]
    staging: Path

    def archive(self, **kwargs: Any) -> Archive:
        options: dict[str, Any] = dict(kwargs.pop("transport_options", {}))
        base_url: str | None
        listing_url: str | None = None
        transport = self.transport
        if transport in ("http", "http-pyreqwest"):
            assert self.server is not None
            base_url, listing_url = self.server.base_url, self.server.listing_url
            options.setdefault("client", "pyreqwest" if transport == "http-pyreqwest" else "native")
            transport = "http"
        elif self.transport == "s5cmd":
            assert self.server is not None
            # s5cmd speaks S3: the fake archive's path-style bucket face.
            base_url = self.server.listing_url
            options.setdefault("region", "ap-northeast-1")
            options.setdefault("staging_dir", str(self.staging))
            options.setdefault("batch_wait", 0.005)
        else:
            base_url = str(self.upstream)
        kwargs.setdefault("retry", QUICK_RETRY)
        return Archive(
            self.mirror_location,
            transport=transport,
            transport_options=options,
            storage_options=dict(self.storage_options),
            base_url=base_url,
            listing_url=listing_url,
            entry_points=False,
            **kwargs,
        )


@asynccontextmanager
async def backends(
    transport: str, storage: str, upstream: Path, tmp_path: Path, moto: MotoS3 | None = None, **faults: Any
) -> AsyncIterator[Backends]:
    """The fake archive (for the network transports) and a fresh mirror location for one matrix cell."""
    if transport == "s5cmd":
        s5cmd_or_skip()
    if storage == "s3":
        assert moto is not None
        location = f"s3://{moto.bucket()}/mirror"
        options = moto.storage_options()
    else:
        location = str(tmp_path / "mirror")
        options = {}
    staging = tmp_path / "staging"
    staging.mkdir(exist_ok=True)
    if transport == "mirror":
        yield Backends(transport, storage, upstream, None, location, options, staging)
        return
    async with FakeArchiveServer(upstream, **faults) as server:
        yield Backends(transport, storage, upstream, server, location, options, staging)


# -- invariants --------------------------------------------------------------------------------------------


async def stored_keys(storage: Storage) -> dict[str, int]:
    """Every object the storage lists (temporary files excluded), with its size."""
    return {obj.key: obj.size async for obj in storage.list("data/")}


async def read_all(storage: Storage, key: str) -> bytes:
    return b"".join([chunk async for chunk in storage.read(key)])


async def assert_mirror_trustworthy(archive: Archive, upstream: Path | None = None) -> dict[str, int]:
    """No zip under its final name without its sidecar, or with a sidecar it does not match; no stray file.

    ``Archive.verify`` re-hashes every stored zip against its stored sidecar. With ``upstream``, every stored
    sidecar must also equal the upstream one (so, by SHA-256, every stored zip equals the upstream zip).
    Returns the stored keys and sizes.
    """
    async with archive:
        report = await archive.verify()
        keys = await stored_keys(archive.storage)
        if upstream is not None:
            for key in keys:
                if key.endswith(CHECKSUM_SUFFIX):
                    stored = await read_all(archive.storage, key)
                    assert stored == (upstream / key).read_bytes(), f"stored sidecar differs from upstream: {key}"
    assert report.ok, report.problems
    for key in keys:
        partner = key[: -len(CHECKSUM_SUFFIX)] if key.endswith(CHECKSUM_SUFFIX) else key + CHECKSUM_SUFFIX
        assert partner in keys, f"{key} is stored without {partner}"
    return keys


def corrupt_problems(report: VerifyReport) -> list[Any]:
    return [p for p in report.problems if p.kind is ProblemKind.CORRUPT]


def temp_files(root: Path) -> list[Path]:
    return sorted(root.rglob(".binance-archive-*")) if root.exists() else []


def copy_tree(source: Path, target: Path) -> None:
    shutil.copytree(source, target, dirs_exist_ok=True)


def zip_keys(files: list[ArchiveFile]) -> set[str]:
    return {f.key for f in files}


async def wait_until(predicate: Any, bound: float = 5.0) -> bool:
    """Poll ``predicate`` until true or ``bound`` seconds passed (a bound, never a measurement)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + bound
    while not predicate():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


class ServerThread:
    """A FakeArchiveServer on its own event loop in a thread, for code that runs its own loop (the CLI's main)."""

    def __init__(self, root: Path, **knobs: Any) -> None:
        self.server = FakeArchiveServer(root, **knobs)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-archive", daemon=True)

    def __enter__(self) -> FakeArchiveServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self._loop).result(10)
        return self.server

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.server.close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


def closed_port() -> int:
    """A loopback port nobody listens on (connections to it are refused at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RecordingProxy:
    """A TCP proxy on loopback in front of a server, recording the request heads exactly as the client sent them."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.request_lines: list[bytes] = []
        self.sent = bytearray()  # every byte the client sent
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> RecordingProxy:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter, record: bool) -> None:
            try:
                while data := await source.read(65536):
                    if record:
                        self.sent += data
                        self.request_lines += [line for line in data.split(b"\r\n") if line.startswith(b"GET ")]
                    sink.write(data)
                    await sink.drain()
            except ConnectionError:
                pass
            finally:
                sink.close()

        await asyncio.gather(pump(reader, up_writer, True), pump(up_reader, writer, False))
