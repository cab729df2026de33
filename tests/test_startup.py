"""What the command imports at start-up: nothing a run does not use before its first request (#21: a download of a
few large files is limited by the interpreter's start-up and imports)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from binance_archive import Selection
from binance_archive.testing import FakeArchiveServer, build_archive

from .engine.scenario import planned

# Imported only by what needs them: --processes N; a TOML configuration; a refused symbol's suggestions; signed
# s5cmd requests; the tables; the S3 storage's client.
NEVER_FOR_A_DOWNLOAD = (
    "binance_archive.cli.processes",
    "pickle",
    "tomllib",
    "difflib",
    "configparser",
    "binance_archive.common.aws",
    "binance_archive.tables",
    "pyarrow",
    "obstore",
)
# Not for --help either: no event loop, no sockets.
NEVER_FOR_HELP = (*NEVER_FOR_A_DOWNLOAD, "asyncio", "ssl", "socket", "subprocess")


def _modules_after(code: str) -> set[str]:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_the_command_imports_no_event_loop_and_no_optional_parts_to_start() -> None:
    """``binance-archive download --help`` (and ``plan``, ``catalog``) import what parsing needs: no asyncio, no sockets,
    not the modules of ``--processes``, configuration files or suggestions."""
    loaded = _modules_after(
        "import contextlib, io, json, sys\n"
        "from binance_archive.cli import console_main\n"
        "sys.argv = ['binance-archive', 'download', '--help']\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.suppress(SystemExit):\n"
        "    console_main()\n"
        "assert '--storage-option' in out.getvalue()\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    assert not loaded & set(NEVER_FOR_HELP), sorted(loaded & set(NEVER_FOR_HELP))


async def test_a_download_imports_only_what_it_uses(tmp_path: Path) -> None:
    """A one-file download, whole, in a process of its own: the modules of --processes, TOML files, the AWS
    helpers, suggestions, the tables and the S3 client are never imported."""
    selection = Selection(markets="spot", data_types="klines", symbols="BTCUSDT", intervals="1d",
                          start="2024-01-01", end="2024-01-31", periods="monthly")  # fmt: skip
    build_archive(tmp_path / "upstream", planned(selection), max_rows=5)
    async with FakeArchiveServer(tmp_path / "upstream") as server:
        argv = ["download", "--market", "spot", "--data-type", "klines", "--symbol", "BTCUSDT", "--interval", "1d",
                "--start", "2024-01-01", "--end", "2024-01-31", "--period", "monthly", "--today", "2026-11-22",
                "--to", str(tmp_path / "mirror"), "--base-url", server.base_url, "--listing-url",
                server.listing_url, "--quiet"]  # fmt: skip
        code = (
            "import json, sys\n"
            "from binance_archive.cli import main\n"
            f"assert main({argv!r}) == 0\n"
            "print(json.dumps(sorted(sys.modules)))\n"
        )
        import asyncio

        loaded = await asyncio.to_thread(_modules_after, code)
        assert server.stats.zip_requests == 1
    assert (tmp_path / "mirror" / planned(selection)[0].key).exists()
    assert "binance_archive.engine.run" in loaded  # the measurement measured a download
    assert not loaded & set(NEVER_FOR_A_DOWNLOAD), sorted(loaded & set(NEVER_FOR_A_DOWNLOAD))
