"""The issues' targets, checked against a run's summary (``report.summarize``): ratios within the run.

Issue #21's targets (curl, 200 ms, HTTPS, this machine's disk) where it set them, the earlier ones (s5cmd
transport, planning, resume, memory) where it did not. A target whose rows the run did not measure is left out.
"""

from __future__ import annotations

from typing import Any

OURS = "http"


def row(summary: dict[str, Any], workload: str, latency: int, contender: str) -> dict[str, Any] | None:
    """The summary row of ``contender`` in ``workload`` at ``latency`` ms, if the run measured it."""
    return next(
        (
            r
            for r in summary["rows"]
            if (r["workload"], r["latency_ms"], r["contender"]) == (workload, latency, contender)
        ),
        None,
    )


def targets(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target, measured on the library as it is: name, goal, measured value, whether it is met."""
    out: list[dict[str, Any]] = []

    def check(name: str, value: float | None, goal: float, *, at_most: bool = False, unit: str = "") -> None:
        if value is None or value != value:
            return
        met = value <= goal if at_most else value >= goal
        out.append({"target": name, "measured": value, "goal": goal, "at_most": at_most, "unit": unit, "met": met})

    def ours(workload: str, latency: int, field: str, contender: str = OURS) -> float | None:
        return (row(summary, workload, latency, contender) or {}).get(field)

    # Against curl --parallel, which verifies nothing (issue #21).
    for latency, goal in ((200, 1.5), (50, 1.2), (0, 0.9)):
        value = ours("small", latency, "x_curl_files_per_s")
        check(f"small files, {latency} ms: HTTP transport files/s vs plain curl --parallel", value, goal, unit="x")
    # Against plain s5cmd: tmpfs, this machine's disk (fresh folders; one folder emptied), HTTPS.
    for workload, latency, goal, where in (
        ("small", 200, 3.0, "tmpfs"),
        ("small", 50, 2.5, "tmpfs"),
        ("small", 0, 3.5, "tmpfs"),
        ("disk", 50, 2.5, "this machine's disk, fresh folders"),
        ("slow-disk", 50, 2.0, "this machine's disk, one folder emptied before each run"),
        ("https", 50, 2.0, "HTTPS"),
    ):
        value = ours(workload, latency, "x_s5cmd_files_per_s")
        check(f"small files, {latency} ms, {where}: HTTP transport files/s vs plain s5cmd", value, goal, unit="x")
    for latency, goal in ((50, 2.0), (0, 2.5)):
        two = ours("small", latency, "x_s5cmd_files_per_s", "http-2p")
        name = f"small files, {latency} ms: HTTP transport, `--processes 2`, files/s vs plain s5cmd"
        check(name, two, goal, unit="x")
    for latency in (50, 200):
        r = row(summary, "small", latency, OURS)
        if r and r.get("fraction_of_bound") is not None:
            seconds = latency / 1000
            level = f"{r['in_flight']:.0f} in flight" + (" (settled)" if r.get("settled_concurrency") else "")
            check(
                f"small files, {latency} ms: HTTP transport vs the latency bound ({r['files']:,} x {seconds} s / "
                f"{level} = {r['latency_bound_s']:.2f} s)",
                r["fraction_of_bound"],
                0.7,
                unit="of bound",
            )
            # The bound is a steady-state rate: the same comparison without the interpreter's start-up.
            if r["engine_s"] and r["latency_bound_files_per_s"]:
                check(
                    f"small files, {latency} ms: HTTP transport vs the latency bound (engine, without start-up)",
                    r["files"] / r["engine_s"] / r["latency_bound_files_per_s"],
                    0.7,
                    unit="of bound",
                )
    check(
        "small files, 0 ms: HTTP transport CPU-s per file vs plain s5cmd",
        ours("small", 0, "x_s5cmd_cpu_per_file"),
        0.25,
        at_most=True,
        unit="x",
    )
    for latency in (0, 50):
        value = ours("large", latency, "x_s5cmd_mb_per_s")
        check(f"large files, {latency} ms: HTTP transport MB/s vs plain s5cmd", value, 1.0, unit="x")
    for workload, field, what in (("small", "x_s5cmd_files_per_s", "files/s"), ("large", "x_s5cmd_mb_per_s", "MB/s")):
        for latency in (0, 50):
            value = ours(workload, latency, field, "s5cmd-transport")
            check(f"{workload} files, {latency} ms: s5cmd transport {what} vs plain s5cmd", value, 0.9, unit="x")
    planning = summary.get("planning")
    if planning:
        check(f"planning {planning['files'] / 1e6:.1f} M files: keys/s", planning["keys_per_s"], 300_000)
        check("planning: peak RSS", planning["maxrss_mb"], 100, at_most=True, unit="MB")
    r = row(summary, "resume", 0, OURS)
    if r:
        check(f"resume over {r['files']:,} stored files: files/s (whole process)", r["files_per_s"], 50_000)
        if r["engine_s"]:
            check(
                f"resume over {r['files']:,} stored files: files/s (engine, without start-up)",
                r["files"] / r["engine_s"],
                50_000,
            )
        check("resume: requests sent", r["requests_per_file"] * r["files"], 0, at_most=True)
    r = row(summary, "scale", 0, OURS)
    if r:
        check(f"download of {r['files']:,} files: peak RSS", r["maxrss_mb"], 200, at_most=True, unit="MB")
    return out
