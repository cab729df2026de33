"""The rooms' boundaries (docs/architecture.md), as tests: import-linter's contracts in pyproject.toml, no private
name imported across modules, and modules small enough to read."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import binance_archive

PACKAGE = Path(binance_archive.__file__).parent
REPO = PACKAGE.parent
MAX_LINES = 500
# A module that must be one piece, with why; none does today.
ONE_PIECE: dict[str, str] = {}


def _contracts() -> list[dict[str, object]]:
    with open(REPO / "pyproject.toml", "rb") as handle:
        contracts: list[dict[str, object]] = tomllib.load(handle)["tool"]["importlinter"]["contracts"]
    return contracts


def test_the_import_contracts_are_kept() -> None:
    # In a process of its own: import-linter configures logging as a command does (disabling other loggers).
    code = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True))"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert "Contracts: " in result.stdout, result.stdout + result.stderr
    assert result.returncode == 0, f"an import crosses a boundary:\n{result.stdout}"


def test_every_room_has_its_place_in_the_layers() -> None:
    """A new top-level module or package must be placed in the one-way flow (or the contracts would skip it)."""
    layers = next(c for c in _contracts() if c["type"] == "layers")["layers"]
    assert isinstance(layers, list)
    placed = {name.strip() for layer in layers for name in layer.split("|")}
    rooms = {
        f"binance_archive.{path.stem if path.is_file() else path.name}"
        for path in PACKAGE.iterdir()
        if (path.suffix == ".py" and path.stem != "__init__") or (path / "__init__.py").is_file()
    }
    assert "binance_archive.engine" in rooms and "binance_archive.errors" in rooms
    assert rooms - placed == set(), "place these in the layers contract of pyproject.toml"
    assert placed - rooms == set(), "the layers contract names rooms that do not exist"


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _is_module(name: str) -> bool:
    path = REPO.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def private_imports(source: str, module: str) -> list[str]:
    """Where ``source`` (the module ``module``) uses another module's private name: ``from m import _x``, or
    ``m._x`` on a module it imported."""
    found: list[str] = []
    modules: set[str] = set()  # local names bound to modules of the package
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("binance_archive"):
            for alias in node.names:
                if node.module != module and _is_private(alias.name):
                    found.append(f"from {node.module} import {alias.name}")
                if _is_module(f"{node.module}.{alias.name}"):
                    modules.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("binance_archive") and alias.asname:
                    modules.add(alias.asname)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in modules
            and _is_private(node.attr)
        ):
            found.append(f"{node.value.id}.{node.attr}")
    return found


def test_the_private_name_check_can_fail() -> None:
    assert private_imports("from binance_archive.report import _converter", "binance_archive.cli") == [
        "from binance_archive.report import _converter"
    ]
    assert private_imports("from binance_archive.engine import run as r\nr._PROBLEMS", "binance_archive.x") == [
        "r._PROBLEMS"
    ]
    assert private_imports("from binance_archive.report import Report, __all__", "binance_archive.cli") == []


def test_no_module_imports_another_modules_private_names() -> None:
    offences = {
        _module_name(path): found
        for path in sorted(PACKAGE.rglob("*.py"))
        if (found := private_imports(path.read_text(encoding="utf-8"), _module_name(path)))
    }
    assert offences == {}, "make the name public in the module that owns it, or keep the use inside that module"


def test_modules_stay_small() -> None:
    sizes = {_module_name(path): len(path.read_text(encoding="utf-8").splitlines()) for path in PACKAGE.rglob("*.py")}
    assert len(sizes) > 50
    large = {name: lines for name, lines in sizes.items() if lines > MAX_LINES and name not in ONE_PIECE}
    assert large == {}, f"split these (or say in ONE_PIECE why one must stay one piece): over {MAX_LINES} lines"
