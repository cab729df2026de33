"""Verifying a stored mirror: corrupt, missing, unverified and orphan files are each named."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

import binance_archive
from binance_archive import Archive
from binance_archive.cli import main
from binance_archive.verification import ProblemKind

from .engine.scenario import SELECTION, TODAY, planned


@pytest.fixture
def stored(tmp_path: Path) -> Path:
    from binance_archive.testing import build_archive

    root = tmp_path / "mirror"
    build_archive(root, planned(SELECTION), max_rows=10)  # the fake archive's tree is a complete mirror
    return root


async def test_a_sound_mirror_verifies(stored: Path) -> None:
    report = await binance_archive.verify(stored)
    assert report.ok and report.checked == len(planned(SELECTION))
    assert report.bytes == sum(p.stat().st_size for p in stored.rglob("*.zip"))


async def test_every_kind_of_problem_is_named(stored: Path) -> None:
    files = planned(SELECTION)
    corrupt, no_zip, no_sidecar = files[0], files[1], files[2]
    data = bytearray((stored / corrupt.key).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (stored / corrupt.key).write_bytes(bytes(data))
    (stored / no_zip.key).unlink()
    (stored / no_sidecar.checksum_key).unlink()
    (stored / "data" / "notes.txt").write_text("stray")
    temp = stored / no_zip.folder / f".binance-archive-{no_zip.filename}.abcd1234.part"
    temp.write_bytes(b"half")
    report = await Archive(stored).verify(selections=[SELECTION.with_(end="2024-02-11")], today=TODAY)
    found = {(p.kind, p.key) for p in report.problems}
    assert (ProblemKind.CORRUPT, corrupt.key) in found
    assert (ProblemKind.MISSING, no_zip.key) in found
    assert (ProblemKind.UNVERIFIED, no_sidecar.key) in found
    assert (ProblemKind.ORPHAN, "data/notes.txt") in found
    assert (ProblemKind.ORPHAN, str(temp)) in found
    # 2024-02-11 is planned by the widened selection but was never stored.
    assert any(p.kind is ProblemKind.MISSING and p.key.endswith("2024-02-11.zip") for p in report.problems)
    assert report.checked == len(files) - 3 and not report.ok


def test_verify_command_exit_status(stored: Path) -> None:
    out = io.StringIO()
    assert main(["verify", str(stored)], out=out) == 0
    assert f"{len(planned(SELECTION))} files verified" in out.getvalue()
    (stored / planned(SELECTION)[0].key).write_bytes(b"not a zip")
    out = io.StringIO()
    assert main(["verify", str(stored)], out=out) == 1
    assert f"corrupt: {planned(SELECTION)[0].key}" in out.getvalue()


async def test_the_report_serialises_every_problem_to_json(stored: Path) -> None:
    import json

    corrupt = planned(SELECTION)[0]
    (stored / corrupt.key).write_bytes(b"not a zip")
    report = await binance_archive.verify(stored)
    data = json.loads(report.to_json())
    assert data["ok"] is False and data["checked"] == report.checked
    assert {"key": corrupt.key, "kind": "corrupt"}.items() <= data["problems"][0].items()


# -- a path that is not a mirror -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "where", ["no such folder", "an empty folder", "only a stray file", "a prefix it lacks", "a file"]
)
def test_verify_refuses_a_path_that_holds_no_archive_file(
    tmp_path: Path, stored: Path, where: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A typo must not read as "0 files verified", status 0."""
    argv = {
        "no such folder": ["verify", str(tmp_path / "no" / "such" / "path")],
        "an empty folder": ["verify", str(tmp_path / "empty")],
        "only a stray file": ["verify", str(tmp_path / "stray")],
        "a prefix it lacks": ["verify", str(stored), "--prefix", "data/futures/"],
        "a file": ["verify", str(tmp_path / "a-file")],
    }[where]
    (tmp_path / "empty").mkdir()
    (tmp_path / "stray" / "data").mkdir(parents=True)
    (tmp_path / "stray" / "data" / "notes.txt").write_text("not the archive's")
    (tmp_path / "a-file").write_text("not a folder")
    out = io.StringIO()
    assert main(argv, out=out) == 2
    err = capsys.readouterr().err
    assert out.getvalue() == "" and "binance-archive: error:" in err
    expected = {"no such folder": "does not exist", "a file": "is a file"}.get(where, "holds no file of the archive")
    assert expected in err, err


async def test_the_library_names_a_missing_folder_and_marks_an_empty_mirror(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(binance_archive.ConfigurationError, match="does not exist"):
        await binance_archive.verify(tmp_path / "typo")
    (tmp_path / "empty").mkdir()
    report = await binance_archive.verify(tmp_path / "empty")
    assert report.empty and report.ok and report.checked == 0  # no problem, but nothing verified either
    assert "holds no file of the archive" in caplog.text


async def test_a_sound_mirror_is_not_empty(stored: Path) -> None:
    assert not (await binance_archive.verify(stored)).empty


# -- repair ----------------------------------------------------------------------------------------------------


def _damage(mirror: Path) -> tuple[str, str, str]:
    """A corrupt zip, a zip lost (its sidecar kept), a sidecar lost (its zip kept): their keys."""
    files = planned(SELECTION)
    corrupt, lost_zip, lost_sidecar = files[0], files[5], files[-1]
    data = bytearray((mirror / corrupt.key).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (mirror / corrupt.key).write_bytes(bytes(data))
    (mirror / lost_zip.key).unlink()
    (mirror / lost_sidecar.checksum_key).unlink()
    return corrupt.key, lost_zip.key, lost_sidecar.key


@pytest.fixture
def upstream(tmp_path: Path) -> Path:
    from binance_archive.testing import build_archive

    root = tmp_path / "upstream"
    build_archive(root, planned(SELECTION), max_rows=10)
    return root


async def test_verify_repair_fetches_exactly_the_corrupt_missing_and_unverified_files(
    stored: Path, upstream: Path
) -> None:
    import asyncio

    from binance_archive.testing import FakeArchiveServer

    damaged = _damage(stored)
    async with FakeArchiveServer(upstream) as server:
        urls = ["--base-url", server.base_url, "--listing-url", server.listing_url]
        # Why repair is needed: a plain re-run of the download fetches the lost zip and the unverified one again,
        # but counts the corrupt file as stored (its sidecar is there) and leaves it corrupt.
        rerun = ["download", "--market", "spot", "--data-type", "klines", "--symbol", "BTCUSDT,ETHUSDT",
                 "--interval", "1h", "--start", "2024-01-01", "--end", "2024-02-10", "--today", TODAY.isoformat(),
                 "--to", str(stored), "--quiet", *urls]  # fmt: skip
        status, _ = await asyncio.to_thread(_run, rerun)
        assert status == 0
        status, out = await asyncio.to_thread(_run, ["verify", str(stored)])
        assert status == 1 and out.startswith(f"corrupt: {damaged[0]} ")
        assert f"binance-archive verify {stored} --repair` to fetch the 1 corrupt" in out, "say how to repair"
        (stored / damaged[1]).unlink()
        (stored / (damaged[2] + ".CHECKSUM")).unlink()

        server.stats.reset()
        status, out = await asyncio.to_thread(_run, ["verify", str(stored), "--repair", *urls])
        assert status == 0, out
        assert "repair: fetching the 3 corrupt, missing and unverified files again" in out
        # Exactly those three: one zip and one sidecar each, and no listing.
        assert sorted(server.stats.by_key) == sorted([*damaged, *(k + ".CHECKSUM" for k in damaged)])
        assert server.stats.zip_requests == 3 and server.stats.checksum_requests == 3
        assert server.stats.listing_requests == 0
    report = await binance_archive.verify(stored)
    assert report.ok and report.checked == len(planned(SELECTION))


async def test_repair_leaves_orphans_and_reports_as_json(stored: Path, upstream: Path) -> None:
    import asyncio
    import json

    from binance_archive.testing import FakeArchiveServer

    damaged = _damage(stored)
    (stored / "data" / "notes.txt").write_text("stray")
    async with FakeArchiveServer(upstream) as server:
        argv = ["verify", str(stored), "--repair", "--json", "--base-url", server.base_url]
        status, out = await asyncio.to_thread(_run, argv)
    document = json.loads(out)
    assert status == 1, "an orphan is still there: the mirror is not sound"
    assert {p["key"] for p in document["problems"]} == {*damaged, "data/notes.txt"}
    assert document["repair"]["downloaded"] == 3 and document["repair"]["failed"] == 0
    assert sorted(o["key"] for o in document["repair"]["outcomes"]) == sorted(damaged)
    assert (stored / "data" / "notes.txt").exists()
    after = await binance_archive.verify(stored)
    assert [(p.kind, p.key) for p in after.problems] == [(ProblemKind.ORPHAN, "data/notes.txt")]


async def test_archive_repair_takes_a_report_or_keys(stored: Path, upstream: Path) -> None:
    from binance_archive.testing import FakeArchiveServer

    damaged = _damage(stored)
    async with FakeArchiveServer(upstream) as server:
        archive = Archive(stored, base_url=server.base_url)
        found = await archive.verify()
        assert found.repairable == sorted(damaged)
        report = await archive.repair(found)
        assert report.downloaded == 3 and report.ok
        assert (await archive.repair([])).total == 0
        server.stats.reset()
        again = await archive.repair([damaged[0]])  # a key given by hand is fetched again, sound or not
        assert again.downloaded == 1 and server.stats.zip_requests == 1
        with pytest.raises(binance_archive.ConfigurationError):
            await archive.repair(["data/notes.txt"])
    assert (await archive.verify()).ok


def test_verify_repair_with_nothing_to_repair_fetches_nothing(stored: Path) -> None:
    # No server at all: a sound mirror needs none.
    status, out = _run(["verify", str(stored), "--repair", "--base-url", "http://127.0.0.1:9"])
    assert status == 0 and "repair: nothing to fetch again" in out


def _run(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    status = main(argv, out=out)
    return status, out.getvalue()
