"""The tables' schemas: one for every market and data type of the catalog, typed as documented, shown in
docs/tables.md as generated from the code."""

from __future__ import annotations

from pathlib import Path

import pytest

from binance_archive.core import DEFAULT_CATALOG, DataType, Market
from binance_archive.core.schemas import ColumnType, HeaderRow, schema_for, schemas, schemas_markdown
from binance_archive.errors import ConfigurationError
from binance_archive.tables.arrow import arrow_schema


def test_every_catalog_entry_has_a_schema_and_no_more() -> None:
    pairs = {(e.market, e.data_type) for e in DEFAULT_CATALOG.entries}
    assert {(s.market, s.data_type) for s in schemas()} == pairs
    assert len(pairs) > 20


def test_times_are_utc_microseconds_prices_float64_ids_int64_flags_bool() -> None:
    import pyarrow as pa

    for schema in schemas():
        arrow = arrow_schema(schema)
        for (name, kind), field in zip(schema.table_columns, arrow, strict=True):
            assert field.name == name
            if kind.is_time:
                assert field.type == pa.timestamp("us", tz="UTC"), (schema.data_type, name)
            assert field.type != pa.float32()
        assert schema.table_time_column in arrow.names
    trades = arrow_schema(schema_for("cm", "trades"))
    assert [trades.field(n).type for n in ("id", "price", "base_qty", "is_buyer_maker")] == [
        pa.int64(), pa.float64(), pa.float64(), pa.bool_()
    ]  # fmt: skip


def test_spot_files_get_their_futures_twins_names() -> None:
    for data_type in (DataType.KLINES, DataType.TRADES, DataType.AGG_TRADES):
        spot, um = schema_for("spot", data_type), schema_for("um", data_type)
        assert spot.names[: len(um.names)] == um.names
        assert spot.header_row is HeaderRow.NEVER and um.header_row is HeaderRow.SOME
    assert schema_for("spot", "aggTrades").names[-1] == "is_best_match"
    assert schema_for("cm", "trades").names[3] == "base_qty" and schema_for("um", "trades").names[3] == "quote_qty"


def test_the_types_that_need_it_are_deduplicated_and_sorted() -> None:
    rules = {(s.data_type, s.dedupe, s.sort) for s in schemas() if s.dedupe or s.sort}
    assert rules == {
        (DataType.METRICS, True, True),
        (DataType.LIQUIDATION_SNAPSHOT, True, False),
        (DataType.BOOK_TICKER, False, True),
    }
    eoh = schema_for("option", "EOHSummary")
    assert eoh.table_columns[0] == ("time", ColumnType.TIME) and "date" not in dict(eoh.table_columns)


def test_an_impossible_pair_is_refused_naming_the_valid_data_types() -> None:
    with pytest.raises(ConfigurationError, match="spot has no metrics files; its data types: klines, trades"):
        schema_for(Market.SPOT, DataType.METRICS)
    with pytest.raises(ConfigurationError, match="valid choices"):
        schema_for("spot", "candles")


def test_docs_tables_page_is_generated_from_the_code() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "tables.md").read_text(encoding="utf-8")
    marker = "<!-- generated: binance-archive schemas -->\n"
    assert marker in doc, "docs/tables.md lost its generated marker"
    assert doc.split(marker, 1)[1] == schemas_markdown(), "docs/tables.md is out of date: `binance-archive schemas`"
