"""A third-party plugin found through its entry point: selected by name, blocked by the environment variable.

``tests/plugin_pkg`` is a separate installable package (``pip install tests/plugin_pkg`` works). Here it is made
importable without pip: its ``.dist-info`` (the entry points taken from its ``pyproject.toml``) is written to a
temporary folder put on ``sys.path``, which is exactly where ``importlib.metadata`` (and so pluggy) looks.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from binance_archive import Archive, ConfigurationError
from binance_archive.backends import Transport
from binance_archive.plugins import BLOCK_ENV, make_plugin_manager
from binance_archive.testing.contracts import ContractArchive, TransportContract

from ._scenario import FILES, TODAY, UM, assert_mirrored, build_upstream

PACKAGE = Path(__file__).resolve().parents[1] / "plugin_pkg"


@pytest.fixture
def plugin_installed(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> str:
    """Install the plugin's metadata on sys.path for one test; yields the distribution's name."""
    project = tomllib.loads((PACKAGE / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    site = tmp_path_factory.mktemp("site-packages")
    dist_info = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n", encoding="utf-8"
    )
    groups = project["entry-points"]
    (dist_info / "entry_points.txt").write_text(
        "".join(
            f"[{group}]\n" + "".join(f"{name} = {target}\n" for name, target in points.items()) + "\n"
            for group, points in groups.items()
        ),
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(PACKAGE / "src"))
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv(BLOCK_ENV, raising=False)
    return str(project["name"])


def test_the_plugin_is_found_through_its_entry_point(plugin_installed: str) -> None:
    pm = make_plugin_manager()
    assert plugin_installed in [dist.project_name for _, dist in pm.list_plugin_distinfo()]
    assert pm.get_plugin("memory") is not None


async def test_archive_selects_the_plugin_by_name(tmp_path: Path, plugin_installed: str) -> None:
    upstream = build_upstream(tmp_path / "upstream")
    archive = Archive(tmp_path / "mirror", transport="memory", transport_options={"root": upstream})
    assert type(archive.transport).__module__ == "binance_archive_memory"
    report = await archive.download(UM, today=TODAY)
    assert report.downloaded == 2
    assert_mirrored(upstream, tmp_path / "mirror", FILES[6:])
    # Without entry points the plugin does not exist: the entry point is what brought it in.
    with pytest.raises(ConfigurationError, match="unknown transport 'memory'"):
        Archive(tmp_path / "mirror", transport="memory", entry_points=False)


def test_the_environment_variable_blocks_the_plugin(
    tmp_path: Path, plugin_installed: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(BLOCK_ENV, "some-other, memory")
    with pytest.raises(ConfigurationError, match="unknown transport 'memory'"):
        Archive(tmp_path, transport="memory")


class TestTheMemoryPluginKeepsTheContract(TransportContract):
    """A third party runs the shipped suite against its transport the same way the built-ins do."""

    listing_page_size = 2

    @pytest.fixture
    def transport(self, contract_archive: ContractArchive, plugin_installed: str, tmp_path: Path) -> Transport:
        return Archive(
            tmp_path, transport="memory", transport_options={"objects": contract_archive.objects, "page_size": 2}
        ).transport
