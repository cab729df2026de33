"""A stand-in for data.binance.vision on loopback: its files, its S3 listing, and the faults of a real network.

:class:`FakeArchiveServer` serves a tree written by :mod:`binance_archive.testing.tree` (or any folder laid
out like the archive) the way CloudFront and S3 serve the real one:

- ``GET``/``HEAD /data/...`` (as data.binance.vision) and ``/{bucket}/data/...`` (S3 path style, so S3
  clients such as s5cmd with ``--endpoint-url`` work too), with Content-Length, Last-Modified, an MD5 ETag,
  single byte ranges, ``If-None-Match``/``If-Modified-Since``, and 404 for missing keys;
- ``GET /{bucket}?prefix=...`` (and ``GET /?prefix=...``): ListObjects v1, or v2 with ``list-type=2``, at
  most ``page_size`` entries a page, ``.CHECKSUM`` objects included.

Faults (:class:`Faults`) can be set at construction or changed at any time through ``server.faults``. They
apply to every file request, zips and sidecars alike; a listing request is only slowed by ``latency`` and
failed by ``error_rate``. Each request draws its faults from a random generator seeded by the fault seed,
the key and how many times that key was asked for, so a run is reproducible whatever the concurrency; all but
``max_in_flight``, which refuses what comes beyond a number of requests at once, as a server shedding load does.
:class:`Stats` counts what the clients did.

- :mod:`.app`: :class:`FakeArchiveServer`, its life cycle and URLs, each request sent to the bucket or an object;
- :mod:`.listing`: the bucket's requests, ListObjects v1 and v2 above all;
- :mod:`.objects`: ``GET`` and ``HEAD`` of a key, and the faults injected into them;
- :mod:`.ranges`: the ``Range`` header;
- :mod:`.state`: what those requests share: settings, the key index, files and ETags on disk, S3's errors;
- :mod:`.faults`: :class:`Faults`;
- :mod:`.stats`: :class:`Stats`, and the aiohttp server counting connections into it.
"""

from binance_archive.testing.server.app import FakeArchiveServer
from binance_archive.testing.server.faults import Faults
from binance_archive.testing.server.state import DEFAULT_BUCKET
from binance_archive.testing.server.stats import Stats

__all__ = ["DEFAULT_BUCKET", "FakeArchiveServer", "Faults", "Stats"]
