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
