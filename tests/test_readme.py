"""The README's examples run as a user pastes them: the script form as a ``.py`` file, its archive URLs from the
environment (as a worker or a container gives them), against the fake archive."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

from binance_archive import Selection, plan
from binance_archive.testing import FakeArchiveServer, build_archive

README = Path(__file__).parent.parent / "README.md"


def script_example() -> str:
    text = README.read_text()
    match = re.search(r"<!-- script-example -->\n```python\n(.*?)```", text, flags=re.S)
    assert match, "README.md lost its script example (or its <!-- script-example --> marker)"
    return match.group(1)


def test_the_readme_script_runs_as_a_file(tmp_path: Path) -> None:
    script = script_example()
    # The selection the script downloads, read from the script itself rather than written again here.
    namespace: dict[str, object] = {}
    exec(script.split("\n\nasync def main", 1)[0], namespace)  # the imports and the selection, nothing run
    selection = namespace["selection"]
    assert isinstance(selection, Selection)
    files = list(plan(selection))
    build_archive(tmp_path / "upstream", files, max_rows=3)
    (tmp_path / "mirror.py").write_text(script)

    async def run() -> tuple[int, str, str]:
        async with FakeArchiveServer(tmp_path / "upstream") as server:
            env = {**os.environ, "BINANCE_ARCHIVE_BASE_URL": server.base_url,
                   "BINANCE_ARCHIVE_LISTING_URL": server.listing_url}  # fmt: skip
            process = await asyncio.create_subprocess_exec(
                sys.executable, "mirror.py", cwd=tmp_path, env=env,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            out, err = await asyncio.wait_for(process.communicate(), 120)
            return process.returncode or 0, out.decode(), err.decode()

    status, out, err = asyncio.run(run())
    assert status == 0, err
    assert out.startswith(f"{len(files)} downloaded, 0 skipped, 0 missing, 0 failed"), out
    stored = {p.relative_to(tmp_path / "binance-data").as_posix() for p in (tmp_path / "binance-data").rglob("*.zip")}
    assert stored == {f.key for f in files}
