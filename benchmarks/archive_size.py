"""The whole archive, on paper: how many files and bytes a full mirror holds, and how long it takes.

    .venv/bin/python benchmarks/archive_size.py [--assumptions FILE] [--today YYYY-MM-DD]

Prints the Markdown tables of docs/scale.md. Nothing is read from the network: the availability matrix comes from
the project's catalog (``binance_archive.core.DEFAULT_CATALOG``), the files of each series from its planner (so the
``auto`` rule, the catalog's first and last dates and the unpublished days are the library's own), and everything
the catalog cannot know from the assumptions in ``archive_size.json`` beside this script: how many symbols each
market has (live and delisted) and how long they live, a few first dates, and the average size of a file.

Each market's symbols are modelled as two cohorts. Live symbols have first days spread evenly over the last
``2 x live_mean_days`` (so their mean age is ``live_mean_days``) and run to yesterday; delisted symbols have first
days spread evenly from the market's first day on, each with ``delisted_mean_days`` of files. Each cohort is
planned at ``points_per_cohort`` evenly spaced first days, each point weighing its share of the cohort's symbols.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import sys
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from binance_archive.core import DEFAULT_CATALOG, Availability, DataType, Interval, Market, Period, Selection, plan

HERE = Path(__file__).resolve().parent
DAYS_PER_MONTH = 365.25 / 12
PLACEHOLDER = "BTCUSDT"  # every series is planned under one symbol's name: only the count of its files matters

Window = tuple[float, dt.date, dt.date | None]  # symbols it stands for, first day, last day (None: still listed)
Counts = dict[str, float]  # "monthly" / "daily" / "bytes" -> total


def day(text: str | None) -> dt.date | None:
    return dt.date.fromisoformat(text) if text else None


def name(market: Market, data_type: DataType, interval: Interval | None = None) -> str:
    """The key of a market, data type (and interval) in the assumptions: ``futures/um bookTicker``."""
    return f"{market.value} {data_type.value}" + (f" {interval.value}" if interval else "")


# -- the population of symbols ---------------------------------------------------------------------------------


def cohorts(spec: dict[str, Any], today: dt.date, points: int) -> list[Window]:
    """The windows (weight, first day, last day) that stand for one market's (or one data type's) symbols."""
    if "first" in spec:  # a fixed window: a handful of symbols whose dates are known
        return [(float(spec["symbols"]), day(spec["first"]), day(spec.get("last")))]  # type: ignore[list-item]
    opened = day(spec["opened"])
    assert opened is not None
    live, delisted = spec["live"], spec["symbols"] - spec["live"]
    windows: list[Window] = []
    span = min(2 * spec["live_mean_days"], (today - opened).days)
    for i in range(points):
        first = today - dt.timedelta(days=max(1, round(span * (i + 0.5) / points)))
        windows.append((live / points, first, None))
    life = spec["delisted_mean_days"]
    room = (today - opened).days - life - 1
    for i in range(points):
        first = opened + dt.timedelta(days=round(room * (i + 0.5) / points))
        windows.append((delisted / points, first, first + dt.timedelta(days=life - 1)))
    return windows


def population(assumptions: dict[str, Any], entry: Availability, today: dt.date) -> list[Window]:
    spec = assumptions["markets"][entry.market.value]
    spec = spec.get("by_data_type", {}).get(entry.data_type.value, spec)
    return cohorts(spec, today, assumptions["points_per_cohort"])


def symbols_of(assumptions: dict[str, Any], entry: Availability) -> tuple[int, int]:
    """(all symbols, live symbols) of a market and data type."""
    spec = assumptions["markets"][entry.market.value]
    spec = spec.get("by_data_type", {}).get(entry.data_type.value, spec)
    if "first" in spec:  # a fixed window: live when it has no last day
        return spec["symbols"], 0 if spec.get("last") else spec["symbols"]
    return spec["symbols"], spec["live"]


# -- sizes -------------------------------------------------------------------------------------------------------


def file_bytes(sizes: dict[str, Any], entry: Availability, period: Period, interval: Interval | None) -> float:
    """The assumed mean size of one zip of this kind."""
    if interval is not None:
        per_day = 86_400 / interval.seconds
        rows = per_day * (DAYS_PER_MONTH if period is Period.MONTHLY else 1)
        per_row = sizes["kline_bytes_per_row_by_interval"].get(interval.value, sizes["kline_bytes_per_row"])
        row = per_row * sizes["kline_row_factor"][entry.data_type.value]
        return sizes["kline_bytes_per_file"] + rows * row
    key = name(entry.market, entry.data_type)
    if period is Period.MONTHLY:
        return sizes["monthly_bytes"].get(key) or sizes["daily_bytes"][key] * DAYS_PER_MONTH
    return sizes["daily_bytes"][key]


# -- planning ----------------------------------------------------------------------------------------------------


def series_intervals(entry: Availability, scenario: str) -> tuple[tuple[Interval | None, tuple[Period, ...]], ...]:
    """The (interval, periods) of the series a full mirror takes: with ``auto`` every interval of any period; with
    ``daily`` the daily intervals of a day or less (monthly where a type has no daily files: fundingRate)."""
    if scenario == "auto" or Period.DAILY not in entry.intervals:
        periods: tuple[Period, ...] = () if scenario == "auto" else (Period.MONTHLY,)
        intervals = entry.all_intervals() if entry.data_type.has_interval else (None,)
        return tuple((i, periods) for i in intervals)
    daily = entry.intervals[Period.DAILY] if entry.data_type.has_interval else (None,)
    return tuple((i, (Period.DAILY,)) for i in daily if i is None or not i.longer_than_a_day)


def count(
    assumptions: dict[str, Any],
    entry: Availability,
    today: dt.date,
    scenario: str,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> Counts:
    """Files (monthly, daily) and bytes of one market and data type over every window of its symbols, planned by the
    library; ``start`` / ``end`` cut every window (a refresh)."""
    totals: Counts = defaultdict(float)
    sizes = assumptions["sizes"]
    for interval, periods in series_intervals(entry, scenario):
        first_days = assumptions["first_days"]
        known = first_days.get(name(entry.market, entry.data_type, interval)) or first_days.get(
            name(entry.market, entry.data_type)
        )
        since = day(known["date"]) if known else None
        for weight, first, last in population(assumptions, entry, today):
            lo = max(d for d in (first, start, since) if d)
            hi = min((d for d in (last, end) if d), default=None)
            if hi is not None and hi < lo:
                continue
            selection = Selection(
                markets=entry.market,
                data_types=entry.data_type,
                symbols=PLACEHOLDER,
                intervals=interval or (),
                start=lo,
                end=hi,
                periods=periods or "auto",
            )
            for file in plan(selection, today=today):
                totals[file.period.value] += weight
                totals["bytes"] += weight * (file_bytes(sizes, entry, file.period, interval) + sizes["sidecar_bytes"])
    return totals


def entries(assumptions: dict[str, Any]) -> Iterator[Availability]:
    """The catalog's entries, without those the archive no longer holds."""
    return (e for e in DEFAULT_CATALOG if name(e.market, e.data_type) not in assumptions["absent"])


# -- formatting --------------------------------------------------------------------------------------------------


def table(header: Iterable[str], rows: Iterable[Iterable[object]]) -> str:
    head = list(header)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def n(value: float) -> str:
    return f"{round(value):,}"


def size(value: float) -> str:
    """Bytes in decimal units, three significant figures (1.2 KB, 66.2 GB, 15.7 TB)."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if value >= scale:
            scaled = value / scale
            return f"{scaled:.3g} {unit}" if scaled < 100 else f"{scaled:,.0f} {unit}"
    return f"{value:.0f} B"


def hours(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:,.1f} h"
    return f"{seconds / 60:,.0f} min" if seconds >= 60 else f"{seconds:.0f} s"


def caption(text: str) -> str:
    return f"\n**{text}**\n"


# -- the report --------------------------------------------------------------------------------------------------


def report(assumptions: dict[str, Any], today: dt.date) -> str:
    out: list[str] = [f"<!-- python benchmarks/archive_size.py, planned as of {today} -->"]
    out += assumptions_tables(assumptions)

    sums: dict[str, dict[Market, Counts]] = {"auto": {}, "daily": {}}
    rows = []
    for entry in entries(assumptions):
        auto = count(assumptions, entry, today, "auto")
        daily = count(assumptions, entry, today, "daily")
        for scenario, counts in (("auto", auto), ("daily", daily)):
            market = sums[scenario].setdefault(entry.market, defaultdict(float))
            for key, value in counts.items():
                market[key] += value
        files = auto["monthly"] + auto["daily"]
        series = symbols_of(assumptions, entry)[0] * len(series_intervals(entry, "auto"))
        rows.append(
            [
                entry.market.value,
                entry.data_type.value,
                n(series),
                n(auto["monthly"]),
                n(auto["daily"]),
                n(files),
                size(auto["bytes"]),
                n(daily["monthly"] + daily["daily"]),
            ]
        )
    absent = ", ".join(f"{k} ({v.split(':')[0].split(' (')[0]})" for k, v in assumptions["absent"].items())
    out.append(caption('Files and bytes of a full mirror, by market and data type (`periods="auto"`)'))
    head = [
        "market",
        "data type",
        "series",
        "monthly files",
        "daily files",
        "files",
        "bytes",
        "files, daily everywhere",
    ]
    out.append(table(head, rows))
    out.append(f"\nNot counted: {absent}. Bytes count the zips and their sidecars.")

    out.append(caption("Totals: `auto` against daily files everywhere"))
    rows = []
    grand = {s: defaultdict(float) for s in sums}
    for market in sums["auto"]:
        a, d = sums["auto"][market], sums["daily"][market]
        for s, c in (("auto", a), ("daily", d)):
            for key, value in c.items():
                grand[s][key] += value
        fa, fd = a["monthly"] + a["daily"], d["monthly"] + d["daily"]
        rows.append([market.value, n(fa), n(fd), f"{fd / fa:.0f}x", size(a["bytes"]), size(d["bytes"])])
    fa, fd = grand["auto"]["monthly"] + grand["auto"]["daily"], grand["daily"]["monthly"] + grand["daily"]["daily"]
    total = ("all", n(fa), n(fd), f"{fd / fa:.0f}x", size(grand["auto"]["bytes"]), size(grand["daily"]["bytes"]))
    rows.append([f"**{cell}**" for cell in total])
    head = ["market", "files, auto", "files, daily everywhere", "ratio", "bytes, auto", "bytes, daily everywhere"]
    out.append(table(head, rows))

    refresh = refresh_table(assumptions, today)
    out += refresh[0]
    out += discovery_table(assumptions)
    out += time_tables(assumptions, fa, fd, grand["auto"]["bytes"], grand["daily"]["bytes"], *refresh[1])
    return "\n".join(out) + "\n"


def assumptions_tables(assumptions: dict[str, Any]) -> list[str]:
    rows = []
    for market, spec in assumptions["markets"].items():
        for data_type, sub in spec.get("by_data_type", {"": spec}).items():
            label = f"{market} {data_type}".strip()
            if "first" in sub:
                dates = f"{sub['first']} to {sub['last'] or 'today'}"
                rows.append([label, sub["symbols"], sub["symbols"] if not sub["last"] else 0, dates, "-", "-"])
            else:
                lives = (sub["live_mean_days"], sub["delisted_mean_days"])
                rows.append([label, n(sub["symbols"]), n(sub["live"]), sub["opened"], *lives])
            rows[-1] += [sub["source"], sub["certainty"]]
    out = [caption("Assumed symbols (estimates: `binance-archive symbols` gives the real counts)")]
    head = ["market", "symbols", "live", "first day", "live: mean age (days)", "delisted: mean life (days)"]
    out.append(table([*head, "source", "certainty"], rows))
    rows = [[k, v["date"], v["source"], v["certainty"]] for k, v in assumptions["first_days"].items()]
    out.append(caption("First days the catalog does not give"))
    out.append(table(["series", "assumed first day", "source", "certainty"], rows))

    sizes = assumptions["sizes"]
    out.append(caption("Assumed mean file sizes (zips; the mean over all symbols, far below BTCUSDT's)"))
    kline = DEFAULT_CATALOG.lookup(Market.SPOT, DataType.KLINES)
    rows = []
    for i in (Interval.S1, Interval.M1, Interval.H1, Interval.D1, Interval.MO1):
        daily = "-" if i.longer_than_a_day else size(file_bytes(sizes, kline, Period.DAILY, i))
        rows.append([f"klines {i.value}", daily, size(file_bytes(sizes, kline, Period.MONTHLY, i))])
    for key, value in sizes["daily_bytes"].items():
        rows.append([key, size(value), size(sizes["monthly_bytes"].get(key) or value * DAYS_PER_MONTH)])
    rows += [
        [key, "-", size(value)] for key, value in sizes["monthly_bytes"].items() if key not in sizes["daily_bytes"]
    ]
    out.append(table(["kind", "daily zip", "monthly zip"], rows))
    per_row = ", ".join(f"{k}: {v} B" for k, v in sizes["kline_bytes_per_row_by_interval"].items())
    out.append(
        f"\nKlines: {sizes['kline_bytes_per_file']} B + {sizes['kline_bytes_per_row']} B a row ({per_row}; the other "
        f"kline types {sizes['kline_row_factor']['markPriceKlines']}x a row); a monthly zip holds "
        f"{DAYS_PER_MONTH:.2f} days. Source: {sizes['source']}. Certainty: {sizes['certainty']}."
    )
    return out


def refresh_table(assumptions: dict[str, Any], today: dt.date) -> tuple[list[str], tuple[float, float, float]]:
    """New files and bytes a day (yesterday's daily files of live symbols), the monthly files of a month, and the
    requests a refresh spends on delisted symbols when it leaves its symbols to the listing."""
    yesterday = today - dt.timedelta(days=1)
    month_end = today.replace(day=1) - dt.timedelta(days=1)
    month = month_end.replace(day=1)
    by_market: dict[Market, Counts] = defaultdict(lambda: defaultdict(float))
    for entry in entries(assumptions):
        one_day = count(assumptions, entry, today, "auto", start=yesterday, end=yesterday)
        monthly = count(assumptions, entry, today, "auto", start=month, end=month_end)
        totals = by_market[entry.market]
        totals["daily"] += one_day["daily"]
        totals["bytes"] += one_day["bytes"]
        totals["monthly"] += monthly["monthly"]
        symbols, live = symbols_of(assumptions, entry)
        if one_day["daily"] and live:  # still published: the delisted symbols' series of that day answer 404
            totals["gone"] += one_day["daily"] * (symbols - live) / live
    rows, total = [], defaultdict(float)
    for market, t in by_market.items():
        rows.append([market.value, n(t["daily"]), size(t["bytes"]), n(t["monthly"]), n(t["gone"])])
        for key, value in t.items():
            total[key] += value
    rows.append([f"**{v}**" for v in ("all", n(total["daily"]), size(total["bytes"]), n(total["monthly"]))])
    rows[-1].append(f"**{n(total['gone'])}**")
    out = [
        caption(f"A daily refresh: the files of one day ({yesterday}), the monthly files of a month ({month:%Y-%m})")
    ]
    head = ["market", "new daily files a day", "bytes a day", "monthly files once a month"]
    out.append(table([*head, "404s a day if symbols are left to the listing"], rows))
    return out, (total["daily"], total["bytes"], total["monthly"])


def discovery_table(assumptions: dict[str, Any]) -> list[str]:
    """The listing requests a run makes when its selection leaves out symbols and start dates."""
    rtt = assumptions["throughput"]["listing_round_trip_s"]
    by_market: dict[Market, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for entry in DEFAULT_CATALOG:
        if name(entry.market, entry.data_type) in assumptions["absent"]:
            continue
        symbols = symbols_of(assumptions, entry)[0]
        intervals = entry.all_intervals() if entry.data_type.has_interval else (None,)
        # engine/discovery.first_date: one request (the first page) per period that has the series' interval.
        first_dates = sum(sum(1 for p in entry.periods if i is None or entry.has(p, i)) for i in intervals)
        row = by_market[entry.market]
        row[0] += len(entry.periods) * math.ceil(symbols / 1000)  # the symbols: one listing per period, 1,000 a page
        row[1] += symbols * len(intervals)
        row[2] += symbols * first_dates
    rows, total = [], [0.0, 0.0, 0.0]
    for market, (pages, series, requests) in by_market.items():
        rows.append([market.value, n(pages), n(series), n(requests), hours(requests * rtt)])
        total = [total[0] + pages, total[1] + series, total[2] + requests]
    rows.append(["**all**", *(f"**{n(v)}**" for v in total), f"**{hours(total[2] * rtt)}**"])
    what = "Discovery: the listing each process or shard reads when its selection leaves out symbols and start dates"
    out = [caption(f"{what} (one request at a time, {rtt * 1000:.0f} ms each)")]
    out.append(
        table(["market", "symbol listing requests", "series", "first-date requests", "one after the other"], rows)
    )
    return out


def time_tables(
    assumptions: dict[str, Any],
    files_auto: float,
    files_daily: float,
    bytes_auto: float,
    bytes_daily: float,
    refresh_files: float,
    refresh_bytes: float,
    refresh_monthly: float,
) -> list[str]:
    t = assumptions["throughput"]
    rows = []
    for rtt in t["round_trips_s"]:
        bound = t["in_flight"] / rtt
        rows.append([f"{rtt * 1000:.0f} ms", n(bound), n(bound * t["share_of_bound"])])
    out = [caption(f"One process at real round trips ({t['in_flight']} files in flight)")]
    out.append(
        table(
            ["round trip", "bound: in flight / round trip (files/s)", f"expected ({t['share_of_bound']:.0%} of it)"],
            rows,
        )
    )

    def duration(workers: int, rtt: float, files: float, nbytes: float) -> str:
        machines = math.ceil(workers / t["workers_per_machine"])
        by_files = files / (workers * t["in_flight"] / rtt * t["share_of_bound"])
        by_bytes = nbytes / (machines * t["machine_MB_per_s"] * 1e6)
        return f"{hours(max(by_files, by_bytes))} ({'files' if by_files >= by_bytes else 'bytes'})"

    rows = []
    for workers in t["workers"]:
        machines = math.ceil(workers / t["workers_per_machine"])
        for rtt in t["round_trips_s"]:
            cells = [(files_auto, bytes_auto), (files_daily, bytes_daily), (refresh_files, refresh_bytes)]
            rows.append([workers, machines, f"{rtt * 1000:.0f} ms", *(duration(workers, rtt, *c) for c in cells)])
    out.append(caption("Time: a first full mirror and a daily refresh (symbols and start dates named: no discovery)"))
    head = ["workers", "machines", "round trip", "full mirror, auto", "full mirror, daily everywhere", "daily refresh"]
    out.append(table(head, rows))
    out.append(
        f"\nA worker: one process (one Dask worker thread) with {t['in_flight']} files in flight; a machine: "
        f"{t['workers_per_machine']} workers and {t['machine_MB_per_s']} MB/s. In brackets, what bounds the time: the "
        "files (round trips) or the bytes (the link). The monthly files of a month "
        f"({n(refresh_monthly)}) come once a month on top of the refresh."
    )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--assumptions", type=Path, default=HERE / "archive_size.json")
    parser.add_argument("--today", type=dt.date.fromisoformat, help="plan as of this UTC day (default: the file's)")
    args = parser.parse_args(argv)
    assumptions = json.loads(args.assumptions.read_text(encoding="utf-8"))
    today = args.today or dt.date.fromisoformat(assumptions["today"])
    sys.stdout.write(report(assumptions, today))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
