"""The native HTTP transport (``transport="http"``): the archive's files over HTTP(S), its listing through S3's.

- :mod:`.transport`: :class:`HttpTransport`, its options, and the choice of client;
- :mod:`.client`: the one protocol both client libraries are used through, :mod:`.aiohttp_client` and
  :mod:`.reqwest_client` its two implementations, each imported only when chosen;
- :mod:`.body`: what every client's bodies share (the speed guard, the limits of a small body);
- :mod:`.blocking`: a large body fetched again on a blocking connection in the engine's worker thread;
- :mod:`.errors`: the one mapping of failures to the library's errors;
- :mod:`.listing`: the S3 listing's pages, one request each.
"""

from binance_archive.common.urls import redact
from binance_archive.transports.http.body import BodySettings
from binance_archive.transports.http.transport import (
    DEFAULT_BASE_URL,
    DEFAULT_LISTING_URL,
    HttpTransport,
    register_transports,
)

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_LISTING_URL", "BodySettings", "HttpTransport", "redact", "register_transports"]
