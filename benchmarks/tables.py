#!/usr/bin/env python3
"""The tables' benchmark: ``binance-archive convert`` against what users write today, in one run.

    python benchmarks/tables.py            # ~5 minutes the first time (it writes the data), then ~3
    python benchmarks/tables.py --quick    # no 1 GB file, one run each

The anchor (``pandas``) is the loader users write: ``pandas.read_csv`` of each zip with the column names (and the
header row skipped where the file has one) and ``DataFrame.to_parquet``: no verification, no typed times, no
sanity checks. Each contender runs as a process of its own, alternated within each repetition, into a fresh
folder; ratios are of medians. Workloads:

- ``klines``: 200 daily spot 1m kline files (1,440 rows each), as the fake archive writes them;
- ``aggtrades``: one USD-M aggTrades day of ~1.3 million rows (~95 MB of CSV, as the real BTCUSDT ones), header
  row and all;
- ``big`` (full runs only): one aggTrades file of ~1 GB of CSV, for peak memory.

Results: ``benchmarks/results/tables.json`` and ``tables.md``; docs/performance.md quotes them.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import json
import shutil
import statistics
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

CONTENDERS = ("ours", "pandas")
DAY = dt.date(2024, 3, 5)
_AGG_COLUMNS = [
    "agg_trade_id", "price", "quantity", "first_trade_id", "last_trade_id", "transact_time", "is_buyer_maker",
]  # fmt: skip


def _aggtrades_csv(path: Path, rows: int) -> None:
    """A day of aggTrades in the real format, written by pyarrow in blocks (fast, and flat in memory)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pa_csv

    start = int(dt.datetime.combine(DAY, dt.time(), dt.UTC).timestamp() * 1000)
    block = 500_000
    unquoted = pa_csv.WriteOptions(quoting_style="none")
    with pa_csv.CSVWriter(path, pa.schema([(c, pa.string()) for c in _AGG_COLUMNS]), write_options=unquoted) as writer:
        done = 0
        while done < rows:
            n = min(block, rows - done)
            ids = pa.array(range(done, done + n), pa.int64())
            price = pc.add(pc.multiply(pc.sin(pc.divide(ids.cast(pa.float64()), 50_000.0)), 500.0), 60_000.0)
            qty = pc.add(pc.divide(pc.bit_wise_and(ids, 1023).cast(pa.float64()), 1000.0), 0.001)
            times = pc.add(pc.divide(pc.multiply(ids, 86_399_000), rows), start)
            maker = pc.equal(pc.bit_wise_and(ids, 1), 0)
            columns = [
                ids, pc.round(price, 2), pc.round(qty, 3), pc.multiply(ids, 2), pc.add(pc.multiply(ids, 2), 1),
                times, pc.if_else(maker, "true", "false"),
            ]  # fmt: skip
            writer.write_table(pa.table([c.cast(pa.string()) for c in columns], names=_AGG_COLUMNS))
            done += n


def _write_zip(root: Path, key: str, csv_path: Path) -> None:
    zip_path = root / key
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.write(csv_path, Path(key).name.replace(".zip", ".csv"))
    digest = hashlib.sha256(zip_path.read_bytes()).hexdigest()
    (root / (key + ".CHECKSUM")).write_text(f"{digest}  {zip_path.name}\n")


def ensure_data(cache: Path, *, big: bool) -> dict[str, Path]:
    """The mirrors of the workloads, written once into ``cache``."""
    from run import log

    from binance_archive import Selection, plan
    from binance_archive.testing import build_archive

    mirrors = {name: cache / name for name in ("klines", "aggtrades", "big")}
    if not (mirrors["klines"] / "data").is_dir():
        log("data: 200 daily spot 1m kline files ...")
        files = list(plan(Selection(markets="spot", data_types="klines", symbols="BTCUSDT", intervals="1m",
                                    start="2023-01-01", end="2023-07-19", periods="daily"), today=DAY))  # fmt: skip
        build_archive(mirrors["klines"], files[:200])
    for name, rows in (("aggtrades", 1_300_000), ("big", 14_000_000)):
        if name == "big" and not big:
            continue
        if not (mirrors[name] / "data").is_dir():
            log(f"data: one aggTrades file of {rows:,} rows ...")
            csv_path = cache / f"{name}.csv"
            _aggtrades_csv(csv_path, rows)
            symbol = "BTCUSDT" if name == "aggtrades" else "ETHUSDT"
            _write_zip(
                mirrors[name], f"data/futures/um/daily/aggTrades/{symbol}/{symbol}-aggTrades-{DAY}.zip", csv_path
            )
            csv_path.unlink()
    return {name: path for name, path in mirrors.items() if (path / "data").is_dir()}


# -- the contenders, each in a process of its own ------------------------------------------------------------


def work_ours(mirror: Path, out: Path) -> dict[str, Any]:
    from binance_archive import Archive

    report = asyncio.run(Archive(mirror, entry_points=False).convert(to=out, concurrency=2))
    assert report.ok, report.problems
    return {"rows": report.rows, "csv_bytes": report.csv_bytes, "engine_s": report.duration}


def work_pandas(mirror: Path, out: Path) -> dict[str, Any]:
    """What users write today: read_csv of the zip with column names, to_parquet."""
    import pandas as pd

    from binance_archive import ArchiveFile
    from binance_archive.core.schemas import schema_for

    rows = csv_bytes = 0
    started = time.perf_counter()
    for path in sorted(mirror.rglob("*.zip")):
        file = ArchiveFile.from_key(path.relative_to(mirror).as_posix())
        names = list(schema_for(file.market, file.data_type).names)
        with zipfile.ZipFile(path) as archive:
            info = archive.infolist()[0]
            csv_bytes += info.file_size
            header = not archive.open(info).read(1).isdigit()
        frame = pd.read_csv(path, names=names, header=0 if header else None)
        target = out / path.relative_to(mirror).with_suffix(".parquet")
        target.parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(target)
        rows += len(frame)
    return {"rows": rows, "csv_bytes": csv_bytes, "engine_s": time.perf_counter() - started}


def worker(argv: list[str]) -> None:
    contender, mirror, out = argv[0], Path(argv[1]), Path(argv[2])
    started = time.perf_counter()
    result = (work_ours if contender == "ours" else work_pandas)(mirror, out)
    result["process_s"] = time.perf_counter() - started
    print(json.dumps(result))


# -- the harness -------------------------------------------------------------------------------------------------


def measure(contender: str, mirror: Path, dest: Path, logs: Path) -> dict[str, Any]:
    # The harness's module, imported here and not at the top: each contender's process would pay for importing it
    # (aiohttp, the fake archive), the same time on both sides, and their ratio would lean towards 1.
    from run import python_env, run_process

    out = dest / f"{contender}-{time.monotonic_ns()}"
    argv = [sys.executable, str(Path(__file__).resolve()), "worker", contender, str(mirror), str(out)]
    record = run_process(argv, logs / out.name, env=python_env())
    lines = [line for line in (logs / out.name / "stdout.txt").read_text().splitlines() if line.startswith("{")]
    if record["returncode"] != 0 or not lines:
        raise SystemExit(f"{contender} failed: {(logs / out.name / 'stderr.txt').read_text()[-2000:]}")
    record.update(json.loads(lines[-1]))
    shutil.rmtree(out, ignore_errors=True)
    return record


def main() -> None:
    from run import log

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="no 1 GB file, one run each")
    parser.add_argument("--runs", type=int, help="repetitions of each workload (default 3; 1 with --quick)")
    parser.add_argument("--cache", default="~/.cache/binance-archive-bench/tables", help="where the data is kept")
    parser.add_argument("--dest", default="/dev/shm/binance-archive-tables", help="where the tables go")
    args = parser.parse_args()
    runs = args.runs or (1 if args.quick else 3)
    cache = Path(args.cache).expanduser()
    cache.mkdir(parents=True, exist_ok=True)
    dest = Path(args.dest)
    dest.mkdir(parents=True, exist_ok=True)
    logs = Path(dest) / "logs"
    mirrors = ensure_data(cache, big=not args.quick)
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for workload, mirror in mirrors.items():
        contenders = ("ours",) if workload == "big" else CONTENDERS
        results[workload] = {c: [] for c in contenders}
        for rep in range(runs):
            order = contenders if rep % 2 == 0 else tuple(reversed(contenders))
            for contender in order:
                record = measure(contender, mirror, dest, logs)
                results[workload][contender].append(record)
                rate = record["rows"] / record["wall_s"]
                log(
                    f"  {workload}-{contender}-{rep}: {record['wall_s']:.2f} s, {rate:,.0f} rows/s, "
                    f"cpu {record['cpu_s']:.2f} s, rss {record['maxrss_mb']:.0f} MB"
                )
    shutil.rmtree(dest, ignore_errors=True)
    out = HERE / "results" / ("tables-quick.json" if args.quick else "tables.json")
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"runs": runs, "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                               "results": results}, indent=1))  # fmt: skip
    table = _markdown(results)
    out.with_suffix(".md").write_text(table)
    print(table)


def _markdown(results: dict[str, dict[str, list[dict[str, Any]]]]) -> str:
    lines = [
        "| workload | contender | rows | MB of CSV | wall s | rows/s | MB/s | CPU s | peak RSS MB | vs pandas |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for workload, by_contender in results.items():
        medians = {}
        for contender, records in by_contender.items():
            wall = statistics.median(r["wall_s"] for r in records)
            medians[contender] = records[0]["rows"] / wall
        for contender, records in by_contender.items():
            wall = statistics.median(r["wall_s"] for r in records)
            cpu = statistics.median(r["cpu_s"] for r in records)
            rss = max(r["maxrss_mb"] for r in records)
            rows, mb = records[0]["rows"], records[0]["csv_bytes"] / 1e6
            ratio = f"{medians[contender] / medians['pandas']:.2f}x" if "pandas" in medians else "-"
            lines.append(
                f"| {workload} | {contender} | {rows:,} | {mb:,.0f} | {wall:.2f} | {rows / wall:,.0f} | "
                f"{mb / wall:,.0f} | {cpu:.2f} | {rss:.0f} | {ratio} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        worker(sys.argv[2:])
    else:
        main()
