"""What a new user sees first: the listings, the help, the errors of a mistyped option, ``help(Archive)``."""

from __future__ import annotations

import argparse
import io
import pydoc
from pathlib import Path

import pytest

from binance_archive import Archive
from binance_archive.cli import main
from binance_archive.cli.parser import build_parser
from binance_archive.core import DEFAULT_CATALOG, Availability, Catalog, DataType, Market, Period

ROOT = Path(__file__).parent.parent
PLAN = ["plan", "--market", "spot", "--data-type", "klines", "--symbol", "BTCUSDT", "--interval", "1d"]
DATES = ["--start", "2024-01-01", "--end", "2024-01-02", "--today", "2026-11-22"]


def run(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    return main(argv, out=out), out.getvalue()


def test_backends_prints_plain_text_not_sphinx_markup() -> None:
    status, out = run(["backends"])
    assert status == 0 and "http" in out
    assert "``" not in out and ":class:`" not in out, out
    assert "from base_url" in out, "the literal's text stays, only its markup goes"


def test_the_catalog_says_retired_once() -> None:
    table = DEFAULT_CATALOG.to_markdown()
    assert "**retired**" in table
    assert "retired** retired" not in table, table
    # A user's catalog (an older tool's matrix) may say "retired" in its note: the marker is not added again.
    daily = {Period.DAILY: ()}
    mine = Catalog([Availability(Market.FUTURES_UM, DataType.BOOK_TICKER, daily, retired=True, note="retired (#334)")])
    assert "| retired (#334) |" in mine.to_markdown()


def test_symbols_help_describes_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["symbols", "--help"])
    lines = capsys.readouterr().out.splitlines()
    for option in ("--market M", "--data-type T"):
        line = next(line for line in lines if line.strip().startswith(option))
        assert line.strip() != option, f"{option} has no description"
    assert any("futures/um" in line for line in lines)


def test_plan_prints_urls_under_a_base_url() -> None:
    status, out = run([*PLAN, *DATES, "--base-url", "http://mirror.example:8080/"])
    assert status == 0
    assert out.splitlines() == [
        "http://mirror.example:8080/data/spot/daily/klines/BTCUSDT/1d/BTCUSDT-1d-2024-01-01.zip",
        "http://mirror.example:8080/data/spot/daily/klines/BTCUSDT/1d/BTCUSDT-1d-2024-01-02.zip",
    ]
    status, out = run([*PLAN, *DATES, "--urls"])
    assert out.splitlines()[0].startswith("https://data.binance.vision/data/spot/daily/klines/BTCUSDT/1d/")


def test_an_unknown_option_is_reported_with_the_command_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*PLAN, *DATES, "--listing-url", "http://x"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: binance-archive plan "), err
    assert "binance-archive plan: error: unrecognized arguments: --listing-url http://x" in err


def test_help_of_archive_does_not_print_the_catalog() -> None:
    text = pydoc.render_doc(Archive, renderer=pydoc.plaintext)
    assert "Availability(" not in text
    signature = next(line for line in text.splitlines() if "catalog: " in line and "Archive(" in line)
    assert len(signature) < 1000, signature
    assert repr(DEFAULT_CATALOG).startswith(f"<Catalog: {len(DEFAULT_CATALOG)} market and data type pairs over spot,")


def test_gitignore_names_the_folders_the_commands_write_by_default() -> None:
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    demo_to = next(a.default for a in commands["demo"]._actions if a.dest == "to")
    assert f"/{demo_to}/" in ignored
    assert "/binance-data/" in ignored, "the default of download --to"
