"""The commands of ``binance-archive``: each takes the parsed options and the output stream, and returns the exit
status (:mod:`.output` has their meanings)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import shlex
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

import attrs

from binance_archive.cli.arguments import (
    backend_options,
    catalog_of,
    config_of,
    planned_total,
    selection_of,
    today_of,
)
from binance_archive.cli.output import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    note,
    write_all,
    write_summary,
)
from binance_archive.config import collection_result
from binance_archive.core import Catalog, Selection, narrow, parse_shard, plan, utc_today, validate_selection
from binance_archive.errors import ConfigurationError

if TYPE_CHECKING:
    from binance_archive.archive import Archive
    from binance_archive.config import RunConfig
    from binance_archive.engine.run import Detail
    from binance_archive.progress import Counter
    from binance_archive.report import Report
    from binance_archive.verification import VerifyReport

__all__ = [
    "Command",
    "cmd_backends",
    "cmd_catalog",
    "cmd_convert",
    "cmd_demo",
    "cmd_download",
    "cmd_plan",
    "cmd_schemas",
    "cmd_symbols",
    "cmd_verify",
]


Command = Callable[[argparse.Namespace, TextIO], int]
"""A command: the parsed options and the output stream in, the exit status out."""


_T = TypeVar("_T")


def run_loop(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """:func:`binance_archive.runner.run`, imported when a command first runs a coroutine: ``--help``, ``plan`` and
    ``catalog`` need no event loop (asyncio and ssl are ~20 ms of a start-up)."""
    from binance_archive.runner import run

    return run(coroutine)


def cmd_plan(args: argparse.Namespace, out: TextIO) -> int:
    selection = selection_of(args, need_symbols=True)
    if selection.start is None:
        raise ConfigurationError("--start is required for plan (download finds it from the listing)")
    today, catalog, shard = today_of(args) or utc_today(), catalog_of(args), parse_shard(args.shard)
    write = out.write
    urls = args.urls or args.base_url
    for part in _plannable((selection,), today, catalog):
        for file in plan(part, today=today, shard=shard, catalog=catalog):
            if urls:
                write((file.url(args.base_url) if args.base_url else file.url()) + "\n")
            else:
                write(file.key + "\n")
    return EXIT_OK


def _plannable(selections: Sequence[Selection], today: dt.date, catalog: Catalog) -> tuple[Selection, ...]:
    """The parts of ``selections`` that plan files; a note on standard error for each part left out, and a
    ConfigurationError (status 2) when none is left: an impossible request must not look like a finished one."""
    narrowed = narrow(selections, today=today, catalog=catalog).check()
    for reason in narrowed.reasons:
        note(f"left out, as it plans no file: {reason}")
    return narrowed.selections


def _archive(args: argparse.Namespace, location: str | None = None) -> Archive:
    """The Archive the options describe: the mirror at ``location`` (else ``--to``, else ./binance-data)."""
    from binance_archive.archive import Archive

    return Archive(
        location or getattr(args, "to", None) or "binance-data",
        transport=args.transport or "http",
        transport_options=backend_options(args.transport_option, "--transport-option"),
        storage_options=backend_options(getattr(args, "storage_option", None), "--storage-option"),
        base_url=args.base_url,
        listing_url=args.listing_url,
        concurrency=getattr(args, "concurrency", None),
        max_concurrency=getattr(args, "max_concurrency", None),
        catalog=catalog_of(args),
    )


def cmd_download(args: argparse.Namespace, out: TextIO) -> int:
    from binance_archive.progress import TerminalProgress

    config = config_of(args)
    processes = args.processes
    if processes != 1:  # --processes N: its module (pickle, subprocess, signals...) is imported only then
        from binance_archive.cli.processes import check_processes

        processes = check_processes(processes)
    # Only a --json report lists every file (the collection workflow's result too, in its metadata); the summary
    # needs the counts and the problems. Keeping an outcome for every file costs ~1 KB each (~90 MB for a mirror
    # of 100,000 files, gigabytes for the whole archive).
    detail: Detail = "all" if args.json else "problems"
    for selection in config.selections:  # refused here, once, rather than by every process
        validate_selection(selection, config.catalog)
    # Parts that plan nothing are named here, once, and left out of what the processes run.
    config = attrs.evolve(config, selections=_plannable(config.selections, config.today or utc_today(), config.catalog))
    show_bar = not (args.quiet or args.json) and sys.stderr.isatty()
    bar = TerminalProgress(sys.stderr, planned_total(config)) if show_bar else None
    if args.dask is None and args.shards is not None:
        raise ConfigurationError("--shards cuts a run for --dask; give --dask ADDRESS too (or --processes N here)")
    if args.dask is not None and processes > 1:
        raise ConfigurationError("--dask and --processes are two ways to spread a run: give one")
    try:
        if args.dask is not None:
            archive = config.archive()  # backends and options checked here, before anything is submitted
            report = _on_dask(config, args.dask, args.shards, detail, bar)
        elif processes > 1:
            from binance_archive.cli.processes import run_processes

            archive = config.archive()  # backends and options checked before any process starts
            merged, status = run_processes(
                config, processes=processes, concurrency=archive.concurrency, max_concurrency=archive.max_concurrency,
                detail=detail, progress=bar, preload=archive.import_dependencies,
            )  # fmt: skip
            if merged is None:  # said on standard error by run_processes
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
        write_summary(report, archive.storage.location, out)
    return EXIT_OK if report.ok else EXIT_FAILED


def _on_dask(config: RunConfig, address: str, shards: int | None, detail: Detail, bar: Counter | None) -> Report:
    """The download on the Dask cluster whose scheduler is at ``address`` (docs/integrations.md)."""
    try:
        from binance_archive.integrations.dask import run_on_dask
    except ImportError as exc:
        raise ConfigurationError(f"--dask: {exc}") from None
    if shards is not None and shards < 1:
        raise ConfigurationError(f"--shards must be at least 1, got {shards}")
    return run_on_dask(config, address, shards=shards, detail=detail, progress=bar)


def cmd_verify(args: argparse.Namespace, out: TextIO) -> int:
    from binance_archive.progress import TerminalProgress

    archive = _archive(args, args.location)
    report = run_loop(archive.verify(prefix=args.prefix))
    if report.empty:
        # A typo in the path or the prefix must not read as "0 files verified", status 0.
        raise ConfigurationError(
            f"{archive.storage.location} holds no file of the archive under {args.prefix!r}, so there is nothing to "
            "verify; give the folder or URL downloads went to (and a --prefix it holds)"
        )
    repairable = report.repairable
    repair: Report | None = None
    if args.repair and repairable:
        bar = TerminalProgress(sys.stderr, len(repairable)) if not args.json and sys.stderr.isatty() else None
        try:
            repair = run_loop(archive.repair(report, progress=bar, detail="all" if args.json else "problems"))
        finally:
            if bar is not None:
                bar.close()
    if args.json:
        document = report.to_dict()
        if args.repair:
            document["repair"] = repair.to_dict() if repair is not None else None
        write_all(out, json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    else:
        for problem in report.problems:
            out.write(
                f"{problem.kind.value}: {problem.key}" + (f" ({problem.detail})" if problem.detail else "") + "\n"
            )
        out.write(report.summary() + "\n")
        _print_repair(args, report, repair, archive.storage.location, out)
    if not args.repair:
        return EXIT_OK if report.ok else EXIT_FAILED
    # Repaired: sound when every file came back verified and nothing else (an orphan) is wrong.
    left = len(report.problems) - len(repairable)
    whole = repair is None or (repair.ok and repair.missing == 0)
    return EXIT_OK if whole and not left else EXIT_FAILED


def _print_repair(
    args: argparse.Namespace, report: VerifyReport, repair: Report | None, where: str, out: TextIO
) -> None:
    repairable = len(report.repairable)
    if repairable and not args.repair:
        out.write(
            f"run `binance-archive verify {shlex.quote(args.location)} --repair` to fetch the {repairable} corrupt, "
            "missing and unverified files again (a re-run of the download skips a corrupt file: its sidecar is there)\n"
        )
    elif repair is not None:
        out.write(f"repair: fetching the {repairable} corrupt, missing and unverified files again\n")
        write_summary(repair, where, out)
    elif args.repair:
        out.write("repair: nothing to fetch again\n")
    orphans = len(report.problems) - repairable
    if args.repair and orphans:
        out.write(f"orphans left as they are (not files of the archive: remove them by hand): {orphans}\n")


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
    """A docstring's first line as plain text: ``literal`` and :role:`name` markup is for Sphinx, not a terminal."""
    line = (doc or "").strip().split("\n", 1)[0]
    return _ROLE.sub(r"\1", line).replace("``", "")


_ROLE = re.compile(r":[a-z:]+:`~?([^`]+)`")


def cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    from binance_archive.cli.demo import run_demo

    return run_demo(args.to, out=out, quiet=args.quiet, keep_upstream=args.keep_upstream)


def cmd_symbols(args: argparse.Namespace, out: TextIO) -> int:
    archive = _archive(args)
    symbols = run_loop(archive.symbols(args.market, args.data_type, args.period))
    for symbol in symbols:
        out.write(symbol + "\n")
    return EXIT_OK


def cmd_catalog(args: argparse.Namespace, out: TextIO) -> int:
    catalog = catalog_of(args)
    write_all(out, catalog.to_json() + "\n" if args.format == "json" else catalog.to_markdown())
    return EXIT_OK


def cmd_convert(args: argparse.Namespace, out: TextIO) -> int:
    from binance_archive.archive import Archive
    from binance_archive.progress import TerminalProgress

    given = any(getattr(args, o) for o in ("market", "data_type", "symbol", "interval", "start", "end"))
    selection = selection_of(args, need_symbols=False) if given else None
    archive = Archive(
        args.source, storage_options=backend_options(args.storage_option, "--storage-option"), catalog=catalog_of(args)
    )
    bar = TerminalProgress(sys.stderr) if not (args.quiet or args.json) and sys.stderr.isatty() else None
    try:
        report = run_loop(
            archive.convert(
                selection, to=args.to, to_options=backend_options(args.to_option, "--to-option"), force=args.force,
                concurrency=args.concurrency, progress=bar,
            )
        )  # fmt: skip
    finally:
        if bar is not None:
            bar.close()
    if args.json:
        write_all(out, report.to_json() + "\n")
    elif not args.quiet:
        out.write(report.summary() + "\n")
        for problem in report.problems[:20]:
            out.write(f"failed: {problem}\n")
        if len(report.problems) > 20:
            out.write(f"... and {len(report.problems) - 20} more (--json lists them all)\n")
        out.write(f"tables: {report.tables}\n")
    return EXIT_OK if report.ok else EXIT_FAILED


def cmd_schemas(args: argparse.Namespace, out: TextIO) -> int:
    from binance_archive.core.schemas import schema_for, schemas, schemas_markdown

    if args.market or args.data_type:
        if not (args.market and args.data_type):
            raise ConfigurationError("give --market and --data-type together (or neither, for every schema)")
        only = schema_for(args.market, args.data_type)
        write_all(out, schemas_markdown([only]))
    else:
        write_all(out, schemas_markdown(schemas()))
    return EXIT_OK
