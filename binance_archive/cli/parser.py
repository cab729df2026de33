"""The parser of ``binance-archive``: its commands, their options and their help."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from binance_archive.cli.commands import (
    Command,
    cmd_backends,
    cmd_catalog,
    cmd_convert,
    cmd_demo,
    cmd_download,
    cmd_plan,
    cmd_schemas,
    cmd_symbols,
    cmd_verify,
)
from binance_archive.cli.output import EXIT_USAGE
from binance_archive.core.intervals import Interval
from binance_archive.core.markets import Market

__all__ = ["build_parser"]

_MARKETS = ", ".join(m.value for m in Market)

_EPILOG_PLAN = """examples:
  binance-archive plan --market spot --data-type klines --symbol BTCUSDT --interval 1m \\
      --start 2024-01-01 --end 2024-03-15
  binance-archive plan --market um --data-type fundingRate --symbol BTCUSDT --start 2023-01 --shard 0/4
  binance-archive plan --market um --data-type metrics --symbol BTCUSDT --start 2024-06-01 --urls > urls.txt
"""

_EPILOG_DOWNLOAD = """examples:
  binance-archive download --market spot --data-type klines --symbol BTCUSDT --interval 1h \\
      --start 2024-01-01 --to ./binance-data
  binance-archive download --market um --data-type metrics --start 2024-06-01 --to s3://bucket/prefix --json
  binance-archive download --config run.toml --to s3://bucket/binance --dask tcp://scheduler:8786
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

    def parse_args(self, args: Any = None, namespace: Any = None) -> Any:  # type: ignore[override]
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            # argparse reports a command's unknown option with the top-level usage line ("binance-archive [-h]
            # ... COMMAND"), which hides the options the command does take: report it with the command's own.
            command = self._commands().get(getattr(parsed, "command", None) or "", self)
            command.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed

    def _commands(self) -> dict[str, argparse.ArgumentParser]:
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                return dict(action.choices)
        return {}


def _add_selection(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("selection (options repeat, or take comma-separated lists)")
    group.add_argument("--market", action="append", metavar="M", help=f"market: {_MARKETS} (or um, cm)")
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


_EPILOG_CONVERT = """examples:
  binance-archive convert --from ./binance-data --to ./binance-tables
  binance-archive convert --from ./binance-data --to s3://bucket/tables --market um --data-type aggTrades \\
      --symbol BTCUSDT --start 2024-01
  duckdb -c "select count(*) from read_parquet('binance-tables/spot/klines/**/*.parquet', hive_partitioning=true)"
"""


def _add_convert_selection(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("selection (none: everything the mirror holds; options repeat, or take lists)")
    group.add_argument("--market", action="append", metavar="M", help=f"market: {_MARKETS}")
    group.add_argument("--data-type", action="append", metavar="T", help="data type, e.g. klines, aggTrades, metrics")
    group.add_argument("--symbol", action="append", metavar="S", help="symbol (none: every one the mirror holds)")
    group.add_argument("--interval", action="append", metavar="I", help="kline interval, e.g. 1m, 1h")
    group.add_argument("--start", metavar="DATE", help="first month or day, YYYY-MM or YYYY-MM-DD")
    group.add_argument("--end", metavar="DATE", help="last month or day, inclusive")
    group.add_argument("--catalog", metavar="FILE", help="the catalog JSON the mirror was planned against")
    parser.set_defaults(period=None, today=None, shard=None)


def _add_transport(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("transport")
    group.add_argument("--transport", metavar="NAME", help="how to fetch files (default: http; see 'backends')")
    group.add_argument(
        "--base-url",
        metavar="URL",
        help="where the archive's files are (default: $BINANCE_ARCHIVE_BASE_URL, else data.binance.vision)",
    )
    group.add_argument(
        "--listing-url", metavar="URL", help="the archive's S3 listing URL (default: $BINANCE_ARCHIVE_LISTING_URL)"
    )
    group.add_argument(
        "--transport-option", action="append", metavar="KEY=VALUE", help="an option of the transport (repeatable)"
    )


def _command(sub: Any, name: str, summary: str, examples: str, func: Command) -> argparse.ArgumentParser:
    """A command's parser: its one-line help, its examples (kept as written) and the function that runs it."""
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=summary, epilog=examples, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.set_defaults(func=func)
    return parser


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

    p = _command(sub, "plan", "print the keys a selection covers, one a line", _EPILOG_PLAN, cmd_plan)
    _add_selection(p)
    group = p.add_argument_group("output")
    group.add_argument("--urls", action="store_true", help="print each file's URL instead of its key")
    group.add_argument(
        "--base-url", metavar="URL", help="the URLs' base (implies --urls; default: https://data.binance.vision)"
    )

    p = _command(sub, "download", "download, verify and store a selection", _EPILOG_DOWNLOAD, cmd_download)
    _add_selection(p)
    _add_transport(p)
    p.add_argument(
        "--config",
        metavar="FILE",
        help="read the selection and settings from a TOML or JSON file (with the collection workflow's schema, "
        "--interval gives the intervals of the kline types it leaves without)",
    )
    p.add_argument("--to", metavar="PATH_OR_URL", help="where the mirror goes (default: ./binance-data)")
    p.add_argument("--storage-option", action="append", metavar="KEY=VALUE", help="an option of the storage")
    p.add_argument(
        "--concurrency", type=int, metavar="N",
        help="files in flight at once, pinned (default: over HTTP, found by measuring from 128 up to 256; with "
        "--max-concurrency, where to start)",
    )  # fmt: skip
    p.add_argument(
        "--max-concurrency", type=int, metavar="N",
        help="find the files in flight by measuring, up to N: more while throughput grows, half at once when the "
        "server refuses requests (429, 503); the default over HTTP, with N = 256",
    )  # fmt: skip
    p.add_argument(
        "--retries", type=int, metavar="N",
        help="tries per request in all (default 10, with capped, jittered backoff; the files that still failed are "
        "tried once more at the end of the run); 1 tries once, with no final pass",
    )  # fmt: skip
    p.add_argument(
        "--dead-after", type=float, metavar="SECONDS",
        help="stop the run once every request has failed for this long (default 15: a dead host is reported in "
        "seconds, not after every file's retries); 0 never stops",
    )  # fmt: skip
    p.add_argument("--force", action="store_true", help="download again what is already stored")
    p.add_argument("--refresh", action="store_true", help="re-download files Binance has replaced since")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--processes", type=int, default=1, metavar="N",
        help="run the download as N processes, each a shard of the plan (default 1; use the cores you have)",
    )  # fmt: skip
    group = p.add_argument_group("on a Dask cluster (pip install 'binance-archive[dask]'; docs/integrations.md)")
    group.add_argument(
        "--dask", metavar="ADDRESS",
        help="run the download on the cluster of the Dask scheduler at ADDRESS (tcp://host:8786), a task per shard; "
        "--to must be a folder every worker shares (an absolute path) or an s3:// URL",
    )  # fmt: skip
    group.add_argument(
        "--shards", type=int, metavar="N", help="with --dask: cut the plan into N shards (default: 4 a worker)"
    )

    p = _command(
        sub, "symbols", "list the symbols the archive has for a market and data type",
        "examples:\n  binance-archive symbols --market um --data-type fundingRate\n"
        "  binance-archive symbols --market spot --data-type klines --period monthly",
        cmd_symbols,
    )  # fmt: skip
    p.add_argument("--market", required=True, metavar="M", help=f"market: {_MARKETS} (or um, cm)")
    p.add_argument("--data-type", required=True, metavar="T", help="data type, e.g. klines, aggTrades, fundingRate")
    p.add_argument("--period", metavar="P", help="daily or monthly (default: both)")
    _add_transport(p)

    p = _command(
        sub, "verify", "re-hash a stored mirror against its sidecars; name corrupt, missing and orphan files",
        "examples:\n  binance-archive verify ./binance-data\n  binance-archive verify s3://bucket/prefix --json\n"
        "  binance-archive verify ./binance-data --repair   # fetch the corrupt, missing and unverified files again",
        cmd_verify,
    )  # fmt: skip
    p.add_argument("location", metavar="PATH_OR_URL", help="the mirror's folder or URL")
    p.add_argument("--prefix", default="data/", help="only keys under this prefix (default: data/)")
    p.add_argument("--storage-option", action="append", metavar="KEY=VALUE", help="an option of the storage")
    p.add_argument("--json", action="store_true", help="print the report as JSON (with --repair: under 'repair' too)")
    p.add_argument(
        "--repair", action="store_true",
        help="fetch again, verified, exactly the corrupt, missing and unverified files found (orphans are left)",
    )  # fmt: skip
    p.add_argument(
        "--concurrency",
        type=int,
        metavar="N",
        help="files in flight while repairing, pinned (default: the transport's)",
    )
    p.add_argument(
        "--max-concurrency", type=int, metavar="N", help="files in flight while repairing, found by measuring, up to N"
    )
    _add_transport(p)

    _command(
        sub, "backends", "list the installed transports and storages (plugins included)",
        "examples:\n  binance-archive backends\n"
        "  BINANCE_ARCHIVE_DISABLE_PLUGINS=name binance-archive backends   # without one plugin",
        cmd_backends,
    )  # fmt: skip

    p = _command(
        sub, "demo", "download a realistic selection from the built-in fake archive on loopback",
        "examples:\n  binance-archive demo\n  binance-archive demo --to /tmp/demo-mirror",
        cmd_demo,
    )  # fmt: skip
    p.add_argument(
        "--to", metavar="PATH", default="binance-demo", help="where the mirror goes (default: ./binance-demo)"
    )
    p.add_argument("--keep-upstream", action="store_true", help="keep the generated fake archive next to the mirror")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")

    p = _command(
        sub, "convert", "convert a mirror's files into typed, hive-partitioned Parquet tables (needs pyarrow)",
        _EPILOG_CONVERT, cmd_convert,
    )  # fmt: skip
    p.add_argument("--from", dest="source", required=True, metavar="PATH_OR_URL", help="the mirror download wrote")
    p.add_argument("--to", required=True, metavar="PATH_OR_URL", help="where the tables go (a folder or s3:// URL)")
    _add_convert_selection(p)
    p.add_argument("--storage-option", action="append", metavar="KEY=VALUE", help="an option of the mirror's storage")
    p.add_argument("--to-option", action="append", metavar="KEY=VALUE", help="an option of the tables' storage")
    p.add_argument("--force", action="store_true", help="convert again files whose tables are there already")
    p.add_argument("--concurrency", type=int, default=2, metavar="N", help="months converted at once (default 2)")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.add_argument("--json", action="store_true", help="print the report as JSON")

    p = _command(
        sub, "schemas", "print the tables' schemas, every market and data type (docs/tables.md is made from this)",
        "examples:\n  binance-archive schemas\n  binance-archive schemas --market um --data-type metrics",
        cmd_schemas,
    )  # fmt: skip
    p.add_argument("--market", metavar="M", help="only this market")
    p.add_argument("--data-type", metavar="T", help="only this data type")

    p = _command(
        sub, "catalog", "print the availability matrix (edit the JSON and pass it back with --catalog)",
        "examples:\n  binance-archive catalog\n  binance-archive catalog --format json > my-catalog.json\n"
        "  binance-archive plan --catalog my-catalog.json --market spot --data-type trades \\\n"
        "      --symbol BTCUSDT --start 2024-01",
        cmd_catalog,
    )  # fmt: skip
    p.add_argument("--format", choices=("markdown", "json"), default="markdown")
    p.add_argument("--catalog", metavar="FILE", help="show this catalog instead of the built-in one")
    return parser
