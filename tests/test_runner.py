"""The event loop the library starts where it runs one itself (the command line, download_sync)."""

from __future__ import annotations

import asyncio
import warnings

import pytest

from binance_archive.errors import ConfigurationError
from binance_archive.runner import LOOP_ENV, loop_name, run


async def _which() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_auto_prefers_uvloop_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("uvloop", reason="uvloop is not installed (it is in the test extra)")
    monkeypatch.delenv(LOOP_ENV, raising=False)
    assert loop_name() == "uvloop"
    assert run(_which()).startswith("uvloop")


def test_asyncio_can_be_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LOOP_ENV, "asyncio")
    assert loop_name() == "asyncio"
    assert run(_which()).startswith("asyncio")


def test_a_bad_choice_names_the_valid_ones_and_leaves_no_coroutine_unawaited(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LOOP_ENV, "trio")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a "coroutine was never awaited" warning would fail the test
        with pytest.raises(ConfigurationError, match="'trio' is not one of auto, uvloop, asyncio"):
            run(_which())


def test_the_command_tunes_the_collector_of_its_own_process_only() -> None:
    """``binance-archive`` freezes its start-up objects and widens the young generation; the library, imported
    into somebody else's process, leaves the collector alone."""
    import subprocess
    import sys

    probe = (
        "import gc, binance_archive.cli as cli\n"
        "before = gc.get_threshold()[0]\n"
        "cli.main = lambda: print(before, gc.get_threshold()[0], gc.get_freeze_count() > 0) or 0\n"
        "cli.console_main()\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["700", "10000", "True"], out
