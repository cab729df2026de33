"""Ctrl-C: the terminal signals the whole process group at a random moment of a download.

A terminal sends SIGINT to every process of its foreground group: the command and each process of
``download --processes N`` get it at once (and the parent passes it on to its processes, so each may get it twice).
Each trial starts the command in a session of its own, waits until the fake archive has seen a random number of its
requests, signals the group with ``os.killpg``, and checks that:

- every process stops starting files at once: after the signal, the archive sees no more requests for zips than
  there were files in flight (``--concurrency``);
- every process ends promptly (a generous bound here; the figures measured are printed), the command with
  status 130, and nothing is left running (s5cmd's processes, in sessions of their own, included);
- standard error holds the one line that says so, and no traceback;
- the mirror holds no temporary file and nothing corrupt (at most a zip whose sidecar was not written yet).

Before the fix, the pyreqwest client let about one cancelled request in four answer as if nothing happened, so
workers went on starting files for 8-20 s until the parent killed its processes, and the parent's second SIGINT
landed in the middle of the loop's shutdown as tracebacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import signal
import statistics
import sys
from pathlib import Path

import pytest

from binance_archive import Archive, Selection
from binance_archive.cli.processes import START_ENV
from binance_archive.testing import FakeArchiveServer
from binance_archive.verification import ProblemKind

from .scenario import TODAY, build, planned
from .support import s5cmd_or_skip, temp_files, wait_until

# 4 symbols x 121 days of small files: a second or two of downloading at 64 files in flight and 20 ms a request.
# Many requests in flight, answered all the time, are what made pyreqwest lose cancellations.
SELECTION = Selection(
    markets="spot", data_types="klines", symbols=("BTCUSDT", "ETHUSDT", "BNBUSDT", "XRPUSDT"), intervals="1m",
    start="2024-01-01", end="2024-04-30", periods="daily",
)  # fmt: skip
CONCURRENCY = 64
LATENCY = 0.02
BOUND = 5.0  # seconds a stopped command may take at most (it takes ~0.1): a bound that catches a hang
RUN_BOUND = 60.0  # seconds a download may take to make the requests a trial waits for
INTERRUPTED = "binance-archive: interrupted; files in flight were discarded, a re-run resumes\n"


def command(mirror: Path, server: FakeArchiveServer, *, processes: int, transport: str) -> list[str]:
    args = [sys.executable, "-m", "binance_archive", "download", "--quiet", "--market", "spot",
            "--data-type", "klines", "--symbol", ",".join(SELECTION.symbols), "--interval", "1m",
            "--start", "2024-01-01", "--end", "2024-04-30", "--period", "daily", "--today", TODAY.isoformat(),
            "--to", str(mirror), "--concurrency", str(CONCURRENCY), "--processes", str(processes)]  # fmt: skip
    if transport == "s5cmd":
        return [*args, "--transport", "s5cmd", "--base-url", server.listing_url, "--transport-option",
                "region=us-east-1"]  # fmt: skip
    return [*args, "--base-url", server.base_url, "--transport-option", f"client={transport}"]


def group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def s5cmd_processes(mirror: Path) -> list[int]:
    """s5cmd processes working for ``mirror`` (their batch files are in its staging folder)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                cmdline = handle.read().decode(errors="replace")
        except OSError:
            continue
        if "s5cmd" in cmdline and str(mirror) in cmdline:
            found.append(int(pid))
    return found


async def interrupt_once(
    server: FakeArchiveServer, mirror: Path, rng: random.Random, *, processes: int, transport: str, start: str
) -> float | None:
    """One trial; the seconds from the signal until every process of the group is gone (None: the run ended
    before the signal came)."""
    shutil.rmtree(mirror, ignore_errors=True)
    full_run = 2 * len(planned(SELECTION))  # a zip and its sidecar per file
    before = server.stats.requests
    process = await asyncio.create_subprocess_exec(
        *command(mirror, server, processes=processes, transport=transport),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, start_new_session=True,
        env={**os.environ, START_ENV: start},
    )  # fmt: skip
    loop = asyncio.get_running_loop()
    # Counting requests rather than seconds keeps the signal inside the download however loaded the machine is.
    wanted = rng.randint(1, int(0.8 * full_run))
    started = await wait_until(
        lambda: server.stats.requests - before >= wanted or process.returncode is not None, RUN_BOUND
    )
    assert started, "the download made too few requests"
    await asyncio.sleep(rng.uniform(0, 0.02))  # mid-request, mid-write, or between two files
    zips_at_signal = server.stats.zip_requests
    signalled = loop.time()
    with contextlib.suppress(ProcessLookupError):  # it ended just before
        os.killpg(process.pid, signal.SIGINT)
    assert process.stderr is not None
    try:
        err = (await asyncio.wait_for(process.stderr.read(), BOUND)).decode(errors="replace")  # EOF: all are gone
        status = await asyncio.wait_for(process.wait(), BOUND)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.communicate()
        pytest.fail(f"the command was still running {BOUND:g} s after Ctrl-C (killed now)")
    assert await wait_until(lambda: not group_alive(process.pid), BOUND), "a process of the group outlived the run"
    gone = loop.time() - signalled
    zips_after = server.stats.zip_requests - zips_at_signal
    if status == 0 and err == "":
        return None  # it finished just before the signal
    assert status == 130, err
    assert err == INTERRUPTED, f"status {status}, standard error:\n{err}"
    if transport == "s5cmd":
        assert await wait_until(lambda: not s5cmd_processes(mirror), BOUND), "an s5cmd process outlived the run"
    else:
        assert zips_after <= CONCURRENCY, f"{zips_after} zips requested after the signal: new files were started"
    assert not temp_files(mirror), temp_files(mirror)
    if mirror.exists():
        report = await Archive(mirror, entry_points=False).verify()
        problems = [p for p in report.problems if p.kind is not ProblemKind.UNVERIFIED]
        assert not problems, problems
    return gone


@pytest.mark.parametrize(
    ("processes", "transport", "start", "trials"),
    [
        (2, "native", "fork", 6),
        (2, "pyreqwest", "fork", 5),
        (2, "aiohttp", "spawn", 5),
        (1, "native", "auto", 5),
        (1, "pyreqwest", "auto", 4),
        (1, "aiohttp", "auto", 3),
        (2, "s5cmd", "fork", 3),
    ],
)
async def test_ctrl_c_to_the_process_group_stops_every_process_at_once(
    tmp_path: Path, processes: int, transport: str, start: str, trials: int
) -> None:
    if transport == "s5cmd":
        s5cmd_or_skip()
    if transport == "pyreqwest":
        pytest.importorskip("pyreqwest", reason="pyreqwest is not installed (it is in the fast extra)")
    build(tmp_path / "upstream", SELECTION, max_rows=300)  # zips of ~17 KB: bodies of several chunks
    seed = int(os.environ.get("RELIABILITY_INTERRUPT_SEED", "20"))  # other seeds: other moments
    rng = random.Random(f"{seed}-{processes}-{transport}-{start}")
    times: list[float] = []
    async with FakeArchiveServer(tmp_path / "upstream", latency=LATENCY) as server:
        for _ in range(trials):
            gone = await interrupt_once(server, tmp_path / "mirror", rng, processes=processes, transport=transport,
                                        start=start)  # fmt: skip
            if gone is not None:
                times.append(gone)
    print(f"\nCtrl-C ({processes} processes, {transport}, {start}): {len(times)} of {trials} runs interrupted, "
          f"every process gone in {statistics.median(times):.2f} s (median), {max(times):.2f} s (max)")  # fmt: skip
    assert len(times) >= trials - 1, "the runs ended before the signal: the trials tested nothing"


@pytest.mark.parametrize("client", ["native", "pyreqwest", "aiohttp"])
async def test_a_cancelled_request_never_carries_on(tmp_path: Path, client: str) -> None:
    """Fifty requests in flight, cancelled together, ten times over: every one of them ends in CancelledError.

    pyreqwest 0.15 answers about one cancelled await in four (the response, a chunk of the body) as if nothing had
    happened; the HTTP transport honours the cancellation all the same.
    """
    if client == "pyreqwest":
        pytest.importorskip("pyreqwest", reason="pyreqwest is not installed (it is in the fast extra)")
    from binance_archive.transports.http import HttpTransport

    files = build(tmp_path / "upstream", SELECTION.with_(symbols="BTCUSDT", end="2024-01-02"), max_rows=300)
    carried_on = 0

    async def fetch_until_cancelled(transport: HttpTransport) -> None:
        nonlocal carried_on
        task = asyncio.current_task()
        assert task is not None
        while True:
            if task.cancelling():  # cancelled, yet still here: the cancellation was lost
                carried_on += 1
                return
            async with transport.get(files[0].key) as body:
                async for _ in body.chunks():
                    pass
            await transport.get_bytes(files[1].checksum_key, max_size=4096)

    async with FakeArchiveServer(tmp_path / "upstream") as server:
        async with HttpTransport(base_url=server.base_url, listing_url=server.listing_url, client=client) as transport:
            for _ in range(10):
                tasks = [asyncio.create_task(fetch_until_cancelled(transport)) for _ in range(50)]
                await asyncio.sleep(0.1)
                for task in tasks:
                    task.cancel()
                outcomes = await asyncio.gather(*tasks, return_exceptions=True)
                assert all(isinstance(o, asyncio.CancelledError) or o is None for o in outcomes), outcomes
        assert server.stats.requests > 500, "few requests were made: the test tests little"
    assert carried_on == 0, f"{carried_on} of 500 cancelled requests carried on"
