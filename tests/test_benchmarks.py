"""The benchmark harness's own logic (benchmarks/): the contenders' command lines, its options, and the report's
ratios, latency bounds and targets, on runs made up here. The harness's measurements themselves are not tests
(docs/performance.md); this checks that what it reports is computed as benchmarks/README.md says."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def _bench(name: str) -> Any:
    """A module of benchmarks/ (which imports its siblings by their bare names)."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(BENCHMARKS))


def _run(contender: str, wall: float, *, latency: int = 200, files: int = 2000, **extra: Any) -> dict[str, Any]:
    return {
        "workload": "small",
        "latency_ms": latency,
        "contender": contender,
        "rep": 0,
        "files": files,
        "wall_s": wall,
        "cpu_s": 1.0,
        "maxrss_mb": 50.0,
        "requests": {"total": 2 * files, "by_method": {"GET": 2 * files}, "server_cpu_s": 0.1, **extra.pop("req", {})},
        "dest": {"zips": files, "sidecars": files, "bytes": files * 75_000},
        **extra,
    }


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    report = _bench("report")
    return report.summarize({"runs": runs, "machine": {}})


def _row(summary: dict[str, Any], contender: str) -> dict[str, Any]:
    return next(r for r in summary["rows"] if r["contender"] == contender)


def test_curl_is_a_contender_with_its_own_ratio_and_latency_bound() -> None:
    runs = [
        _run("http", 5.0, worker={"concurrency": 80, "engine_seconds": 4.9}),
        _run("s5cmd", 8.0),
        _run("curl", 4.0, req={"by_protocol": {"HTTP/2.0": 4000}}),
    ]
    summary = _summary(runs)
    ours, curl = _row(summary, "http"), _row(summary, "curl")
    assert ours["x_curl_files_per_s"] == pytest.approx(4.0 / 5.0)
    assert ours["x_s5cmd_files_per_s"] == pytest.approx(8.0 / 5.0)
    # curl: 256 transfers at once, a zip and a sidecar a file, one GET each.
    assert curl["latency_bound_files_per_s"] == pytest.approx(256 / 2 / 0.2)
    assert curl["protocols"] == {"HTTP/2.0": 1.0}
    # Ours: files x latency / files in flight.
    assert ours["latency_bound_s"] == pytest.approx(2000 * 0.2 / 80)
    assert ours["fraction_of_bound"] == pytest.approx(5.0 / 5.0)
    names = {t["target"]: t for t in summary["targets"]}
    against_curl = names["small files, 200 ms: HTTP transport files/s vs plain curl --parallel"]
    assert (against_curl["goal"], against_curl["met"]) == (1.5, False)
    assert names["small files, 200 ms, tmpfs: HTTP transport files/s vs plain s5cmd"]["goal"] == 3.0


def test_the_latency_bound_is_taken_at_the_level_the_run_settled_on_when_the_report_carries_one() -> None:
    runs = [
        _run("http", 2.0, worker={"concurrency": 256, "settled_concurrency": 200}),
        _run("http", 2.2, rep=1, worker={"concurrency": 256, "settled_concurrency": 220}),
        _run("http", 2.4, rep=2, worker={"concurrency": 256, "settled_concurrency": 240}),
    ]
    row = _row(_summary(runs), "http")
    assert row["in_flight"] == 220  # the median of the runs' settled levels, not the ceiling of 256
    assert row["latency_bound_s"] == pytest.approx(2000 * 0.2 / 220)
    report = _bench("report")
    assert "at 220 settled" in report._bound_text(row)


def test_the_curl_contender_reads_every_zip_and_sidecar_from_one_list_and_trusts_the_runs_ca(tmp_path: Path) -> None:
    contenders = _bench("contenders")
    keys = ["data/spot/a.zip", "data/spot/a.zip.CHECKSUM"]
    ca = tmp_path / "ca.pem"
    argv, _ = contenders.command(
        "curl",
        base_url="https://127.0.0.1:1",
        dest=tmp_path / "dest",
        folder=tmp_path,
        keys=keys,
        spec=[],
        ca_file=ca,
        s5cmd="s5cmd",
    )
    assert argv[:4] == ["curl", "--parallel", "--parallel-max", "256"]
    assert "--create-dirs" in argv and argv[argv.index("--cacert") + 1] == str(ca)
    listing = (tmp_path / "curl.txt").read_text().splitlines()
    assert listing == [
        'url = "https://127.0.0.1:1/data/spot/a.zip"',
        f'output = "{tmp_path / "dest"}/data/spot/a.zip"',
        'url = "https://127.0.0.1:1/data/spot/a.zip.CHECKSUM"',
        f'output = "{tmp_path / "dest"}/data/spot/a.zip.CHECKSUM"',
    ]
    # Over HTTPS ours trusts the CA through the ca_bundle option; s5cmd through AWS_CA_BUNDLE (it ignores
    # SSL_CERT_FILE).
    ours, _ = contenders.command(
        "http", base_url="https://h", dest=tmp_path, folder=tmp_path, keys=keys, spec=[], ca_file=ca, s5cmd="s5cmd"
    )
    assert f"ca_bundle={ca}" in ours
    _, env = contenders.command(
        "s5cmd", base_url="https://h", dest=tmp_path, folder=tmp_path, keys=keys, spec=[], ca_file=ca, s5cmd="s5cmd"
    )
    assert env["AWS_CA_BUNDLE"] == str(ca)


def test_the_harness_refuses_an_unknown_workload_naming_the_valid_ones(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BENCH_CACHE", "")  # parse_args sets it: restored after the test
    run = _bench("run")
    with pytest.raises(SystemExit):
        run.parse_args(["--workloads", "small,tiny"])
    err = capsys.readouterr().err
    assert "'tiny'" in err and "small,https,https-h1,https-far,disk,slow-disk" in err
    args = run.parse_args(["--quick", "--workloads", "small"])
    assert args.latencies == [0.0, 0.05, 0.2]


def test_the_disk_workloads_refuse_a_tmpfs_destination(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BENCH_CACHE", "")
    run = _bench("run")
    if run.filesystem_of(Path("/dev/shm")) != "tmpfs":
        pytest.fail("this test needs /dev/shm to be a tmpfs, as on Linux")
    with pytest.raises(SystemExit):
        run.parse_args(["--workloads", "slow-disk", "--disk-dest", "/dev/shm/bench-disk"])
    assert "--disk-dest /dev/shm/bench-disk is on a tmpfs" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("contender", "client"),
    [("http", None), ("http-native", "native"), ("http-pyreqwest", "pyreqwest"), ("http-aiohttp", "aiohttp")],
)
def test_each_http_contender_runs_the_client_it_names(contender: str, client: str | None, tmp_path: Path) -> None:
    contenders = _bench("contenders")
    argv, _ = contenders.command(
        contender, base_url="http://h", dest=tmp_path, folder=tmp_path, keys=[], spec=[], ca_file=None, s5cmd="s5cmd"
    )
    chosen = [argv[i + 1] for i, a in enumerate(argv) if a == "--option" and argv[i + 1].startswith("client=")]
    assert chosen == ([] if client is None else [f"client={client}"]), "the http contender runs the default client"
    report = _bench("report")
    assert contender in report.LABELS and contender in report.ORDER and contender in report.VERIFIES
    assert _row(_summary([_run(contender, 1.0), _run("curl", 2.0)]), contender)["files_per_s"] == 2000


@pytest.mark.parametrize(("data_type", "days"), [("trades", 3), ("klines", 20)], ids=["threads", "event-loop"])
async def test_the_floor_contender_verifies_every_zip_and_refuses_a_corrupt_one(
    data_type: str, days: int, tmp_path: Path
) -> None:
    """The floor (benchmarks/worker.py floor) is a verifying download, on a thread a zip for a few files and on an
    event loop for more: what it stores equals the archive's files, and a zip that differs from its sidecar fails
    the run and is not stored under its name."""
    import asyncio
    import datetime as dt
    import subprocess

    from binance_archive import Selection
    from binance_archive.testing import FakeArchiveServer, build_archive

    from .engine.scenario import planned

    worker = _bench("worker")
    assert (days <= worker.FLOOR_THREADS_UP_TO) == (data_type == "trades"), "one case for each way of fetching"
    end = (dt.date(2024, 1, 1) + dt.timedelta(days=days - 1)).isoformat()
    intervals = "1h" if data_type == "klines" else None
    files = planned(Selection(markets="spot", data_types=data_type, symbols="BTCUSDT", intervals=intervals,
                              start="2024-01-01", end=end, periods="daily"))  # fmt: skip
    assert len(files) == days
    upstream = tmp_path / "upstream"
    build_archive(upstream, files, max_rows=20)
    contenders = _bench("contenders")
    assert "floor" in contenders.HTTP_ONLY, "the floor speaks plain HTTP only"

    def floor(server: FakeArchiveServer, dest: Path) -> subprocess.CompletedProcess[str]:
        folder = dest.with_suffix(".lists")
        folder.mkdir()
        keys = [k for f in files for k in (f.key, f.checksum_key)]
        argv, env = contenders.command(
            "floor", base_url=server.base_url, dest=dest, folder=folder, keys=keys, spec=[], ca_file=None, s5cmd=""
        )
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)

    async with FakeArchiveServer(upstream) as server:
        done = await asyncio.to_thread(floor, server, tmp_path / "dest")
        assert done.returncode == 0, done.stderr
        for f in files:
            for key in (f.key, f.checksum_key):
                assert (tmp_path / "dest" / key).read_bytes() == (upstream / key).read_bytes()
        server.faults.corrupt_keys = {files[1].key}
        done = await asyncio.to_thread(floor, server, tmp_path / "bad")
    assert done.returncode == 1
    assert "SHA-256 differs" in done.stdout
    assert not (tmp_path / "bad" / files[1].key).exists()
    assert (tmp_path / "bad" / files[0].key).exists()


def test_the_benchmark_nginx_answers_the_listing_of_folders_and_refuses_what_it_cannot_list(tmp_path: Path) -> None:
    """The s5cmd transport checks the symbols a run names against the bucket's listing: nginx answers it from
    files written at start-up (one per folder of folders), and marks each folder of files as one it cannot list
    (answered 501 rather than with a wrong listing)."""
    import hashlib
    import shutil

    from binance_archive.core.listing import parse_listing

    server = _bench("server")
    tree = tmp_path / "tree"
    for key in ("data/spot/daily/klines/BTCUSDT/1m/a.zip", "data/spot/daily/klines/ETHUSDT/1m/b.zip"):
        (tree / "bucket" / key).parent.mkdir(parents=True, exist_ok=True)
        (tree / "bucket" / key).write_bytes(b"x")
    nginx = server.NginxServer(tree, "bucket", [0.0], binary="true", modules=[])
    try:
        nginx.write_listings()
        listings = nginx.dir / "listings"

        def listed(prefix: str) -> list[str]:  # read as the library's clients read a listing
            return list(
                parse_listing((listings / f"{hashlib.md5(prefix.encode()).hexdigest()}.xml").read_bytes()).prefixes
            )

        assert listed("data/spot/daily/klines/") == [
            "data/spot/daily/klines/BTCUSDT/",
            "data/spot/daily/klines/ETHUSDT/",
        ]
        assert listed("") == ["data/"]
        assert (listings / f"{hashlib.md5(b'data/spot/daily/klines/BTCUSDT/1m/').hexdigest()}.files").exists()
        assert "location = /bucket" in nginx.config() and "NotImplemented" in nginx.config()
    finally:
        shutil.rmtree(nginx.dir, ignore_errors=True)


def test_nginx_delays_every_handshake_of_the_far_https_ports_only(tmp_path: Path) -> None:
    """``https-far``: each TLS handshake waits the latency (sessions not resumed, so none skips it); the other
    ports delay requests only. Every port differs (nginx refuses a configuration listening twice on one)."""
    import shutil

    server = _bench("server")
    nginx = server.NginxServer(tmp_path / "tree", "bucket", [0.0, 0.2], binary="true", modules=[])
    try:
        config = nginx.config()
        assert config.count("ssl_certificate_by_lua_block { ngx.sleep(0.2) }") == 1
        assert "ngx.sleep(0.0)" not in config  # no delay at all on the 0 ms ports, handshake or request
        assert config.count("ssl_session_cache off;") == 1 and config.count("ssl_session_tickets off;") == 1
        assert len(set(nginx.ports.values())) == len(nginx.ports) == 2 * len(server.SCHEMES)
        assert nginx.base_url(0.2, "https-far").startswith("https://127.0.0.1:")
        assert nginx.base_url(0.2, "https1").startswith("https://") and nginx.base_url(0.2).startswith("http://")
    finally:
        shutil.rmtree(nginx.dir, ignore_errors=True)
