"""Hostile and wrong input: command lines, configurations and symbols.

- Any command line and any configuration mapping ends in success or in a configuration error whose message
  names the bad value; never a traceback.
- Symbols that try to leave the storage root are refused; non-ASCII symbols work end to end.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from binance_archive import Archive, ArchiveFile, Selection
from binance_archive.config import RunConfig
from binance_archive.core import DataType, Interval, Market, Period, parse_date
from binance_archive.errors import ConfigurationError
from binance_archive.storages.local import LocalStorage
from binance_archive.testing import build_archive

from ..support.moto import MotoS3
from .scenario import TODAY, build
from .support import MATRIX, RecordingProxy, ServerThread, assert_mirror_trustworthy, backends, run_main, stored_keys

SETTINGS = settings(
    max_examples=int(os.environ.get("RELIABILITY_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def names(message: str, value: object) -> bool:
    """Whether ``message`` names ``value`` (as typed, stripped, upper-cased, as Python shows it, or a part of it)."""
    forms: set[str] = set()
    for item in _parts(value):
        forms |= {repr(item), str(item)}
        if isinstance(item, str):
            for kind in (Market, DataType, Interval, Period):  # named as the archive spells it: 1M is 1mo, um ...
                with contextlib.suppress(ConfigurationError):
                    forms.add(kind.parse(item).value)
            forms |= {item.strip(), item.strip().upper(), repr(item.strip()), repr(item.strip().upper())}
            forms |= {item[:20], item.strip().upper()[:20]}  # long values are shown cut short
            forms |= {repr(item)[1:-1], repr(item.strip())[1:-1], repr(item.strip().upper())[1:-1]}
    return any(form and form in message for form in forms)


def _parts(value: object) -> list[object]:
    """``value`` and, for lists and tables, what is inside (a message may name the one bad element)."""
    out = [value]
    if isinstance(value, dict):
        for key, inner in value.items():
            out += [key, *_parts(inner)]
    elif isinstance(value, list):
        for inner in value:
            out += _parts(inner)
    elif isinstance(value, str) and "," in value:  # the command line's options take comma-separated lists
        out += [part.strip() for part in value.split(",") if part.strip()]
    return out


def is_absent(value: object) -> bool:
    """None, empty, blank, or made only of such (``[""]``): a message may say what is missing instead."""
    if isinstance(value, list | dict):
        return all(is_absent(v) for v in (value.values() if isinstance(value, dict) else value))
    return value is None or (isinstance(value, str) and not value.strip())


ABSENCE = re.compile(r"required|at least one|no \w+( \w+)? selected|must not be empty|lacks|has no|expected|must name")


# -- the command line ------------------------------------------------------------------------------------------

VALID = {
    "--market": "spot",
    "--data-type": "klines",
    "--symbol": "BTCUSDT",
    "--interval": "1h",
    "--start": "2024-01-30",
    "--end": "2024-02-02",
    "--period": "daily",
    "--today": TODAY.isoformat(),
    "--shard": "0/1",
}
DOWNLOAD_VALID = {"--concurrency": "4", "--transport-option": "read_timeout=5", "--storage-option": "fsync=false"}

odd_text = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", " ", "-", "--", "0", "-1", "1e9", "nan", "∞", "../x", "/etc", "a\x00b", "a\nb", "\t",
                     "2024-02-30", "2024-13", "24-01-01", "2024/01/01", "0/0", "3/2", "-1/2", "a/b", "1/", "/1",
                     "1M", "1mo", "7m", "um", "futures/xx", "KLINES", "klines,aggTrades", "monthly,auto",
                     "ÄÖÜ", "币安人生USDT", "x" * 80, "BTC USDT", "BTC/USDT", ".BTC", "BTC..USDT"]),
)  # fmt: skip
option_values = st.one_of(
    odd_text,
    st.sampled_from(["limit=0", "limit=abc", "limit=-3", "limit=true", "read_timeout=0", "read_timeout=abc",
                     "read_timeout=-1", "read_timeout=[1]", "connect_timeout=null", "verify_ssl=maybe",
                     "verify_ssl=1", "user_agent=7", "nope=1", "=1", "limit", "base_url=ftp://x",
                     "listing_url=5", "fsync=maybe", "link=[]", "fsync=true", "large_body_bytes=-1",
                     "large_body_bytes=abc", "large_body_bytes=1.5", "base_url=http://a\\@b"]),
)  # fmt: skip


@pytest.fixture(scope="module")
def empty_archive() -> Iterator[Any]:
    """A fake archive with none of the files planned: a valid download finds everything missing, at once (404s).

    It has one file of spot BTCUSDT klines, years before, so that its listing knows the symbol: a symbol the
    listing does not hold is refused before the download (exit status 2, naming it).
    """
    with tempfile.TemporaryDirectory() as root:
        old = ArchiveFile(Market.SPOT, DataType.KLINES, "BTCUSDT", Period.DAILY, dt.date(2019, 1, 1), Interval.D1)
        build_archive(Path(root), [old], max_rows=1)
        with ServerThread(Path(root)) as server:
            yield server


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    """A folder for the examples' mirrors and config files, removed after the module."""
    with tempfile.TemporaryDirectory(prefix="reliability-fuzz-") as folder:
        yield Path(folder)


def far_from_2024(value: object) -> bool:
    """A valid date years before the archive began: a correct but needlessly long plan (a 404 per day)."""
    try:
        return parse_date(value, what="date") is not None and parse_date(value, what="date").year < 2020  # type: ignore[union-attr]
    except ConfigurationError:
        return False


@SETTINGS
@given(
    command=st.sampled_from(["plan", "download"]),
    option=st.sampled_from(sorted(VALID) + sorted(DOWNLOAD_VALID) + ["--base-url", "--listing-url", "--transport"]),
    value=st.one_of(odd_text, option_values),
    drop=st.sampled_from([None, "--market", "--data-type", "--symbol", "--interval", "--start"]),
)
@example(command="plan", option="--symbol", value="../../etc", drop=None)
@example(command="download", option="--transport-option", value="limit=abc", drop=None)
@example(command="download", option="--transport-option", value="read_timeout=abc", drop=None)
@example(command="download", option="--transport-option", value="verify_ssl=maybe", drop=None)
@example(command="download", option="--storage-option", value="fsync=maybe", drop=None)
@example(command="download", option="--base-url", value="http://exa mple.com", drop=None)
def test_any_command_line_succeeds_or_names_what_is_wrong(
    empty_archive: Any, scratch: Path, command: str, option: str, value: str, drop: str | None
) -> None:
    if command == "plan" and option not in VALID:
        option = "--symbol"
    assume(not (option in ("--start", "--today") and far_from_2024(value)))
    options = dict(VALID)
    if command == "download":
        options |= DOWNLOAD_VALID | {"--base-url": empty_archive.base_url, "--listing-url": empty_archive.listing_url}
        options["--to"] = tempfile.mkdtemp(dir=scratch)
        options.pop("--shard")
    options[option] = value
    if drop is not None and drop != option:
        options.pop(drop, None)
    argv = [command]
    for key, text in options.items():
        argv += [key, text] if not text.startswith("-") else [f"{key}={text}"]
    status, out, err = run_main(argv, usage_errors=True)
    assert "Traceback" not in err and "Traceback" not in out
    assert status in (0, 2), (status, argv, err)  # an empty archive has only missing files: nothing fails
    if status == 2:
        assert "error" in err, err
        message = err
        bad = value if option not in ("--transport-option", "--storage-option") else value.partition("=")
        wanted = [value] if isinstance(bad, str) else [value, bad[0], bad[2]]
        if drop is not None and drop != option:
            wanted.append(drop)
        absent = not value.strip() or value.strip(",") == "" or (drop is not None and drop != option)
        described = ABSENCE.search(message)
        assert any(names(message, w) for w in wanted) or (absent and described), (argv, message)


# -- configuration mappings ------------------------------------------------------------------------------------

json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-5, 10**6),
        st.floats(allow_nan=True),
        st.text(max_size=10),
        st.dates().map(lambda d: d),
    ),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
NATIVE = {
    "to": "mirror",
    "transport": "http",
    "concurrency": 4,
    "base_url": "http://127.0.0.1:9",
    "force": False,
    "refresh": True,
    "today": "2026-11-22",
    "shard": "0/2",
    "transport_options": {"read_timeout": 5},
    "storage_options": {},
    "selection": [{"markets": ["spot"], "data_types": ["klines"], "symbols": ["BTCUSDT"], "intervals": ["1h"],
                   "start": "2024-01-01", "end": "2024-01-03", "periods": "daily"}],
}  # fmt: skip
LEGACY = {
    "markets": ["spot", "um"],
    "symbols": {"spot": ["BTCUSDT"], "um": ["ETHUSDT"]},
    "data_types": ["klines", "fundingRate"],
    "intervals": {"klines": ["1h"]},
    "date_range": {"start": "2024-01-01", "end": "2024-01-31"},
    "output_directory": "mirror",
    "max_parallel_downloads": 8,
    "timeout_seconds": 30,
    "enable_resume": True,
    "download_checksum": True,
}


def mutate(base: dict[str, Any], path: tuple[str, ...], value: object) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(json.dumps(base))
    target: Any = data
    for part in path[:-1]:
        target = target[0] if isinstance(target, list) else target
        target = target.setdefault(part, {}) if isinstance(target, dict) else target
    if isinstance(target, list):
        target = target[0]
    target[path[-1]] = value
    return data


def paths(base: dict[str, Any]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = [("unknown_key",)]
    for key, value in base.items():
        out.append((key,))
        inner = value[0] if isinstance(value, list) and value and isinstance(value[0], dict) else value
        if isinstance(inner, dict):
            out += [(key, sub) for sub in inner] + [(key, "bogus")]
    return out


@SETTINGS
@given(data=st.data(), schema=st.sampled_from(["native", "legacy"]))
def test_any_configuration_loads_or_names_the_bad_value(data: st.DataObject, schema: str) -> None:
    base = NATIVE if schema == "native" else LEGACY
    path = data.draw(st.sampled_from(paths(base)), label="path")
    value = data.draw(json_values, label="value")
    mapping = mutate(base, path, value)
    try:
        config = RunConfig.from_mapping(mapping)
    except ConfigurationError as exc:
        message = str(exc)
    else:
        assert isinstance(config, RunConfig) and config.selections
        return
    assert (
        names(message, value) or any(names(message, p) for p in path) or (is_absent(value) and ABSENCE.search(message))
    ), (path, value, message)


@SETTINGS
@given(mapping=st.dictionaries(st.sampled_from([*NATIVE, *LEGACY, "x"]), json_values, max_size=5))
def test_any_mapping_at_all_is_a_config_or_a_configuration_error(mapping: dict[str, Any]) -> None:
    try:
        RunConfig.from_mapping(mapping)
    except ConfigurationError as exc:
        message = str(exc)
    else:
        return
    assert message.strip()


@SETTINGS
@given(data=st.data())
def test_download_with_any_config_file_succeeds_or_exits_2(
    empty_archive: Any, scratch: Path, data: st.DataObject
) -> None:
    path = data.draw(st.sampled_from(paths(NATIVE)), label="path")
    value = data.draw(json_values, label="value")
    assume(not (path[-1] in ("start", "today") and far_from_2024(value)))
    mapping = mutate(NATIVE, path, value)
    mapping["base_url"] = empty_archive.base_url if path != ("base_url",) else mapping["base_url"]
    mapping["listing_url"] = empty_archive.listing_url
    folder = Path(tempfile.mkdtemp(dir=scratch))
    if path != ("to",):
        mapping["to"] = str(folder / "mirror")
    (folder / "run.json").write_text(json.dumps(mapping, default=str))
    status, _, err = run_main(["download", "--config", str(folder / "run.json"), "--quiet"], usage_errors=True)
    assert "Traceback" not in err
    assert status in (0, 2), (mapping, err)
    if status == 2:
        message = err  # not its last line: splitlines() also breaks at \x1c-\x1e, which a bad value may hold
        assert (
            names(message, value)
            or any(names(message, p) for p in path)
            or (is_absent(value) and ABSENCE.search(message))
        ), (path, value, message)


# -- symbols that try to escape ---------------------------------------------------------------------------------

ESCAPES = ["../etc", "..", "../../x", "/etc/passwd", "/abs", "a/b", "a\\b", "BTC\x00USDT", "BTC\nUSDT", "BTC\rUSDT",
           "\x1b[2J", "BTC\tUSDT", ".hidden", "BTC\u202eUSDT", "BTC\u200bUSDT", "C:\\x", "~root", "BTC USDT", ""]  # fmt: skip


@pytest.mark.parametrize("symbol", ESCAPES)
def test_symbols_that_could_escape_are_refused_everywhere(symbol: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Selection(markets="spot", data_types="klines", symbols=symbol, intervals="1h", start="2024-01-01")
    assert symbol == "" or names(str(caught.value), symbol) or "empty" in str(caught.value)
    with pytest.raises(ConfigurationError):
        ArchiveFile(Market.SPOT, DataType.KLINES, symbol, Period.DAILY, dt.date(2024, 1, 1), Interval.H1)
    status, out, err = run_main(["plan", "--market", "spot", "--data-type", "klines", "--symbol", symbol, "--interval",
                                "1h", "--start", "2024-01-01", "--end", "2024-01-02", "--today", "2026-11-22"],
                                usage_errors=True)  # fmt: skip
    assert status == 2 and out == "" and "Traceback" not in err
    # The storage refuses such keys even if something upstream of it did not.
    key = f"data/spot/daily/klines/{symbol}/1h/{symbol}-1h-2024-01-01.zip"
    storage = LocalStorage(tmp_path / "mirror")
    if ".." in key.split("/") or key.startswith("/") or "\x00" in key:
        with pytest.raises(Exception) as refused:  # noqa: PT011 - StorageError, or the OS's ValueError for NUL
            asyncio.run(storage.put_bytes(key, b"x"))
        assert type(refused.value).__name__ in ("StorageError",), refused.value
    assert not any(p for p in tmp_path.parent.iterdir() if p.name in ("etc", "x", "abs"))


@settings(max_examples=300, deadline=None)
@given(symbol=st.text(min_size=1, max_size=70))
def test_every_symbol_is_refused_or_stays_inside_the_root(symbol: str) -> None:
    root = Path("/srv/mirror")
    try:
        file = ArchiveFile(Market.SPOT, DataType.KLINES, symbol, Period.DAILY, dt.date(2024, 1, 1), Interval.H1)
    except ConfigurationError:
        return  # refused: what the symbol validation is for
    parts = file.key.split("/")
    assert ".." not in parts and "" not in parts and "." not in parts
    assert not re.search(r"[\x00-\x1f\x7f\\]", file.key)
    resolved = os.path.normpath(LocalStorage(root).path_of(file.key))
    assert resolved.startswith(str(root) + os.sep)
    assert ArchiveFile.from_key(file.key) == file


# -- non-ASCII symbols end to end -------------------------------------------------------------------------------

UNICODE = Selection(markets="um", data_types="klines", symbols="币安人生USDT", intervals="1h", start="2024-01-30",
                    end="2024-02-02", periods="daily")  # fmt: skip


async def test_non_ascii_symbols_are_percent_encoded_on_the_wire_and_stored_under_their_name(tmp_path: Path) -> None:
    upstream, mirror = tmp_path / "upstream", tmp_path / "mirror"
    files = build(upstream, UNICODE)
    async with backends("http", "local", upstream, tmp_path) as cell:
        assert cell.server is not None
        async with RecordingProxy(cell.server.port) as proxy:
            archive = Archive(mirror, base_url=proxy.url, listing_url=proxy.url + "/data.binance.vision",
                              entry_points=False)  # fmt: skip
            report = await archive.download(UNICODE, today=TODAY)
            discovered = await archive.symbols("um", "klines")
    assert report.ok and report.downloaded == len(files) == 4
    assert "币安人生USDT" in discovered
    assert proxy.request_lines and all(line.isascii() for line in proxy.request_lines)
    assert any(b"/%E5%B8%81%E5%AE%89%E4%BA%BA%E7%94%9FUSDT/" in line for line in proxy.request_lines)
    for file in files:
        assert (mirror / "data/futures/um/daily/klines/币安人生USDT/1h" / file.filename).is_file()
    await assert_mirror_trustworthy(Archive(mirror, entry_points=False), upstream)


@pytest.mark.parametrize(("transport", "storage"), MATRIX)
async def test_non_ascii_symbols_on_every_transport_and_storage(
    transport: str, storage: str, tmp_path: Path, moto_if_needed: MotoS3 | None
) -> None:
    upstream = tmp_path / "upstream"
    files = build(upstream, UNICODE)
    async with backends(transport, storage, upstream, tmp_path, moto_if_needed) as cell:
        report = await cell.archive().download(UNICODE.with_(start=None), today=TODAY)  # discovered start date
        assert report.ok and report.downloaded == len(files), report.failures
        async with cell.archive() as archive:
            keys = await stored_keys(archive.storage)
        assert {f.key for f in files} <= set(keys)
        assert all("币安人生USDT" in k for k in keys)
        await assert_mirror_trustworthy(cell.archive(), upstream)


def test_a_valid_selection_survives_the_round_trip_through_a_config_file(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    path.write_text(json.dumps(NATIVE))
    status, _, err = run_main(["download", "--config", str(path), "--transport-option", "limit=abc"], usage_errors=True)
    assert status == 2 and "limit" in err and "abc" in err and "Traceback" not in err


# -- regressions the properties above found ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv_tail", "named"),
    [
        (["--transport-option", "limit=abc"], "abc"),  # was a TypeError traceback when the session opened
        (["--transport-option", "read_timeout=abc"], "abc"),  # was "'<=' not supported between str and int"
        (["--transport-option", "verify_ssl=maybe"], "maybe"),  # was taken as true
        (["--base-url", "http://exa mple.com"], "exa mple.com"),  # was a failure of every file, status 1
        (["--base-url", "0\n0"], "0\\n0"),  # was shown as '00'
        (["--data-type=--"], "--data-type"),  # was an AttributeError traceback (argparse turns it into [])
        (["--concurrency", "1000000"], "1000000"),  # took minutes and gigabytes before the first request
    ],
)
def test_command_lines_the_properties_found(
    empty_archive: Any, tmp_path: Path, argv_tail: list[str], named: str
) -> None:
    argv = ["download", "--market", "spot", "--symbol", "BTCUSDT", "--interval", "1h", "--start", "2024-01-01",
            "--end", "2024-01-02", "--today", TODAY.isoformat(), "--listing-url", empty_archive.listing_url,
            "--to", str(tmp_path / "m")]  # fmt: skip
    if not any(a.startswith("--data-type") for a in argv_tail):
        argv += ["--data-type", "klines"]
    if "--base-url" not in argv_tail:
        argv += ["--base-url", empty_archive.base_url]
    status, _, err = run_main(argv + argv_tail, usage_errors=True)
    assert status == 2 and named in err and "Traceback" not in err, err


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        (("selection", "symbols"), False, "symbols"),  # was "a symbol must be a string, not bool"
        (("selection", "start"), [2024], "start"),
        (("storage_options",), {"": None}, "''"),  # was "unknown storage option(s)  for 'local'"
        (("transport_options",), {"a b": 1}, "'a b'"),
    ],
)
def test_configurations_the_properties_found(path: tuple[str, ...], value: object, named: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(named)):
        RunConfig.from_mapping(mutate(NATIVE, path, value))


def test_an_absurd_concurrency_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="1000000"):
        Archive(tmp_path, concurrency=1_000_000)
