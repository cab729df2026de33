"""The ``binance-archive`` command: plan, download, symbols (and more, see ``binance-archive --help``).

Exit status: 0 success; 1 some files failed (missing files are not failures); 2 bad usage or configuration;
130 interrupted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

import attrs

from binance_archive.config import RunConfig, collection_result, load_config
from binance_archive.core import AUTO, DEFAULT_CATALOG, Catalog, Selection, parse_date, parse_shard, plan
from binance_archive.core.datatypes import DataType
from binance_archive.core.intervals import Interval
from binance_archive.core.markets import Market
from binance_archive.core.planning import validate_selection
from binance_archive.errors import BinanceArchiveError, ConfigurationError
from binance_archive.output import write_all
from binance_archive.processes import CHILD_FLAG, ChildReporter, check_processes, run_processes
from binance_archive.runner import run as run_loop

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

_EPILOG_PLAN = """examples:
  binance-archive plan --market spot --data-type klines --symbol BTCUSDT --interval 1m \\
      --start 2024-01-01 --end 2024-03-15
  binance-archive plan --market um --data-type fundingRate --symbol BTCUSDT --start 2023-01 --shard 0/4
"""

_EPILOG_DOWNLOAD = """examples:
  binance-archive download --market spot --data-type klines --symbol BTCUSDT --interval 1h \\
      --start 2024-01-01 --to ./binance-data
  binance-archive download --market um --data-type metrics --start 2024-06-01 --to s3://bucket/prefix --json
"""


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors with exit status 2 and a hint, never a traceback."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        parsed, extras = super().parse_known_args(args, namespace)
        # argparse turns "--option=--" into an empty list instead of the string "--" (a CPython quirk); refuse it
        # here, as a usage error naming the option, rather than let a list reach code that expects text.
        for action in self._actions:
            value = getattr(parsed, action.dest, None)
            items = value if isinstance(action, argparse._AppendAction) and isinstance(value, list) else [value]
            if action.option_strings and any(isinstance(item, list) for item in items):
                self.error(f"argument {'/'.join(action.option_strings)}: expected one argument, not '--'")
        return parsed, extras


def _split(values: Sequence[str] | None) -> list[str]:
    """Repeatable options also take comma-separated lists: ``--symbol BTCUSDT,ETHUSDT``."""
    return [part.strip() for value in values or () for part in value.split(",") if part.strip()]


def _add_selection(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("selection (options repeat, or take comma-separated lists)")
    group.add_argument(
        "--market", action="append", metavar="M", help=f"market: {', '.join(m.value for m in Market)} (or um, cm)"
    )
    group.add_argument("--data-type", action="append", metavar="T", help="data type, e.g. klines, aggTrades, metrics")
    group.add_argument(
        "--symbol", action="append", metavar="S", help="symbol, e.g. BTCUSDT (none: all, from the listing)"
    )
    group.add_argument(
        "--interval", action="append", metavar="I", help=f"kline interval: {', '.join(i.value for i in Interval)}"
    )
    group.add_argument("--start", metavar="DATE", help="first day, YYYY-MM-DD or YYYY-MM (none: the first file)")
    group.add_argument("--end", metavar="DATE", help="last day, inclusive (default: yesterday, UTC)")
    group.add_argument(
        "--period",
        action="append",
        metavar="P",
        help="auto (default: whole months monthly, the rest daily), daily, or monthly",
    )
    group.add_argument("--today", metavar="DATE", help="plan as if today (UTC) were DATE")
    group.add_argument("--catalog", metavar="FILE", help="plan against this catalog JSON (see 'catalog --format json')")
    group.add_argument("--shard", metavar="K/N", help="take shard K (0-based) of N, to split a plan across machines")


def _selection(args: argparse.Namespace, *, need_symbols: bool) -> Selection:
    markets, types = _split(args.market), _split(args.data_type)
    if not markets:
        raise ConfigurationError(f"--market is required; valid markets: {', '.join(m.value for m in Market)}")
    if not types:
        raise ConfigurationError(f"--data-type is required; valid data types: {', '.join(t.value for t in DataType)}")
    symbols = _split(args.symbol)
    if need_symbols and not symbols:
        raise ConfigurationError("--symbol is required here (download discovers symbols from the listing)")
    periods = _split(args.period) or [AUTO]
    if AUTO in periods and len(periods) > 1:
        raise ConfigurationError("--period auto cannot be combined with daily or monthly")
    return Selection(
        markets=markets,
        data_types=types,
        symbols=symbols,
        intervals=_split(args.interval),
        start=args.start,
        end=args.end,
        periods=AUTO if periods == [AUTO] else periods,
    )


def _catalog(args: argparse.Namespace) -> Catalog:
    path = getattr(args, "catalog", None)
    return Catalog.load(path) if path else DEFAULT_CATALOG


def _today(args: argparse.Namespace) -> dt.date | None:
    return parse_date(args.today, what="--today date")


def _options(values: Sequence[str] | None, what: str) -> dict[str, Any]:
    """``KEY=VALUE`` pairs; values that read as JSON (numbers, true/false, lists) are decoded."""
    options: dict[str, Any] = {}
    for item in values or ():
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigurationError(f"invalid {what} {item!r}; write KEY=VALUE")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        options[key.strip().replace("-", "_")] = value
    return options


# -- commands -------------------------------------------------------------------------------------------------


def cmd_plan(args: argparse.Namespace, out: TextIO) -> int:
    selection = _selection(args, need_symbols=True)
    if selection.start is None:
        raise ConfigurationError("--start is required for plan (download finds it from the listing)")
    files = plan(selection, today=_today(args), shard=parse_shard(args.shard), catalog=_catalog(args))
    write = out.write
    for file in files:
        write(file.key + "\n")
    return EXIT_OK


def _archive(args: argparse.Namespace, progress: Callable[..., None] | None = None) -> Any:
    from binance_archive.archive import Archive

    return Archive(
        getattr(args, "to", None) or "binance-data",
        transport=args.transport or "http",
        transport_options=_options(args.transport_option, "--transport-option"),
        storage_options=_options(getattr(args, "storage_option", None), "--storage-option"),
        base_url=args.base_url,
        listing_url=args.listing_url,
        concurrency=getattr(args, "concurrency", None),
        progress=progress,
        catalog=_catalog(args),
    )


def _config(args: argparse.Namespace) -> RunConfig:
    """The run configuration: from --config, or from the command line's options; the command line wins."""
    if args.config:
        given = [o for o in ("market", "data_type", "symbol", "interval", "start", "end", "period") if getattr(args, o)]
        if given:
            raise ConfigurationError(
                f"--config holds the selection; remove --{given[0].replace('_', '-')} (or drop --config)"
            )
        config = load_config(args.config)
    else:
        config = RunConfig(selections=(_selection(args, need_symbols=False),), catalog=_catalog(args))
    changes: dict[str, Any] = {}
    for option, field in (("to", "to"), ("transport", "transport"), ("base_url", "base_url"),
                          ("listing_url", "listing_url"), ("concurrency", "concurrency")):  # fmt: skip
        value = getattr(args, option, None)
        if value is not None:
            changes[field] = value
    for flag in ("force", "refresh"):
        if getattr(args, flag):
            changes[flag] = True
    if args.transport_option:
        changes["transport_options"] = {
            **config.transport_options,
            **_options(args.transport_option, "--transport-option"),
        }
    if args.storage_option:
        changes["storage_options"] = {**config.storage_options, **_options(args.storage_option, "--storage-option")}
    if args.today:
        changes["today"] = _today(args)
    if args.shard:
        changes["shard"] = parse_shard(args.shard)
    if args.catalog and args.config:
        changes["catalog"] = _catalog(args)
    return attrs.evolve(config, **changes)


def _planned_total(config: RunConfig) -> int | None:
    """The number of files, for the progress bar, when it is cheap to know (symbols and start given)."""
    total = 0
    for selection in config.selections:
        if not selection.symbols or selection.start is None:
            return None
        for _ in plan(selection, today=config.today, catalog=config.catalog, shard=config.shard):
            total += 1
            if total > 5_000_000:  # counting costs about a second a million: not worth more
                return None
    return total


def cmd_download(args: argparse.Namespace, out: TextIO) -> int:
    from binance_archive.progress import TerminalProgress

    config = _config(args)
    processes = check_processes(args.processes)
    # Only a --json report lists every file; the summary needs the counts and the problems. Keeping an outcome for
    # every file costs ~1 KB each (~90 MB for a mirror of 100,000 files, gigabytes for the whole archive).
    detail = "all" if args.json and not config.legacy else "problems"
    if args.child_report:  # one of the processes of a `download --processes N`: JSON lines for the parent
        reporter = ChildReporter(out)
        report = run_loop(config.run(config.archive(progress=reporter), detail=detail))
        reporter.finish(report)
        return EXIT_OK if report.ok else EXIT_FAILED
    for selection in config.selections:  # refused here, once, rather than by every process
        validate_selection(selection, config.catalog)
    show_bar = not (args.quiet or args.json) and sys.stderr.isatty()
    bar = TerminalProgress(sys.stderr, _planned_total(config)) if show_bar else None
    try:
        if processes > 1:
            archive = config.archive()  # backends and options checked before any process starts
            merged, status = run_processes(
                args.argv, processes=processes, shard=config.shard, concurrency=archive.concurrency, progress=bar,
                preload=archive.import_dependencies,
            )  # fmt: skip
            if merged is None:
                sys.stderr.write(f"binance-archive: a download process ended without its report (status {status})\n")
                return status if status in (EXIT_USAGE, EXIT_INTERRUPTED) else EXIT_FAILED
            report = merged
        else:
            archive = config.archive(progress=bar)
            report = run_loop(config.run(archive, detail=detail))
    finally:
        if bar is not None:
            bar.close()
    if args.json:
        document = collection_result(report, config) if config.legacy else report.to_dict()
        write_all(out, json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    elif not args.quiet:
        _print_summary(report, archive.storage.location, out)
    return EXIT_OK if report.ok else EXIT_FAILED


def _print_summary(report: Any, location: str, out: TextIO) -> None:
    rows = [
        ("downloaded", report.downloaded),
        ("skipped (already stored)", report.skipped),
        ("missing upstream", report.missing),
        ("failed", report.failed),
    ]
    for label, count in rows:
        out.write(f"  {label:<26}{count:>10}\n")
    rate = report.downloaded / report.duration if report.duration > 0 else 0.0
    out.write(f"  {'bytes downloaded':<26}{report.bytes / 1e6:>9.1f} MB\n")
    out.write(f"  {'time':<26}{report.duration:>9.1f} s ({rate:.0f} files/s)\n")
    for failure in report.failures[:20]:
        out.write(f"failed: {failure.key}: {failure.error}\n")
    if report.failed > 20:
        out.write(f"... and {report.failed - 20} more failures (--json lists them all)\n")
    if report.stopped:
        out.write(f"stopped early: {report.stopped}; what is stored is kept, and a re-run goes on from there\n")
    out.write(f"mirror: {location}\n")


def cmd_verify(args: argparse.Namespace, out: TextIO) -> int:
    from binance_archive.archive import Archive

    archive = Archive(args.location, storage_options=_options(args.storage_option, "--storage-option"))
    report = run_loop(archive.verify(prefix=args.prefix))
    if args.json:
        write_all(out, report.to_json() + "\n")
    else:
        for problem in report.problems:
            out.write(
                f"{problem.kind.value}: {problem.key}" + (f" ({problem.detail})" if problem.detail else "") + "\n"
            )
        out.write(report.summary() + "\n")
    return EXIT_OK if report.ok else EXIT_FAILED


def cmd_backends(args: argparse.Namespace, out: TextIO) -> int:
    from binance_archive.plugins import BackendRegistry, make_plugin_manager

    registry = BackendRegistry.from_plugin_manager(make_plugin_manager())
    out.write("transports:\n")
    for name, cls in sorted(registry.transports.items()):
        out.write(f"  {name:<10} {_first_line(cls.__doc__)}  [{cls.__module__}]\n")
    out.write("storages:\n")
    for name, storage in sorted(registry.storages.items()):
        schemes = ", ".join(f"{s}://" for s in storage.schemes)
        line = f"  {name:<10} {_first_line(storage.__doc__)}  [{storage.__module__}]"
        out.write(line + (f" ({schemes})" if schemes else "") + "\n")
    return EXIT_OK


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().split("\n", 1)[0]


def cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    from binance_archive.demo import run_demo

    return run_demo(args.to, out=out, quiet=args.quiet, keep_upstream=args.keep_upstream)


def cmd_symbols(args: argparse.Namespace, out: TextIO) -> int:
    archive = _archive(args)
    symbols = run_loop(archive.symbols(args.market, args.data_type, args.period))
    for symbol in symbols:
        out.write(symbol + "\n")
    return EXIT_OK


def cmd_catalog(args: argparse.Namespace, out: TextIO) -> int:
    catalog = _catalog(args)
    write_all(out, catalog.to_json() + "\n" if args.format == "json" else catalog.to_markdown())
    return EXIT_OK


# -- parser ---------------------------------------------------------------------------------------------------


def _add_transport(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("transport")
    group.add_argument("--transport", metavar="NAME", help="how to fetch files (default: http; see 'backends')")
    group.add_argument("--base-url", metavar="URL", help="where the archive's files are (default: data.binance.vision)")
    group.add_argument("--listing-url", metavar="URL", help="the archive's S3 listing URL")
    group.add_argument(
        "--transport-option", action="append", metavar="KEY=VALUE", help="an option of the transport (repeatable)"
    )


def build_parser() -> argparse.ArgumentParser:
    from binance_archive import __version__

    parser = _Parser(
        prog="binance-archive",
        description="Mirror Binance's public market-data archive (data.binance.vision), verified file by file.",
        epilog="exit status: 0 ok, 1 some files failed (missing ones are not failures), 2 bad usage, 130 interrupted",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser(
        "plan",
        help="print the keys a selection covers, one a line",
        epilog=_EPILOG_PLAN,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_selection(p)
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser(
        "download",
        help="download, verify and store a selection",
        epilog=_EPILOG_DOWNLOAD,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_selection(p)
    _add_transport(p)
    p.add_argument("--config", metavar="FILE", help="read the selection and settings from a TOML or JSON file")
    p.add_argument("--to", metavar="PATH_OR_URL", help="where the mirror goes (default: ./binance-data)")
    p.add_argument("--storage-option", action="append", metavar="KEY=VALUE", help="an option of the storage")
    p.add_argument(
        "--concurrency", type=int, metavar="N", help="files in flight at once (default: the transport's, 80 over HTTP)"
    )
    p.add_argument("--force", action="store_true", help="download again what is already stored")
    p.add_argument("--refresh", action="store_true", help="re-download files Binance has replaced since")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--processes", type=int, default=1, metavar="N",
        help="run the download as N processes, each a shard of the plan (default 1; use the cores you have)",
    )  # fmt: skip
    p.add_argument(CHILD_FLAG, action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_download)

    p = sub.add_parser(
        "symbols",
        help="list the symbols the archive has for a market and data type",
        epilog="examples:\n  binance-archive symbols --market um --data-type fundingRate\n"
        "  binance-archive symbols --market spot --data-type klines --period monthly",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--market", required=True, metavar="M")
    p.add_argument("--data-type", required=True, metavar="T")
    p.add_argument("--period", metavar="P", help="daily or monthly (default: both)")
    _add_transport(p)
    p.set_defaults(func=cmd_symbols)

    p = sub.add_parser(
        "verify",
        help="re-hash a stored mirror against its sidecars; name corrupt, missing and orphan files",
        epilog="examples:\n  binance-archive verify ./binance-data\n  binance-archive verify s3://bucket/prefix --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("location", metavar="PATH_OR_URL", help="the mirror's folder or URL")
    p.add_argument("--prefix", default="data/", help="only keys under this prefix (default: data/)")
    p.add_argument("--storage-option", action="append", metavar="KEY=VALUE", help="an option of the storage")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser(
        "backends",
        help="list the installed transports and storages (plugins included)",
        epilog="examples:\n  binance-archive backends\n"
        "  BINANCE_ARCHIVE_DISABLE_PLUGINS=name binance-archive backends   # without one plugin",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(func=cmd_backends)

    p = sub.add_parser(
        "demo",
        help="download a realistic selection from the built-in fake archive on loopback",
        epilog="examples:\n  binance-archive demo\n  binance-archive demo --to /tmp/demo-mirror",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--to", metavar="PATH", default="binance-demo", help="where the mirror goes (default: ./binance-demo)"
    )
    p.add_argument("--keep-upstream", action="store_true", help="keep the generated fake archive next to the mirror")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "catalog",
        help="print the availability matrix (edit the JSON and pass it back with --catalog)",
        epilog="examples:\n  binance-archive catalog\n  binance-archive catalog --format json > my-catalog.json\n"
        "  binance-archive plan --catalog my-catalog.json --market spot --data-type trades \\\n"
        "      --symbol BTCUSDT --start 2024-01",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--format", choices=("markdown", "json"), default="markdown")
    p.add_argument("--catalog", metavar="FILE", help="show this catalog instead of the built-in one")
    p.set_defaults(func=cmd_catalog)
    return parser


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for the processes of `download --processes`
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        status: int = args.func(args, out or sys.stdout)
        return status
    except ConfigurationError as exc:
        sys.stderr.write(f"binance-archive: error: {exc}\n")
        return EXIT_USAGE
    except BinanceArchiveError as exc:
        sys.stderr.write(f"binance-archive: {exc}\n")
        return EXIT_FAILED
    except KeyboardInterrupt:
        if not getattr(args, "child_report", False):  # the processes of a `download --processes` let it say so
            sys.stderr.write("binance-archive: interrupted; files in flight were discarded, a re-run resumes\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `binance-archive plan ... | head`: stop quietly, and keep Python from complaining
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def console_main() -> int:
    """The ``binance-archive`` command (and ``python -m binance_archive``): :func:`main`, in a process of its own."""
    from binance_archive.runner import tune_for_one_job

    tune_for_one_job()
    return main()


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(console_main())
