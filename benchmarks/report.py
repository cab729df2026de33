"""Turning the harness's raw runs into medians, ratios, target checks, Markdown and a PNG chart."""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from contenders import CONTENDERS
from targets import row as row_of
from targets import targets

LABELS = {
    "http": "binance_archive, HTTP transport",
    "http-native": "binance_archive, HTTP transport, native client",
    "http-pyreqwest": "binance_archive, HTTP transport, pyreqwest client",
    "http-aiohttp": "binance_archive, HTTP transport, aiohttp client",
    "http-2p": "binance_archive, HTTP transport, `--processes 2`",
    "s5cmd-transport": "binance_archive, s5cmd transport",
    "s5cmd": "plain `s5cmd run` (anchor)",
    "curl": "plain `curl --parallel --parallel-max 256 -K LIST`",
    "sequential": "sequential, one file at a time",
    "floor": "floor: a verifying download with nothing else (Python, no engine)",
}
VERIFIES = {
    "http": "yes",
    "http-native": "yes",
    "http-pyreqwest": "yes",
    "http-aiohttp": "yes",
    "http-2p": "yes",
    "s5cmd-transport": "yes",
    "s5cmd": "no",
    "curl": "no",
    "sequential": "no",
    "floor": "yes",
}
ORDER = CONTENDERS  # the tables list the contenders in the harness's order
WORKLOAD_ORDER = ("small", "https", "https-h1", "https-far", "disk", "slow-disk", "large", "scale", "resume")
SHORT = {
    "http": "binance_archive (HTTP)",
    "http-native": "binance_archive (HTTP, native)",
    "http-pyreqwest": "binance_archive (HTTP, pyreqwest)",
    "http-aiohttp": "binance_archive (HTTP, aiohttp)",
    "http-2p": "binance_archive (HTTP, 2 processes)",
    "s5cmd-transport": "binance_archive (s5cmd)",
    "s5cmd": "plain s5cmd run",
    "curl": "plain curl --parallel",
    "sequential": "sequential",
    "floor": "verifying floor (Python)",
}
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
IN_FLIGHT = {"s5cmd": 256, "curl": 256, "sequential": 1, "floor": 128}
"""Requests in flight of the tools that are not ours: s5cmd's workers, curl's --parallel-max, one at a time."""


STOLEN = 0.10
"""A run whose hypervisor steal exceeds this share of the cores' time is counted as slowed by other guests."""


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _bound(contender: str, latency_s: float, concurrency: int | None) -> float | None:
    """Files/s that latency alone allows: requests in flight / round trips per file / latency.

    Its inverse times the files is the latency bound of a run's time: files x latency / files in flight.
    """
    if latency_s <= 0:
        return None
    if contender in ("http", "http-native", "http-pyreqwest", "http-aiohttp", "http-2p") and concurrency:
        return concurrency / latency_s  # zip and sidecar in flight together: one round trip a file
    if contender == "s5cmd":
        return 256 / (2 * 2 * latency_s)  # 256 workers; HEAD then GET; zip and sidecar are two objects
    if contender == "curl":
        return 256 / (2 * latency_s)  # 256 transfers at once; zip and sidecar are two transfers of one GET each
    if contender == "sequential":
        return 1 / (2 * latency_s)  # zip, then sidecar
    if contender == "floor":
        return 128 / latency_s  # 128 files at once on one loop, zip and sidecar together (a few large ones aside)
    return None


def summarize(results: dict[str, Any]) -> dict[str, Any]:
    groups: dict[tuple[str, int, str], list[dict[str, Any]]] = defaultdict(list)
    for run in results["runs"]:
        groups[(run["workload"], run["latency_ms"], run["contender"])].append(run)
    rows = []
    for (workload, latency, contender), runs in groups.items():
        if workload == "plan":
            continue
        worker = [r.get("worker", {}) for r in runs]
        files = runs[0]["files"]
        row = {
            "workload": workload,
            "latency_ms": latency,
            "contender": contender,
            "runs": len(runs),
            "files": files,
            "wall_s": _median([r["wall_s"] for r in runs]),
            "files_per_s": _median([r["files"] / r["wall_s"] for r in runs]),
            "mb_per_s": _median([r["dest"]["bytes"] / 1e6 / r["wall_s"] for r in runs]),
            "cpu_s_per_1000": _median([r["cpu_s"] / max(1, r["files"]) * 1000 for r in runs]),
            "maxrss_mb": _median([r["maxrss_mb"] for r in runs]),
            "maxrss_mb_max": max(r["maxrss_mb"] for r in runs),
            "requests_per_file": _median([r["requests"]["total"] / max(1, r["files"]) for r in runs]),
            "requests_by_method": runs[0]["requests"].get("by_method", {}),
            "server_cpu_s_per_1000": _median([r["requests"]["server_cpu_s"] / max(1, r["files"]) * 1000 for r in runs]),
            "background_cpu_s": _median([r.get("background_cpu_s", 0.0) for r in runs]),
            "steal_share": _median([r.get("steal_share", 0.0) for r in runs]),
            "stolen_runs": sum(1 for r in runs if r.get("steal_share", 0.0) > STOLEN),
            "engine_s": _median([w["engine_seconds"] for w in worker if "engine_seconds" in w])
            if any("engine_seconds" in w for w in worker)
            else None,
            "concurrency": next((w["concurrency"] for w in worker if "concurrency" in w), None),
            # The level an adaptive run settled on (the report's, where it carries one): the median of the runs.
            "settled_concurrency": _median(settled) if (settled := _settled(worker)) else None,
            "protocols": _protocols(runs),
            "problems": [p for r in runs for p in r.get("problems", [])],
        }
        level = row["settled_concurrency"] or row["concurrency"]
        row["in_flight"] = level or IN_FLIGHT.get(contender)
        bound = _bound(contender, latency / 1000, level)
        row["latency_bound_files_per_s"] = bound
        row["latency_bound_s"] = files / bound if bound else None  # files x latency / files in flight
        row["fraction_of_bound"] = row["files_per_s"] / bound if bound else None
        rows.append(row)
    anchors = {(r["workload"], r["latency_ms"]): r for r in rows if r["contender"] == "s5cmd"}
    curls = {(r["workload"], r["latency_ms"]): r for r in rows if r["contender"] == "curl"}
    for row in rows:
        anchor = anchors.get((row["workload"], row["latency_ms"]))
        if anchor is not None:
            row["x_s5cmd_files_per_s"] = row["files_per_s"] / anchor["files_per_s"]
            row["x_s5cmd_mb_per_s"] = row["mb_per_s"] / anchor["mb_per_s"]
            row["x_s5cmd_cpu_per_file"] = row["cpu_s_per_1000"] / anchor["cpu_s_per_1000"]
        curl = curls.get((row["workload"], row["latency_ms"]))
        if curl is not None:
            row["x_curl_files_per_s"] = row["files_per_s"] / curl["files_per_s"]
            row["x_curl_mb_per_s"] = row["mb_per_s"] / curl["mb_per_s"]
    rows.sort(key=lambda r: (WORKLOAD_ORDER.index(r["workload"]), r["latency_ms"], ORDER.index(r["contender"])))
    plan_runs = [r for r in results["runs"] if r["workload"] == "plan" and "worker" in r]
    planning = None
    if plan_runs:
        planning = {
            "runs": len(plan_runs),
            "files": plan_runs[0]["worker"]["files"],
            "keys_per_s": _median([r["worker"]["files"] / r["worker"]["engine_seconds"] for r in plan_runs]),
            "keys_per_cpu_s": _median([r["worker"]["files"] / r["worker"]["engine_cpu_seconds"] for r in plan_runs]),
            "maxrss_mb": _median([r["maxrss_mb"] for r in plan_runs]),
            "background_cpu_s": _median([r.get("background_cpu_s", 0.0) for r in plan_runs]),
        }
    summary = {"rows": rows, "planning": planning, "ceilings": verifying_ceilings(results)}
    summary["targets"] = targets(summary)
    return summary


def _settled(worker: list[dict[str, Any]]) -> list[float]:
    return [w["settled_concurrency"] for w in worker if w.get("settled_concurrency")]


def _protocols(runs: list[dict[str, Any]]) -> dict[str, float]:
    """The share of requests answered in each HTTP version (``HTTP/1.1``, ``HTTP/2.0``), over every run."""
    counts: dict[str, int] = defaultdict(int)
    for run in runs:
        for protocol, n in run["requests"].get("by_protocol", {}).items():
            counts[protocol] += n
    total = sum(counts.values())
    return {p: n / total for p, n in sorted(counts.items())} if total else {}


def verifying_ceiling(
    s5cmd_wall_s: float, s5cmd_cpu_s: float, nbytes: int, sha256_mb_per_s: float, cores: int
) -> float:
    """The MB/s ratio to plain s5cmd of a download that moves the bytes for s5cmd's CPU and hashes them too.

    That is s5cmd's CPU-seconds (receiving and writing the bytes) plus hashing them, which s5cmd does not, spread
    over ``cores`` cores, and no less than s5cmd's own time: on a machine with few cores, large files are bound
    by CPU, and this tells how much of the gap to a tool that does not verify the hash alone explains. It is an
    estimate, not a bound: a download that moves the bytes for less CPU than s5cmd does can pass it (our engine,
    start-up aside, did: docs/performance.md).
    """
    hash_s = nbytes / 1e6 / sha256_mb_per_s
    best_wall = max(s5cmd_wall_s, (s5cmd_cpu_s + hash_s) / cores)
    return s5cmd_wall_s / best_wall


def verifying_ceilings(results: dict[str, Any]) -> dict[int, dict[str, float]]:
    """For each latency of the large-file workload: the median ceiling over the anchor's runs, and its parts."""
    m = results.get("machine", {})
    rate, cores = m.get("sha256_mb_per_s"), m.get("cores")
    if not rate or not cores:
        return {}
    by_latency: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for run in results["runs"]:
        if run["workload"] == "large" and run["contender"] == "s5cmd" and run["dest"]["bytes"]:
            by_latency[run["latency_ms"]].append(run)
    return {
        latency: {
            "ceiling_x": _median(
                [verifying_ceiling(r["wall_s"], r["cpu_s"], r["dest"]["bytes"], rate, cores) for r in runs]
            ),
            "s5cmd_cpu_s": _median([r["cpu_s"] for r in runs]),
            "hash_cpu_s": _median([r["dest"]["bytes"] / 1e6 / rate for r in runs]),
            "sha256_mb_per_s": rate,
            "cores": cores,
        }
        for latency, runs in sorted(by_latency.items())
    }


# -- Markdown ---------------------------------------------------------------------------------------------------


def _f(value: float | None, digits: int = 0) -> str:
    if value is None or value != value:
        return "—"
    return f"{value:,.{digits}f}"


def _x(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}x"


def _requests(row: dict[str, Any]) -> str:
    methods = row["requests_by_method"]
    detail = " + ".join(f"{n / max(1, row['files']):.2f} {m}" for m, n in sorted(methods.items()))
    return f"{row['requests_per_file']:.2f}" + (f" ({detail})" if len(methods) > 1 else "")


def _http(row: dict[str, Any]) -> str:
    """The HTTP versions the server answered in: ``1.1``, ``2``, or both with their shares."""
    shares = row.get("protocols") or {}
    names = {p: p.removeprefix("HTTP/").removesuffix(".0") for p in shares}
    if len(shares) <= 1:
        return next(iter(names.values()), "—")
    return ", ".join(f"{names[p]} {share:.0%}" for p, share in shares.items())


def _bound_text(row: dict[str, Any]) -> str:
    bound = row["latency_bound_files_per_s"]
    if bound is None:
        return "—"
    level = f"{row['in_flight']:,.0f}" if row.get("in_flight") else "—"
    if row.get("settled_concurrency"):
        level += " settled"
    return f"{bound:,.0f} at {level} ({row['latency_bound_s']:.2f} s; {row['fraction_of_bound']:.0%} reached)"


def markdown(results: dict[str, Any]) -> str:
    s = results["summary"]
    m = results["machine"]
    lines = [
        f"Run of `{results['command']}` on {results['started'][:10]} ({results['started'][11:]} to "
        f"{results['finished'][11:]} UTC), {m['cores']} cores ({m['cpu']}), {m['memory_gb']} GiB, Python {m['python']},"
        f" aiohttp {m['aiohttp']}, s5cmd {m['s5cmd']}, {m.get('curl') or 'no curl'},"
        f" binance_archive {m['binance_archive']} (git {m.get('git', '?')}"
        + (
            f", with uncommitted changes to {len(m['uncommitted'])} files of the package"
            if m.get("uncommitted")
            else ""
        )
        + ").",
        f"Server: {results['server'] or '—'}. Load average at the start: "
        f"{', '.join(f'{x:.2f}' for x in m['load_at_start'])}."
        + (
            f" Destinations in `{d['folder']}` ({d.get('filesystem', '?')}), where creating a file took"
            f" {d['create_us']:,.0f} µs of system time."
            if (d := results.get("destinations"))
            else ""
        )
        + (
            f" The disk workloads' destinations in `{d['folder']}` ({d['filesystem']}), where creating a file in a"
            f" fresh folder took {d['create_us']:,.0f} µs."
            if (d := results.get("disk_destinations"))
            else ""
        ),
        "",
    ]
    for name, d in results["datasets"].items():
        lines.append(
            f"- dataset `{d['name']}` ({name}): {d['files']:,} zips, mean {d['mean_zip_bytes'] / 1e3:,.1f} KB,"
            f" {(d['zip_bytes'] + d['sidecar_bytes']) / 1e6:,.1f} MB with the sidecars"
        )
    lines.append("")
    titles = {
        "small": "Small files",
        "https": "Small files over HTTPS (TLS 1.3, HTTP/2 offered by ALPN)",
        "https-h1": "Small files over HTTPS (TLS 1.3, HTTP/1.1 only)",
        "https-far": "Small files over HTTPS far away (HTTP/2 offered; every TLS handshake delayed as a request is)",
        "disk": "Small files to this machine's disk (a fresh folder per run)",
        "slow-disk": "Small files to this machine's disk (one folder, the previous run's files deleted just before)",
        "large": "Large files",
        "scale": "Scale: one big download (HTTP transport)",
        "resume": "Resume: the same download again, everything stored (HTTP transport)",
    }
    by_group: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for row in s["rows"]:
        by_group[(row["workload"], row["latency_ms"])].append(row)
    for (workload, latency), rows in by_group.items():
        runs = max(r["runs"] for r in rows)
        lines += [
            f"### {titles[workload]}, {latency} ms per request ({rows[0]['files']:,} files; median of {runs} "
            f"run{'s' if runs > 1 else ''})",
            "",
        ]
        lines += [
            "| contender | verifies | files/s | MB/s | CPU-s per 1,000 files | peak RSS MB | requests per file | HTTP |"
            " server CPU-s per 1,000 | wall s | files/s vs s5cmd | files/s vs curl | CPU/file vs s5cmd |"
            " latency bound: files/s at the files in flight (seconds) |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            label = LABELS[r["contender"]]
            if r["files"] != rows[0]["files"]:
                label += f" ({r['files']} files)"
            lines.append(
                f"| {label} | {VERIFIES[r['contender']]} | {_f(r['files_per_s'])} | {_f(r['mb_per_s'], 1)} | "
                f"{_f(r['cpu_s_per_1000'], 2)} | {_f(r['maxrss_mb'])} | {_requests(r)} | {_http(r)} | "
                f"{_f(r['server_cpu_s_per_1000'], 2)} | {_f(r['wall_s'], 2)} | {_x(r.get('x_s5cmd_files_per_s'))} | "
                f"{_x(r.get('x_curl_files_per_s'))} | {_x(r.get('x_s5cmd_cpu_per_file'))} | {_bound_text(r)} |"
            )
            if r["problems"]:
                lines.append(f"| ↳ problems: {'; '.join(r['problems'])[:300]} |||||||||||||")
        if workload == "resume":
            r = rows[0]
            lines += [
                "",
                f"Resume in the engine (without interpreter start-up and imports): "
                f"{r['files'] / r['engine_s']:,.0f} files/s ({r['engine_s']:.2f} s)."
                if r["engine_s"]
                else "",
            ]
        background = _median([r["background_cpu_s"] for r in rows])
        steal = _median([r.get("steal_share", 0.0) for r in rows])
        stolen = sum(r.get("stolen_runs", 0) for r in rows)
        lines += [
            "",
            f"Median CPU used by other processes on the machine during these runs: {background:.2f} CPU-s; "
            f"hypervisor steal (CPU time other guests took from this VM): {steal:.0%} of the cores' time"
            + (f", over {STOLEN:.0%} in {stolen} of these runs" if stolen else "")
            + ".",
            "",
        ]
    p = s.get("planning")
    if p:
        lines += [
            f"### Planning ({p['files']:,} daily 1m-kline files; median of {p['runs']} runs)",
            "",
            "| keys/s | keys per CPU-second | peak RSS MB |",
            "|---|---|---|",
            f"| {_f(p['keys_per_s'])} | {_f(p['keys_per_cpu_s'])} | {_f(p['maxrss_mb'])} |",
            "",
        ]
    lines += [
        "### Targets",
        "",
        "| target | goal | measured | met |",
        "|---|---|---|---|",
    ]
    for t in s["targets"]:
        goal = ("<= " if t["at_most"] else ">= ") + _fmt(t["goal"], t["unit"])
        lines.append(
            f"| {t['target']} | {goal} | {_fmt(t['measured'], t['unit'])} | {'**yes**' if t['met'] else '**no**'} |"
        )
    lines.append("")
    for latency, c in s.get("ceilings", {}).items():
        lines.append(
            f"- Large files, {latency} ms, a download that moved the bytes for s5cmd's CPU and hashed them too: "
            f"**{c['ceiling_x']:.2f}x** plain s5cmd's MB/s (s5cmd's {c['s5cmd_cpu_s']:.2f} CPU-s, plus "
            f"{c['hash_cpu_s']:.2f} CPU-s to hash the bytes at {c['sha256_mb_per_s']:,.0f} MB/s, on "
            f"{c['cores']} cores): an estimate, not a bound (see *Targets: what is met, what is not, and what "
            "limits it*)."
        )
    floors = {r["latency_ms"]: r for r in s["rows"] if r["workload"] == "large" and r["contender"] == "floor"}
    for latency, floor in sorted(floors.items()):
        ours = row_of(s, "large", latency, "http")
        if ours and floor.get("x_s5cmd_mb_per_s"):
            lines.append(
                f"- Large files, {latency} ms, measured floor: a verifying download with nothing but the work in it "
                f"(contender `floor`) reached **{floor['x_s5cmd_mb_per_s']:.2f}x** plain s5cmd's MB/s; ours "
                f"{ours['mb_per_s'] / floor['mb_per_s']:.2f}x the floor's."
            )
    if s.get("ceilings") or floors:
        lines.append("")
    return "\n".join(lines)


def _fmt(value: float, unit: str) -> str:
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "of bound":
        return f"{value:.0%} of the bound"
    if unit == "MB":
        return f"{value:.0f} MB"
    return f"{value:,.0f}"


# -- chart ------------------------------------------------------------------------------------------------------


def chart(results: dict[str, Any], path: Path, log: Any) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("chart: matplotlib is not installed (pip install -r benchmarks/requirements.txt); no PNG")
        return None
    rows = results["summary"]["rows"]
    panels = [
        ("small", 0, "files_per_s", "small files, 0 ms: files/s"),
        ("small", 50, "files_per_s", "small files, 50 ms: files/s"),
        ("small", 200, "files_per_s", "small files, 200 ms: files/s"),
        ("https", 50, "files_per_s", "small files over HTTPS, 50 ms: files/s"),
        ("slow-disk", 50, "files_per_s", "small files, this machine's disk, one folder emptied, 50 ms: files/s"),
        ("large", 0, "mb_per_s", "large files, 0 ms: MB/s"),
        ("small", 0, "cpu_s_per_1000", "small files, 0 ms: CPU-s per 1,000 files (lower is better)"),
    ]
    panels = [p for p in panels if any((r["workload"], r["latency_ms"]) == p[:2] for r in rows)]
    if not panels:
        return None
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 2.3 * len(panels) + 0.8), squeeze=False)
    colors = {
        "http": "#1f77b4",
        "http-native": "#e377c2",
        "http-pyreqwest": "#8c564b",
        "http-aiohttp": "#9467bd",
        "http-2p": "#2ca02c",
        "s5cmd-transport": "#17becf",
        "s5cmd": "#7f7f7f",
        "curl": "#ff7f0e",
        "sequential": "#d62728",
        "floor": "#bcbd22",
    }
    for ax, (workload, latency, metric, title) in zip(axes[:, 0], panels, strict=True):
        data = [r for r in rows if (r["workload"], r["latency_ms"]) == (workload, latency)]
        names = [SHORT[r["contender"]] for r in data]
        values = [r[metric] for r in data]
        bars = ax.barh(names, values, color=[colors[r["contender"]] for r in data])
        ax.invert_yaxis()
        ax.set_title(title, fontsize=10, loc="left")
        for bar, value in zip(bars, values, strict=True):
            ax.text(
                bar.get_width(),
                bar.get_y() + bar.get_height() / 2,
                f" {value:,.1f}" if value < 10 else f" {value:,.0f}",
                va="center",
                fontsize=8,
            )
        if metric == "files_per_s":
            bound = next((r["latency_bound_files_per_s"] for r in data if r["contender"] == "http"), None)
            if bound:
                ax.axvline(bound, color="black", linestyle="--", linewidth=1)
                ax.text(bound, -0.6, f"latency bound {bound:,.0f}", fontsize=7, ha="right")
        bound = next((r["latency_bound_files_per_s"] for r in data if r["contender"] == "http"), None)
        ax.set_xlim(0, max([*values, 1, (bound or 0) if metric == "files_per_s" else 0]) * 1.18)
        ax.tick_params(labelsize=8)
    fig.suptitle(
        f"binance_archive vs s5cmd and curl, {results['started'][:10]}, {results['machine']['cores']} cores, "
        f"{results['server_kind']} on loopback",
        fontsize=10,
    )
    height = 2.3 * len(panels) + 0.8
    fig.subplots_adjust(left=0.24, right=0.96, top=1 - 0.6 / height, bottom=0.3 / height, hspace=0.55)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def update_docs(doc: Path, markdown_text: str, chart_path: Path | None) -> None:
    """Replace the generated section of docs/performance.md (between the markers) with this run's results."""
    block = [BEGIN, "", markdown_text.rstrip(), ""]
    if chart_path is not None:
        rel = Path("..") / chart_path.resolve().relative_to(doc.resolve().parent.parent)
        block += [f"![results]({rel.as_posix()})", ""]
    block.append(END)
    text = doc.read_text() if doc.exists() else f"# Performance\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        text = text.rstrip() + f"\n\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    doc.write_text(head + "\n".join(block) + tail)
