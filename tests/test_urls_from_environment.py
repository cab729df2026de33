"""The archive's URLs from the environment (BINANCE_ARCHIVE_BASE_URL, BINANCE_ARCHIVE_LISTING_URL), set once for
workers and containers; options given explicitly win."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from asyncio.subprocess import PIPE
from pathlib import Path

import pytest

from binance_archive import Archive, ConfigurationError, Selection
from binance_archive.config import RunConfig
from binance_archive.testing import FakeArchiveServer, build_archive

from .engine.scenario import TODAY, planned

SELECTION = Selection(
    markets="spot", data_types="klines", symbols="BTCUSDT", intervals="1d", start="2024-01-01", end="2024-02-03"
)
DEAD = "http://127.0.0.1:9"  # the discard port: nothing answers there


@pytest.fixture
def upstream(tmp_path: Path) -> Path:
    root = tmp_path / "upstream"
    build_archive(root, planned(SELECTION), max_rows=3)
    return root


async def test_the_archive_urls_come_from_the_environment(
    upstream: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with FakeArchiveServer(upstream) as server:
        monkeypatch.setenv("BINANCE_ARCHIVE_BASE_URL", server.base_url)
        monkeypatch.setenv("BINANCE_ARCHIVE_LISTING_URL", server.listing_url)
        config = RunConfig(selections=(SELECTION,), to=str(tmp_path / "mirror"), today=TODAY)
        archive = config.archive()
        assert archive.transport.base_url == server.base_url  # type: ignore[attr-defined]
        assert archive.transport.listing_is_authoritative
        report = await config.run(archive)
        # The command, as a worker or a container runs it: no URL on its command line, two processes.
        argv = ["download", "--market", "spot", "--data-type", "klines", "--symbol", "BTCUSDT", "--interval", "1d",
                "--start", "2024-01-01", "--end", "2024-02-03", "--today", TODAY.isoformat(),
                "--to", str(tmp_path / "mirror2"), "--processes", "2", "--json"]  # fmt: skip
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "binance_archive", *argv, stdout=PIPE, stderr=PIPE, env=dict(os.environ)
        )
        out, err = await process.communicate()
    assert report.ok and report.downloaded == len(planned(SELECTION))
    assert process.returncode == 0, err.decode()
    assert json.loads(out)["downloaded"] == len(planned(SELECTION))


async def test_options_given_win_over_the_environment(
    upstream: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BINANCE_ARCHIVE_BASE_URL", DEAD)
    monkeypatch.setenv("BINANCE_ARCHIVE_LISTING_URL", DEAD + "/bucket")
    async with FakeArchiveServer(upstream) as server:
        archive = Archive(tmp_path / "mirror", base_url=server.base_url, listing_url=server.listing_url)
        report = await archive.download(SELECTION, today=TODAY)
        assert await archive.symbols("spot", "klines") == ["BTCUSDT"]
    assert report.ok and report.downloaded == len(planned(SELECTION))


def test_a_bad_url_in_the_environment_is_named_with_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINANCE_ARCHIVE_LISTING_URL", "ftp://example.com/bucket")
    with pytest.raises(ConfigurationError, match=r"invalid listing URL \(from \$BINANCE_ARCHIVE_LISTING_URL\)"):
        Archive("mirror")


async def test_a_transport_whose_urls_are_something_else_ignores_them(
    upstream: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The mirror transport's base_url is a folder: the variables, set for HTTP workers, must not reach it.
    monkeypatch.setenv("BINANCE_ARCHIVE_BASE_URL", DEAD)
    monkeypatch.setenv("BINANCE_ARCHIVE_LISTING_URL", DEAD + "/bucket")
    archive = Archive(tmp_path / "mirror", transport="mirror", transport_options={"root": str(upstream)})
    report = await archive.download(SELECTION, today=TODAY)
    assert report.ok and report.downloaded == len(planned(SELECTION))
