"""A conversion killed at random moments (SIGKILL) loses at most the file in progress; the next run completes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from binance_archive import Selection, plan
from binance_archive.core.schemas import schema_for
from binance_archive.tables.layout import table_key

from .expected import expected_rows
from .scenario import build, convert, csv_text

FILES = list(
    plan(
        Selection(markets="um", data_types="aggTrades", symbols=["BTCUSDT", "ETHUSDT"], start="2023-03-01",
                  end="2023-03-20"),
        today=__import__("datetime").date(2024, 1, 1),
    )
)  # fmt: skip


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="SIGKILL is POSIX")
@pytest.mark.parametrize("after", [1, 7, 19])
def test_a_killed_conversion_is_completed_by_the_next_run(tmp_path: Path, after: int) -> None:
    mirror, tables = build(tmp_path / "mirror", FILES, max_rows=None), tmp_path / "tables"
    command = [sys.executable, "-m", "binance_archive", "convert", "--from", str(mirror), "--to", str(tables),
               "--concurrency", "1", "--quiet"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while len(list(tables.rglob("*.parquet"))) < after and process.poll() is None:
            assert time.monotonic() < deadline, "the conversion did not get going"
            time.sleep(0.005)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(30)
    published = [p for p in tables.rglob("*.parquet") if not p.relative_to(tables).parts[0].startswith(".")]
    assert after <= len(published) < len(FILES), "killed mid-run, as meant"
    for path in tables.rglob("*.parquet"):  # whatever a reader's glob finds is whole (tables in progress are not)
        assert pq.read_metadata(path).num_rows > 0
    report = convert(mirror, tables)
    assert report.ok and report.converted + report.skipped == len(FILES)
    assert report.converted <= len(FILES) - after + 1, "work done before the kill is not done again"
    assert not [p for p in tables.rglob("*") if p.name.startswith(".binance-archive-")], "the dead run's files swept"
    for file in FILES:
        expected = expected_rows(csv_text(mirror, file), schema_for(file.market, file.data_type))
        assert pq.read_table(tables / table_key(file)).to_pylist() == expected, file.key
