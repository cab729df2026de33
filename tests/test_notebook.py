"""The notebook example in docs/ is executed cell by cell, with top-level await as in Jupyter."""

from __future__ import annotations

import ast
import inspect
import json
from pathlib import Path
from typing import Any

import pytest

NOTEBOOK = Path(__file__).parent.parent / "docs" / "examples" / "notebook.ipynb"


async def run_notebook(path: Path) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "__notebook__"}
    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    for number, cell in enumerate(cells, 1):
        source = "".join(cell["source"])
        code = compile(source, f"<cell {number}>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        result = eval(code, namespace)
        if inspect.iscoroutine(result):
            await result
    return namespace


async def test_notebook_runs_against_the_fake_archive(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("IPython", reason="the notebook's progress bar needs IPython (in the test extra)")
    ns = await run_notebook(NOTEBOOK)
    report, again, checked = ns["report"], ns["again"], ns["checked"]
    assert report.ok and report.downloaded == len(ns["files"]) + 5
    assert again.downloaded == 0 and again.skipped == report.downloaded
    assert checked.ok and checked.checked == report.downloaded
    assert ns["symbols"] == ["BTCUSDT", "ETHUSDT"]
    assert ns["unit"] == "µs" and len(ns["rows"]) > 0
    # The tables: every downloaded file converted, read back typed, and queried by DuckDB.
    assert ns["converted"].ok and ns["converted"].converted == report.downloaded
    assert ns["klines"].num_rows > 0 and str(ns["klines"].schema.field("open_time").type) == "timestamp[us, tz=UTC]"
    assert {row[0] for row in ns["daily"]} == {"BTCUSDT", "ETHUSDT"} and all(row[2] > 0 for row in ns["daily"])
    # The bar was displayed (as its text line outside Jupyter) and counted every file.
    assert f"0/{report.downloaded} files" in capsys.readouterr().out
    assert f"{report.downloaded}/{report.downloaded} files" in ns["bar"].line()
