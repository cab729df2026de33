"""The plugin system: built-ins through the hooks, selection by name/URL/instance, loud failures."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from binance_archive import Archive, ConfigurationError, PluginError
from binance_archive.backends import Body, Transport
from binance_archive.errors import FileMissingError
from binance_archive.hookspecs import hookimpl
from binance_archive.plugins import BackendRegistry, make_plugin_manager
from binance_archive.storages.local import LocalStorage
from binance_archive.transports.http import HttpTransport


class _Nothing(Transport):
    name = "nothing"

    @asynccontextmanager
    async def get(self, key: str) -> AsyncIterator[Body]:
        raise FileMissingError(key)
        yield  # pragma: no cover


class _Plugin:
    @hookimpl
    def register_transports(self) -> list[type[Transport]]:
        return [_Nothing]


def test_builtins_register_through_the_hooks() -> None:
    registry = BackendRegistry.from_plugin_manager(make_plugin_manager(entry_points=False))
    assert registry.transports["http"] is HttpTransport
    assert registry.storages["local"] is LocalStorage and registry.schemes["file"] is LocalStorage


def test_plugin_manager_is_built_per_archive(tmp_path: Path) -> None:
    one = Archive(tmp_path, plugins=[_Plugin()], entry_points=False)
    assert isinstance(one.registry.transport("nothing"), _Nothing)
    two = Archive(tmp_path, entry_points=False)
    assert "nothing" not in two.registry.transports


def test_a_plugin_backend_named_like_a_builtin_takes_its_place(tmp_path: Path) -> None:
    class CachingHttp(HttpTransport):
        name = "http"

    class Replacing:
        @hookimpl
        def register_transports(self) -> list[type[Transport]]:
            return [CachingHttp]

    replaced = Archive(tmp_path, plugins=[Replacing()], base_url="http://127.0.0.1:1", entry_points=False)
    assert type(replaced.transport) is CachingHttp
    assert type(Archive(tmp_path, base_url="http://127.0.0.1:1", entry_points=False).transport) is HttpTransport


def test_misspelled_hook_fails_loudly() -> None:
    class Misspelled:
        @hookimpl
        def register_transport(self) -> list[type[Transport]]:  # missing the final "s"
            return []

    with pytest.raises(PluginError, match="register_transport"):
        make_plugin_manager(entry_points=False, plugins=[Misspelled()])


def test_unknown_names_list_the_available_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"unknown transport 'carrier-pigeon'; installed transports: .*http"):
        Archive(tmp_path, transport="carrier-pigeon")
    with pytest.raises(ConfigurationError, match=r"no storage handles gs:// URLs; installed schemes: .*file"):
        Archive("gs://bucket/prefix")
    with pytest.raises(ConfigurationError, match=r"valid options: .*read_timeout"):
        Archive(tmp_path, transport_options={"read_timeot": 3})


@pytest.mark.parametrize("kind", ["transport", "storage"])
def test_unknown_option_names_are_quoted_so_odd_ones_stay_readable(tmp_path: Path, kind: str) -> None:
    registry = BackendRegistry.from_plugin_manager(make_plugin_manager(entry_points=False))
    options = {"": 1, "a\nb": 2, " \t": 3, "\x1b[2J": 4, "read_timeot": 5}
    build = registry.transport if kind == "transport" else registry.storage
    with pytest.raises(ConfigurationError) as caught:
        build("http" if kind == "transport" else str(tmp_path), options)
    message = str(caught.value)
    assert f"unknown {kind} option(s) '', 'a\\nb', ' \\t', '\\x1b[2J', 'read_timeot' for " in message, message
    assert "valid options: " in message
    assert message.isprintable(), "no raw newline, tab or escape sequence reaches the message"
    if kind == "transport":
        assert "read_timeout" in message.partition("valid options: ")[2]


def test_backends_by_instance_url_and_path(tmp_path: Path) -> None:
    transport = HttpTransport(base_url="http://127.0.0.1:1")
    archive = Archive(tmp_path / "a", transport=transport)
    assert archive.transport is transport and isinstance(archive.storage, LocalStorage)
    assert Archive(f"file://{tmp_path}/b").storage.location == f"{tmp_path}/b"  # type: ignore[attr-defined]
    storage = LocalStorage(tmp_path / "c")
    assert Archive(storage).storage is storage


@pytest.mark.parametrize(
    "url", ["ftp://example.com", "http://", "http://host:port/x", "http://[zz]/", "http://a.com\\@b.com", "http://a b"]
)
def test_invalid_urls_are_refused_before_io(tmp_path: Path, url: str) -> None:
    with pytest.raises(ConfigurationError, match="expected an http:// or https:// URL"):
        Archive(tmp_path, base_url=url)
    assert not tmp_path.joinpath("data").exists()


def test_blocked_plugins_are_not_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINANCE_ARCHIVE_DISABLE_PLUGINS", "some-plugin, other")
    pm = make_plugin_manager()
    assert pm.is_blocked("some-plugin") and pm.is_blocked("other")


def _dist_info(site: Path, name: str, entry_points: str) -> None:
    folder = site / f"{name}-1.0.dist-info"
    folder.mkdir(parents=True)
    (folder / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n", encoding="utf-8")
    (folder / "entry_points.txt").write_text(entry_points, encoding="utf-8")


def test_the_entry_point_precheck_finds_a_declared_group(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from binance_archive.plugins import _may_declare_entry_points

    assert not _may_declare_entry_points("binance_archive"), "this environment declares no plugin"
    site = tmp_path / "site"
    _dist_info(site, "other", "[console_scripts]\nx = y:z\n\n[binance_archive_extra]\nm = n\n")
    monkeypatch.syspath_prepend(str(site))
    assert not _may_declare_entry_points("binance_archive"), "another group, or a longer name, is not ours"
    _dist_info(site, "ours", "[ binance_archive ]\nmemory = memory_plugin\n")
    assert _may_declare_entry_points("binance_archive")


def test_the_entry_point_precheck_reads_what_importlib_metadata_s_backport_would() -> None:
    # Prefect (among others) imports the backport, whose finder looks in sys.path's folders as the precheck does:
    # it must not make every start of a download ask importlib.metadata.
    pytest.importorskip("importlib_metadata", reason="the backport comes with the [test] extra's prefect")
    import importlib_metadata  # noqa: F401

    from binance_archive.plugins import _may_declare_entry_points

    assert not _may_declare_entry_points("binance_archive")


def test_the_entry_point_precheck_defers_to_importlib_where_it_cannot_see(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys
    import zipfile

    from binance_archive.plugins import _may_declare_entry_points

    archive = tmp_path / "plugins.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("ours-1.0.dist-info/entry_points.txt", "[binance_archive]\nmemory = memory_plugin\n")
    monkeypatch.syspath_prepend(str(archive))
    assert _may_declare_entry_points("binance_archive"), "a zip on sys.path may hold metadata"
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(archive)])

    class Finder:  # a meta-path finder that finds distributions of its own (as importlib.metadata allows)
        @staticmethod
        def find_distributions(*args: object, **kwargs: object) -> list[object]:
            return []

    monkeypatch.setattr(sys, "meta_path", [*sys.meta_path, Finder()])
    assert _may_declare_entry_points("binance_archive")


def test_a_transport_is_built_with_what_the_archive_knows(tmp_path: Path) -> None:
    """Settings flow into a transport at construction (Transport.create with a TransportContext), never after."""
    from binance_archive.transports.s5cmd import S5cmdTransport

    archive = Archive(tmp_path / "a", concurrency=120, entry_points=False)
    assert isinstance(archive.transport, HttpTransport)
    assert archive.transport._limit == 240, "two connections a file in flight: its zip's and its sidecar's"
    given = Archive(tmp_path / "b", concurrency=120, transport_options={"limit": 7}, entry_points=False).transport
    assert isinstance(given, HttpTransport) and given._limit == 7, "a limit the user gave is kept"
    mine = HttpTransport(limit=5)
    assert Archive(tmp_path / "c", transport=mine, concurrency=500).transport is mine and mine._limit == 5

    s5cmd = Archive(tmp_path / "d", transport="s5cmd", concurrency=8, entry_points=False).transport
    assert isinstance(s5cmd, S5cmdTransport)
    assert s5cmd.batch_size == 16 and s5cmd.staging_dir == tmp_path / "d", "staged inside the local mirror"
    elsewhere = Archive("s3://bucket/prefix", transport="s5cmd", concurrency=8, entry_points=False).transport
    assert isinstance(elsewhere, S5cmdTransport) and elsewhere.staging_dir is None, "no local root: the temp folder"


def test_a_third_party_transport_is_built_from_its_options_by_default(tmp_path: Path) -> None:
    class Configurable(_Nothing):
        name = "configurable"

        def __init__(self, *, depth: int = 1) -> None:
            self.depth = depth

    class Plugin:
        @hookimpl
        def register_transports(self) -> list[type[Transport]]:
            return [Configurable]

    archive = Archive(tmp_path, transport="configurable", transport_options={"depth": 3}, plugins=[Plugin()])
    assert isinstance(archive.transport, Configurable) and archive.transport.depth == 3
    assert archive.concurrency == Transport.default_concurrency


def test_retry_policy_is_importable_from_the_package_and_the_old_path_warns() -> None:
    from binance_archive import RetryPolicy
    from binance_archive.engine.retry import RetryPolicy as Engine

    assert RetryPolicy is Engine
    with pytest.warns(DeprecationWarning, match="from binance_archive import RetryPolicy"):
        from binance_archive.retry import RetryPolicy as Old
    assert Old is RetryPolicy


def test_the_staging_helpers_local_storage_exported_still_work_with_a_warning(tmp_path: Path) -> None:
    from binance_archive.common import staging
    from binance_archive.storages import local

    with pytest.warns(DeprecationWarning, match="binance_archive.common.staging.make_temp_folder"):
        make = local.make_temp_folder
    assert make is staging.make_temp_folder
    with pytest.warns(DeprecationWarning, match="TEMP_PREFIX"):
        assert local.TEMP_PREFIX == staging.TEMP_PREFIX
    with pytest.raises(AttributeError):
        local.nothing_here  # noqa: B018
