"""Tables written to S3 (moto's server on loopback), from a mirror on disk and from a mirror in a bucket."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from binance_archive import Archive, Selection, plan
from binance_archive.core.schemas import schema_for
from binance_archive.tables.layout import table_key

from ..support.moto import MotoS3, fake_aws, moto_server
from .expected import expected_rows
from .scenario import build, csv_text

__all__ = ["fake_aws", "moto_server"]  # the shared fixtures, imported to be visible here (fake_aws is autouse)

pytest.importorskip("moto.server", reason="moto's S3 server is needed (the [test] extra installs moto[server])")
pytest.importorskip("obstore", reason="the s3 storage needs obstore (the [test] extra installs it)")

FILES = list(
    plan(
        Selection(markets="um", data_types=["aggTrades", "metrics"], symbols="BTCUSDT", start="2023-03-30",
                  end="2023-04-01"),
        today=__import__("datetime").date(2024, 1, 1),
    )
)  # fmt: skip


def _table(moto_server: MotoS3, bucket: str, key: str) -> list[dict[str, object]]:
    body = moto_server.client().get_object(Bucket=bucket, Key=key)["Body"].read()
    rows: list[dict[str, object]] = pq.read_table(io.BytesIO(body)).to_pylist()
    return rows


def test_tables_go_to_a_bucket_whole_and_a_re_run_reads_their_manifests_there(
    tmp_path: Path, moto_server: MotoS3
) -> None:
    mirror = build(tmp_path / "mirror", FILES)
    bucket = moto_server.bucket()
    archive = Archive(mirror, entry_points=False)
    to, options = f"s3://{bucket}/tables", moto_server.storage_options()
    report = asyncio.run(archive.convert(to=to, to_options=options))
    assert report.ok and report.converted == len(FILES), report.problems
    keys = moto_server.keys(bucket, "tables/")
    assert {f"tables/{table_key(f)}" for f in FILES} <= set(keys)
    assert all(k.endswith((".parquet", "_manifest.json")) for k in keys), "nothing temporary in the bucket"
    assert moto_server.uploads(bucket) == []
    for file in FILES:
        expected = expected_rows(csv_text(mirror, file), schema_for(file.market, file.data_type))
        assert _table(moto_server, bucket, f"tables/{table_key(file)}") == expected
    again = asyncio.run(archive.convert(to=to, to_options=options))
    assert (again.converted, again.skipped) == (0, len(FILES))


def test_a_mirror_in_a_bucket_converts_as_one_on_disk(tmp_path: Path, moto_server: MotoS3) -> None:
    tree = build(tmp_path / "tree", FILES)
    source = moto_server.bucket()
    assert moto_server.upload_tree(source, tree) == 2 * len(FILES)
    tables = tmp_path / "tables"
    archive = Archive(f"s3://{source}", storage_options=moto_server.storage_options(), entry_points=False)
    report = asyncio.run(archive.convert(Selection(markets="um", data_types="metrics"), to=tables))
    metrics = [f for f in FILES if f.data_type.value == "metrics"]
    assert report.ok and report.converted == len(metrics), report.problems
    for file in metrics:
        expected = expected_rows(csv_text(tree, file), schema_for(file.market, file.data_type))
        assert pq.read_table(tables / table_key(file)).to_pylist() == expected
    assert report.duplicates > 0, "the metrics files' duplicates were dropped"


def test_read_table_reads_tables_in_a_bucket(
    tmp_path: Path, moto_server: MotoS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pyarrow import fs

    from binance_archive import read_table

    mirror = build(tmp_path / "mirror", FILES)
    bucket = moto_server.bucket()
    report = asyncio.run(
        Archive(mirror, entry_points=False).convert(
            to=f"s3://{bucket}/tables", to_options=moto_server.storage_options()
        )
    )
    assert report.ok, report.problems
    local = tmp_path / "local"
    assert asyncio.run(Archive(mirror, entry_points=False).convert(to=local)).ok
    wanted = {
        "market": "um",
        "data_type": "aggTrades",
        "symbols": "BTCUSDT",
        "start": "2023-03-31",
        "end": "2023-04-01",
    }
    expected = read_table(local, **wanted).sort_by("agg_trade_id")
    assert expected.num_rows > 0
    # A pyarrow file system of the user's own, pointed at the server.
    s3 = fs.S3FileSystem(endpoint_override=moto_server.url, access_key="testing", secret_key="testing",
                         region="us-east-1", scheme="http")  # fmt: skip
    on_fs = read_table(f"{bucket}/tables", filesystem=s3, **wanted).sort_by("agg_trade_id")
    # An s3:// URL, pyarrow taking its settings from the environment, as it does for AWS.
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.url)
    by_url = read_table(f"s3://{bucket}/tables", **wanted).sort_by("agg_trade_id")
    for table in (on_fs, by_url):
        assert table.select(expected.column_names).equals(expected), "the same rows as the tables on disk"
