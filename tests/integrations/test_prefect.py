"""The collection workflow as a Prefect flow, under Prefect's own test harness (a temporary local server), against
the fake archive: the seed schema's configuration, the result mapping's fields, the convert step, retries, and the
same flow on a Dask cluster through prefect-dask."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from binance_archive.testing import FakeArchiveServer, build_archive

from ..engine.scenario import SELECTION, TODAY, planned

pytest.importorskip("prefect", reason="the [test] extra installs prefect")

from binance_archive.integrations.prefect import (
    PrefectArchiveCollectionWorkflow,
    run_collection,
)

FILES = planned(SELECTION)


@pytest.fixture(scope="module", autouse=True)
def harness() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    # No telemetry from the temporary server (it is also what logged "database is locked" tracebacks).
    handlers, level = list(logging.root.handlers), logging.root.level
    try:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
            with prefect_test_harness(server_startup_timeout=60):
                yield
    finally:
        # A flow run gives the root logger Prefect's console handler: the tests after these must not inherit it.
        logging.root.handlers[:] = handlers
        logging.root.setLevel(level)


def seed_config(server: FakeArchiveServer, output: Path) -> dict[str, Any]:
    """The collection workflow's configuration (its own schema, with its workflow_type), plus the settings that
    schema lacks as native keys beside it."""
    return {
        "workflow_type": "archive_collection",
        "output_directory": str(output),
        "markets": ["spot"],
        "symbols": ["BTCUSDT", "ETHUSDT"],
        "data_types": ["klines"],
        "intervals": {"klines": ["1h"]},
        "date_range": {"start": "2024-01-01", "end": "2024-02-10"},
        "max_parallel_downloads": 8,
        "base_url": server.base_url,
        "listing_url": server.listing_url,
        "today": TODAY.isoformat(),
    }


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


async def test_the_flow_returns_the_collection_workflow_s_result(tmp_path: Path) -> None:
    upstream = tmp_path / "upstream"
    build_archive(upstream, FILES, max_rows=5)
    async with FakeArchiveServer(upstream) as server:
        config = seed_config(server, tmp_path / "mirror")
        result = await asyncio.to_thread(run_collection, config, max_concurrency=2, shards=3)
        zips = server.stats.zip_requests
    assert zips == len(FILES), "each file fetched once across the shards"
    assert result["status"] == "success" and result["success_rate"] == 100.0
    stats = result["collection_stats"]
    sizes = sum((upstream / f.key).stat().st_size for f in FILES)
    assert (stats["total_tasks"], stats["successful_tasks"], stats["failed_tasks"]) == (len(FILES), len(FILES), 0)
    assert stats["total_size_bytes"] == sizes and stats["processing_time_seconds"] > 0
    assert result["storage_zones_used"] == ["bronze"]
    assert result["ingestion_metadata_id"] == result["metadata"]["task_id"]
    assert sorted(result["metadata"].source_files) == sorted(f.key for f in FILES)
    assert result["output_directory"] == str(tmp_path / "mirror")
    assert {k for k in tree(tmp_path / "mirror") if k.endswith(".zip")} == {f.key for f in FILES}


async def test_the_flow_converts_to_tables_as_a_second_step(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow", reason="the [test] extra installs pyarrow")
    upstream = tmp_path / "upstream"
    build_archive(upstream, FILES, max_rows=5)
    async with FakeArchiveServer(upstream) as server:
        config = seed_config(server, tmp_path / "mirror")
        result = await asyncio.to_thread(run_collection, config, shards=2, convert_to=str(tmp_path / "tables"))
    assert result["status"] == "success"
    assert result["storage_zones_used"] == ["bronze", "silver"]
    assert result["tables"]["converted"] == len(FILES) and result["tables"]["failed"] == 0
    assert len(list((tmp_path / "tables").rglob("*.parquet"))) == len(FILES)


async def test_migrating_code_changes_one_import(tmp_path: Path) -> None:
    upstream = tmp_path / "upstream"
    build_archive(upstream, FILES, max_rows=5)
    async with FakeArchiveServer(upstream) as server:
        workflow = PrefectArchiveCollectionWorkflow(seed_config(server, tmp_path / "mirror"))
        result = await workflow.execute()
        again = await PrefectArchiveCollectionWorkflow(seed_config(server, tmp_path / "mirror")).execute()
    assert result["status"] == "success" and result["collection_stats"]["successful_tasks"] == len(FILES)
    assert again["collection_stats"]["skipped_tasks"] == len(FILES), "a second run resumes"
    assert again["collection_stats"]["total_size_bytes"] == 0


async def test_the_flow_runs_on_a_dask_cluster_through_prefect_dask(tmp_path: Path, dask_client: Any) -> None:
    pytest.importorskip("prefect_dask", reason="the [test] extra installs prefect-dask")
    upstream = tmp_path / "upstream"
    build_archive(upstream, FILES, max_rows=5)
    address = dask_client.scheduler.address
    async with FakeArchiveServer(upstream) as server:
        result = await asyncio.to_thread(
            run_collection, seed_config(server, tmp_path / "mirror"), dask_address=address, shards=4
        )
    assert result["status"] == "success" and result["collection_stats"]["successful_tasks"] == len(FILES)
    assert {k for k in tree(tmp_path / "mirror") if k.endswith(".zip")} == {f.key for f in FILES}


async def test_a_shard_whose_files_failed_is_run_again_by_prefect(tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client

    upstream = tmp_path / "upstream"
    build_archive(upstream, FILES, max_rows=5)
    # Every key's first GET answers 503, and one try a request with no final pass: the first run of each shard
    # fails all its files; Prefect runs the shard's task again, which fetches them. A zip whose .CHECKSUM was not
    # yet asked for when its own 503 ended the file meets that sidecar's first 503 on the second run: its shard
    # needs the third run (retries=2), which fetches the zip once more. Which files do is a race.
    async with FakeArchiveServer(upstream, fail_first=1) as server:
        config = {**seed_config(server, tmp_path / "mirror"), "retries": 1}
        result = await asyncio.to_thread(run_collection, config, shards=2)
        zips = server.stats.zip_requests
    assert result["status"] == "success" and result["collection_stats"]["failed_tasks"] == 0
    assert 2 * len(FILES) <= zips <= 3 * len(FILES), "each zip: a 503, then fetched by the shard's second or third run"
    assert {k for k in tree(tmp_path / "mirror") if k.endswith(".zip")} == {f.key for f in FILES}
    async with get_client() as client:
        runs = [r for r in await client.read_task_runs() if r.name.startswith("shard ")]
    latest = sorted(runs, key=lambda r: r.expected_start_time or r.created)[-2:]
    assert all(r.run_count in (2, 3) for r in latest), [(r.name, r.run_count, r.state_name) for r in runs]
    assert all(r.state_name == "Completed" for r in latest)
