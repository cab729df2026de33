"""What users touch beyond the engine: the sync wrapper, progress displays, the demo, `backends`."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest

import binance_archive
from binance_archive import Archive
from binance_archive.cli import main
from binance_archive.events import Event, EventKind
from binance_archive.progress import Counter, TerminalProgress
from binance_archive.testing import FakeArchiveServer, build_archive

from .engine.scenario import FUNDING, TODAY, planned


def test_download_sync_runs_its_own_loop(tmp_path: Path) -> None:
    build_archive(tmp_path / "up", planned(FUNDING), max_rows=3)

    async def serve_and_download() -> tuple[int, int]:
        async with FakeArchiveServer(tmp_path / "up") as server:
            archive = Archive(tmp_path / "m", base_url=server.base_url)
            # A synchronous caller in another thread (a script), while this loop serves.
            report = await asyncio.to_thread(archive.download_sync, FUNDING, today=TODAY)
            return report.downloaded, report.failed

    assert asyncio.run(serve_and_download()) == (2, 0)


async def test_download_sync_refuses_a_running_loop(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"use `await archive.download\(...\)`"):
        Archive(tmp_path).download_sync(FUNDING, today=TODAY)


async def test_top_level_download_function(tmp_path: Path) -> None:
    build_archive(tmp_path / "up", planned(FUNDING), max_rows=3)
    async with FakeArchiveServer(tmp_path / "up") as server:
        report = await binance_archive.download(
            FUNDING, tmp_path / "m", base_url=server.base_url, today=TODAY, concurrency=2
        )
    assert report.downloaded == 2


def test_terminal_progress_draws_a_status_line() -> None:
    stream = io.StringIO()
    bar = TerminalProgress(stream, total=4, interval=0)
    file = planned(FUNDING)[0]
    for kind, size in [
        (EventKind.BYTES, 1_500_000),
        (EventKind.DONE, 1_500_000),
        (EventKind.SKIPPED, 0),
        (EventKind.MISSING, 0),
    ]:
        bar(Event(kind, file, size))
    bar.close()
    last = stream.getvalue().rsplit("\r", 1)[1]
    assert "[##################......] 3/4 files" in last
    assert "1.5 MB" in last and "1 new 1 skipped 1 missing 0 failed" in last and last.endswith("\n")


def test_counter_counts_every_kind() -> None:
    counter = Counter()
    file = planned(FUNDING)[0]
    for kind in [EventKind.DONE, EventKind.DONE, EventKind.FAILED, EventKind.RETRY, EventKind.PLANNED]:
        counter(Event(kind, file))
    assert (counter.done, counter.failed, counter.retries, counter.finished) == (2, 1, 1, 3)


def test_backends_command_lists_the_builtins() -> None:
    out = io.StringIO()
    assert main(["backends"], out=out) == 0
    text = out.getvalue()
    assert "transports:" in text and "\n  http " in text
    assert "storages:" in text and "\n  local " in text and "(file://)" in text


def test_demo_command(tmp_path: Path) -> None:
    out = io.StringIO()
    assert main(["demo", "--to", str(tmp_path / "demo")], out=out) == 0
    text = out.getvalue()
    assert "0 failed" in text and ", 0 problems" in text and "second run (resume): 0 downloaded" in text
    assert any((tmp_path / "demo" / "data" / "futures" / "um").rglob("币安人生USDT-1h-*.zip"))
    assert not list(tmp_path.glob("demo-upstream")), "the generated upstream is removed unless --keep-upstream"


@pytest.mark.parametrize("command", ["plan", "download", "symbols", "backends", "verify", "demo", "catalog"])
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    help_text = capsys.readouterr().out
    assert f"binance-archive {command}" in help_text
    assert "examples:" in help_text
