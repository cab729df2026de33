"""``binance-archive demo``: the whole job, end to end, against the built-in fake archive on loopback.

It builds a small but realistic archive (several markets and data types, daily and monthly files, a
non-ASCII symbol), serves it on 127.0.0.1 with a little latency, downloads it with a progress bar, verifies
the mirror, and runs the download once more to show that nothing is fetched twice.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TextIO

from binance_archive.archive import Archive
from binance_archive.core.planning import plan, utc_today
from binance_archive.progress import TerminalProgress
from binance_archive.runner import run as run_loop
from binance_archive.testing import FakeArchiveServer
from binance_archive.testing.tree import build_archive, demo_max_rows, demo_selections

__all__ = ["run_demo"]


def run_demo(to: str, *, out: TextIO, quiet: bool = False, keep_upstream: bool = False) -> int:
    """Run the demo; the mirror goes to ``to``. Returns the exit status."""
    return run_loop(_demo(Path(to), out, quiet=quiet, keep_upstream=keep_upstream))


async def _demo(mirror: Path, out: TextIO, *, quiet: bool, keep_upstream: bool) -> int:
    def say(text: str) -> None:
        if not quiet:
            out.write(text + "\n")
            out.flush()

    today = utc_today()
    selections = demo_selections(today)
    upstream = (
        mirror.parent / f"{mirror.name}-upstream"
        if keep_upstream
        else Path(tempfile.mkdtemp(prefix="binance-archive-demo-"))
    )
    try:
        files = [f for s in selections for f in plan(s, today=today)]
        say(f"building a fake archive of {len(files)} files in {upstream} ...")
        await asyncio.to_thread(build_archive, upstream, files, max_rows=demo_max_rows)
        async with FakeArchiveServer(upstream, latency=0.005) as server:
            say(f"serving it at {server.base_url} (listing {server.listing_url})")
            say(f"downloading {len(selections)} selections into {mirror} ...")
            bar = TerminalProgress(sys.stderr, len(files)) if not quiet and sys.stderr.isatty() else None
            archive = Archive(mirror, base_url=server.base_url, listing_url=server.listing_url)
            async with archive:
                report = await archive.download(selections, today=today, progress=bar)
                if bar is not None:
                    bar.close()
                say(report.summary())
                verified = await archive.verify()
                say(f"verified: {verified.checked} files re-hashed against their sidecars, "
                    f"{len(verified.problems)} problems")  # fmt: skip
                again = await archive.download(selections, today=today)
                say(f"second run (resume): {again.downloaded} downloaded, {again.skipped} skipped")
        say("")
        say(await asyncio.to_thread(_describe, mirror))
        ok = report.ok and verified.ok and again.downloaded == 0
        return 0 if ok else 1
    finally:
        if not keep_upstream:
            shutil.rmtree(upstream, ignore_errors=True)


def _describe(mirror: Path) -> str:
    """Where the files are: the mirror's folders, with how many zips each holds."""
    lines = [f"the mirror is in {mirror.resolve()}, laid out like data.binance.vision:"]
    folders = sorted({p.parent for p in mirror.rglob("*.zip")})
    for path in folders[:10]:
        count = sum(1 for _ in path.glob("*.zip"))
        zips = "1 zip" if count == 1 else f"{count} zips"
        lines.append(f"  {path.relative_to(mirror)}/  ({zips}, each with its .CHECKSUM)")
    if len(folders) > 10:
        lines.append(f"  ... and {len(folders) - 10} more folders")
    return "\n".join(lines)
