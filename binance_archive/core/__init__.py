"""The dependency-free core: the archive modelled as data, with no I/O and nothing beyond attrs.

Markets, data types, intervals and periods; the catalog (availability matrix); files, keys and URLs; the
sidecar and listing formats; and the planning of a selection into a lazy stream of files.
"""

from binance_archive.core.catalog import DEFAULT_CATALOG, Availability, Catalog
from binance_archive.core.checksum import format_checksum, parse_checksum
from binance_archive.core.coverage import Narrowed, empty_reason, narrow
from binance_archive.core.datatypes import DataType
from binance_archive.core.files import CHECKSUM_SUFFIX, ArchiveFile, url_for_key
from binance_archive.core.intervals import Interval
from binance_archive.core.listing import ListedObject, ListingPage, parse_listing
from binance_archive.core.markets import Market
from binance_archive.core.periods import Period
from binance_archive.core.planning import (
    files_of_month,
    in_shard,
    parse_shard,
    plan,
    split_shard,
    utc_today,
    validate_selection,
)
from binance_archive.core.selection import AUTO, Selection, parse_date
from binance_archive.core.symbols import normalize_symbol, validate_symbol

__all__ = [
    "AUTO",
    "CHECKSUM_SUFFIX",
    "DEFAULT_CATALOG",
    "ArchiveFile",
    "Availability",
    "Catalog",
    "DataType",
    "Interval",
    "ListedObject",
    "ListingPage",
    "Market",
    "Narrowed",
    "Period",
    "Selection",
    "empty_reason",
    "files_of_month",
    "format_checksum",
    "in_shard",
    "narrow",
    "normalize_symbol",
    "parse_checksum",
    "parse_date",
    "parse_listing",
    "parse_shard",
    "split_shard",
    "plan",
    "utc_today",
    "validate_selection",
    "url_for_key",
    "validate_symbol",
]
