"""The ``binance-archive`` command: plan, download, verify, symbols, backends, catalog and demo.

- :mod:`.parser`: the commands, their options and their help;
- :mod:`.arguments`: options turned into selections and run configurations;
- :mod:`.commands`: what each command does;
- :mod:`.processes`: ``download --processes N``, one shard of the run configuration per process;
- :mod:`.output`: whole texts on the command's output, errors, exit statuses;
- :mod:`.demo`: the demo, against the built-in fake archive (the only importer of :mod:`binance_archive.testing`).

Exit status: 0 success; 1 some files failed (missing files are not failures); 2 bad usage or configuration;
130 interrupted. Nothing outside this package (but ``__main__``) imports it.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn, TextIO

from binance_archive.cli.output import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    INTERRUPT_GRACE,
    error_status,
    say_interrupted,
    stop_now,
)
from binance_archive.cli.parser import build_parser
from binance_archive.errors import BinanceArchiveError

__all__ = ["console_main", "console_script", "main"]


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        status: int = args.func(args, out or sys.stdout)
        return status
    except BinanceArchiveError as exc:
        return error_status(exc)
    except KeyboardInterrupt:
        say_interrupted()
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `binance-archive plan ... | head`: stop quietly, and keep Python from complaining
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def console_main() -> int:
    """The ``binance-archive`` command (and ``python -m binance_archive``): :func:`main`, in a process of its own.

    Ctrl-C stops it within :data:`~.output.INTERRUPT_GRACE` seconds with status 130, quietly however often it is
    pressed (see :func:`binance_archive.runner.handle_interrupts`).
    """
    from binance_archive.runner import handle_interrupts, tune_for_one_job

    tune_for_one_job()
    handle_interrupts(grace=INTERRUPT_GRACE, on_deadline=stop_now)
    try:
        return main()
    except KeyboardInterrupt:  # before main's own handling (parsing the options, say)
        say_interrupted()
        return EXIT_INTERRUPTED


def console_script() -> NoReturn:
    """The ``binance-archive`` script and ``python -m binance_archive``: :func:`console_main`, then the process ends
    at once with its status, without the interpreter's finalization (see :func:`binance_archive.runner.end_process`).
    """
    from binance_archive.runner import end_process

    end_process(console_main())
