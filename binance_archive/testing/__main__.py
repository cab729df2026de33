"""``python -m binance_archive.testing``: build a fake archive tree, or serve one until Ctrl-C.

    python -m binance_archive.testing build --root DIR --demo
    python -m binance_archive.testing build --root DIR --market spot --data-type klines --symbol BTCUSDT \\
        --interval 1m --start 2024-01-01 --end 2024-03-31
    python -m binance_archive.testing serve --root DIR --port 8080 --latency 0.05 --error-rate 0.01
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence

from binance_archive.core import Selection, parse_date, plan
from binance_archive.core.selection import split_list
from binance_archive.errors import ConfigurationError
from binance_archive.testing.server import DEFAULT_BUCKET, FakeArchiveServer, Faults
from binance_archive.testing.tree import build_archive, build_demo

logger = logging.getLogger("binance_archive.testing")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m binance_archive.testing", description="A local stand-in for data.binance.vision."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every fault and request")
    commands = parser.add_subparsers(dest="command", required=True)

    build = commands.add_parser("build", help="write a fake archive tree (zips and .CHECKSUM sidecars)")
    build.add_argument("--root", required=True, help="folder to write data/... into")
    build.add_argument("--demo", action="store_true", help="a small realistic selection of several markets")
    build.add_argument("--today", help="the date to plan for, YYYY-MM-DD (default: today, UTC)")
    build.add_argument("--market", action="append", help="spot, futures/um, futures/cm or option (repeatable)")
    build.add_argument("--data-type", action="append", help="klines, aggTrades, ... (repeatable)")
    build.add_argument("--symbol", action="append", help="symbol (repeatable, or comma-separated)")
    build.add_argument("--interval", action="append", help="kline interval (repeatable, or comma-separated)")
    build.add_argument("--start", help="first day, YYYY-MM-DD or YYYY-MM")
    build.add_argument("--end", help="last day, YYYY-MM-DD or YYYY-MM (default: yesterday)")
    build.add_argument("--periods", default="auto", help="auto, daily, monthly or daily,monthly")
    build.add_argument("--max-rows", type=int, help="cap the rows of every CSV")
    build.add_argument("--seed", type=int, default=0, help="content seed (default 0)")

    serve = commands.add_parser("serve", help="serve a tree over HTTP until Ctrl-C")
    serve.add_argument("--root", required=True, help="folder holding data/...")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    serve.add_argument("--bucket", default=DEFAULT_BUCKET)
    serve.add_argument("--page-size", type=int, default=1000, help="most entries per listing page")
    serve.add_argument("--latency", type=float, default=0.0, help="seconds added to every request")
    serve.add_argument("--error-rate", type=float, default=0.0, help="fraction answered 500/503")
    serve.add_argument("--rate-429", type=float, default=0.0, help="fraction answered 429")
    serve.add_argument("--retry-after", type=int, default=1, help="Retry-After of the 429s, seconds")
    serve.add_argument(
        "--max-in-flight", type=int, default=0,
        help="most file requests taken at once; beyond, 429 with Retry-After (a server shedding load; 0: no limit)",
    )  # fmt: skip
    serve.add_argument("--reset-rate", type=float, default=0.0, help="fraction of connections reset")
    serve.add_argument("--truncate-rate", type=float, default=0.0, help="fraction of GETs cut short")
    serve.add_argument("--corrupt-rate", type=float, default=0.0, help="fraction of GETs with flipped bytes")
    serve.add_argument("--fail-first", type=int, default=0, help="each key's first N GETs answer 503")
    serve.add_argument("--seed", type=int, default=0, help="seed of the fault draws")
    serve.add_argument("--access-log", action="store_true", help="log every request")
    return parser


def _build(args: argparse.Namespace) -> int:
    today = parse_date(args.today, what="--today") if args.today else None
    if args.demo:
        count = build_demo(args.root, today, seed=args.seed)
    else:
        if not (args.market and args.data_type and args.symbol and args.start):
            raise ConfigurationError("give --demo, or --market, --data-type, --symbol and --start")
        selection = Selection(
            markets=split_list(args.market),
            data_types=split_list(args.data_type),
            symbols=split_list(args.symbol),
            intervals=split_list(args.interval),
            start=args.start,
            end=args.end,
            periods="auto" if args.periods.strip().lower() == "auto" else split_list([args.periods]),
        )
        count = build_archive(args.root, plan(selection, today=today), max_rows=args.max_rows, seed=args.seed)
    logger.info("built %d files under %s", count, args.root)
    return 0


async def _serve(args: argparse.Namespace) -> int:
    faults = Faults(
        latency=args.latency,
        error_rate=args.error_rate,
        rate_429=args.rate_429,
        retry_after=args.retry_after,
        max_in_flight=args.max_in_flight,
        reset_rate=args.reset_rate,
        truncate_rate=args.truncate_rate,
        corrupt_rate=args.corrupt_rate,
        fail_first=args.fail_first,
        seed=args.seed,
    )
    server = FakeArchiveServer(
        args.root,
        bucket=args.bucket,
        host=args.host,
        port=args.port,
        page_size=args.page_size,
        faults=faults,
        access_log=args.access_log,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        # Installed explicitly because a shell starts background jobs with SIGINT ignored. Windows has no
        # loop signal handlers; Ctrl-C still ends asyncio.run there.
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    async with server:
        # The URLs go to stdout too, so a script that asked for port 0 can read them.
        sys.stdout.write(f"{server.base_url} {server.listing_url}\n")
        sys.stdout.flush()
        logger.info("files at %s/data/..., listing at %s; Ctrl-C stops", server.base_url, server.listing_url)
        await stop.wait()
    logger.info("stopped")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(name)s %(message)s"
    )
    if args.verbose:
        logging.getLogger("asyncio").setLevel(logging.INFO)
    try:
        if args.command == "build":
            return _build(args)
        return asyncio.run(_serve(args))
    except KeyboardInterrupt:
        return 0
    except (ConfigurationError, ValueError, OSError) as exc:
        logger.error("%s", exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
