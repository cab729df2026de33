"""The command line's options turned into what the library takes: selections, options of backends, and the run
configuration of a download (from ``--config``, or from the options, the command line winning)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

import attrs

from binance_archive.common.options import check_levels
from binance_archive.config import RunConfig, load_config
from binance_archive.core import AUTO, DEFAULT_CATALOG, Catalog, Selection, parse_date, parse_shard, plan
from binance_archive.core.datatypes import DataType
from binance_archive.core.markets import Market
from binance_archive.core.selection import split_list
from binance_archive.errors import ConfigurationError

__all__ = ["backend_options", "catalog_of", "config_of", "planned_total", "selection_of", "today_of"]


def selection_of(args: argparse.Namespace, *, need_symbols: bool) -> Selection:
    """The selection the options name."""
    markets, types = split_list(args.market), split_list(args.data_type)
    if not markets:
        raise ConfigurationError(f"--market is required; valid markets: {', '.join(m.value for m in Market)}")
    if not types:
        raise ConfigurationError(f"--data-type is required; valid data types: {', '.join(t.value for t in DataType)}")
    symbols = split_list(args.symbol)
    if need_symbols and not symbols:
        raise ConfigurationError("--symbol is required here (download discovers symbols from the listing)")
    periods = split_list(args.period) or [AUTO]
    if AUTO in periods and len(periods) > 1:
        raise ConfigurationError("--period auto cannot be combined with daily or monthly")
    return Selection(
        markets=markets,
        data_types=types,
        symbols=symbols,
        intervals=split_list(args.interval),
        start=args.start,
        end=args.end,
        periods=AUTO if periods == [AUTO] else periods,
    )


def catalog_of(args: argparse.Namespace) -> Catalog:
    """The catalog of ``--catalog``, else the built-in one."""
    path = getattr(args, "catalog", None)
    return Catalog.load(path) if path else DEFAULT_CATALOG


def today_of(args: argparse.Namespace) -> dt.date | None:
    return parse_date(args.today, what="--today date")


def backend_options(values: Sequence[str] | None, what: str) -> dict[str, Any]:
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


def config_of(args: argparse.Namespace) -> RunConfig:
    """The run configuration: from --config, or from the command line's options; the command line wins."""
    if args.config:
        given = [o for o in ("market", "data_type", "symbol", "start", "end", "period") if getattr(args, o)]
        if given:
            raise ConfigurationError(
                f"--config holds the selection; remove --{given[0].replace('_', '-')} (or drop --config)"
            )
        # --interval only fills in the kline types a configuration of the collection workflow gives no intervals.
        config = load_config(args.config, intervals=split_list(args.interval) or None)
    else:
        config = RunConfig(selections=(selection_of(args, need_symbols=False),), catalog=catalog_of(args))
    changes: dict[str, Any] = {}
    for option, field in (("to", "to"), ("transport", "transport"), ("base_url", "base_url"),
                          ("listing_url", "listing_url"), ("concurrency", "concurrency"),
                          ("max_concurrency", "max_concurrency")):  # fmt: skip
        value = getattr(args, option, None)
        if value is not None:
            changes[field] = value
    concurrency, max_concurrency = getattr(args, "concurrency", None), getattr(args, "max_concurrency", None)
    check_levels(concurrency, max_concurrency, ("--concurrency", "--max-concurrency"))
    if concurrency is not None and max_concurrency is None:
        # --concurrency alone pins the level, whatever ceiling the configuration file gave.
        changes["max_concurrency"] = None
    if args.retries is not None:
        if args.retries < 1:
            raise ConfigurationError(f"--retries must be at least 1 (1 tries each request once), not {args.retries}")
        changes["retries"] = args.retries
    if args.dead_after is not None:
        if not 0 <= args.dead_after < float("inf"):
            raise ConfigurationError(f"--dead-after must be 0 (never stop) or more seconds, not {args.dead_after:g}")
        changes["dead_after"] = args.dead_after
    for flag in ("force", "refresh"):
        if getattr(args, flag):
            changes[flag] = True
    if args.transport_option:
        changes["transport_options"] = {
            **config.transport_options,
            **backend_options(args.transport_option, "--transport-option"),
        }
    if args.storage_option:
        changes["storage_options"] = {
            **config.storage_options,
            **backend_options(args.storage_option, "--storage-option"),
        }
    if args.today:
        changes["today"] = today_of(args)
    if args.shard:
        changes["shard"] = parse_shard(args.shard)
    if args.catalog and args.config:
        changes["catalog"] = catalog_of(args)
    return attrs.evolve(config, **changes)


def planned_total(config: RunConfig) -> int | None:
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
