"""A faithful stand-in for data.binance.vision, for tests, benchmarks and plugin authors.

- :mod:`~binance_archive.testing.content`: real-format CSV, zip and ``.CHECKSUM`` bytes for any file.
- :mod:`~binance_archive.testing.tree`: an archive tree on disk in the real layout, and a demo selection.
- :mod:`~binance_archive.testing.server`: :class:`FakeArchiveServer`, serving a tree over HTTP like
  CloudFront and S3 (files, ranges, listings), with injectable faults and request counters.

Run it standalone with ``python -m binance_archive.testing build --root DIR --demo`` then
``python -m binance_archive.testing serve --root DIR``.
"""

from binance_archive.testing.content import (
    columns,
    csv_rows,
    has_header,
    make_csv,
    make_sidecar,
    make_zip,
    published_at,
    time_unit,
)
from binance_archive.testing.server import DEFAULT_BUCKET, FakeArchiveServer, Faults, Stats
from binance_archive.testing.tree import (
    build_archive,
    build_demo,
    demo_files,
    demo_max_rows,
    demo_selections,
    key_path,
    replace_file,
    write_file,
)

__all__ = [
    "DEFAULT_BUCKET",
    "FakeArchiveServer",
    "Faults",
    "Stats",
    "build_archive",
    "build_demo",
    "columns",
    "csv_rows",
    "demo_files",
    "demo_max_rows",
    "demo_selections",
    "has_header",
    "key_path",
    "make_csv",
    "make_sidecar",
    "make_zip",
    "published_at",
    "replace_file",
    "time_unit",
    "write_file",
]
