"""The s5cmd transport (``transport="s5cmd"``): the archive's S3 bucket through the s5cmd binary, in batches.

- :mod:`.transport`: :class:`S5cmdTransport`, its options, endpoints and staging folder;
- :mod:`.binary`: finding the executable;
- :mod:`.batches`: requests gathered into ``s5cmd run`` processes, and the watchdog that stands in for a read
  timeout;
- :mod:`.process`: one s5cmd process, started, read, killed and reaped;
- :mod:`.listing`: the listing through ``s5cmd ls``;
- :mod:`.errors`: s5cmd's words turned into the library's errors;
- :mod:`.stats`: what the transport did, counted.

Every built-in backend's module is imported when an Archive is made (to register it), so the parts that only a
run through s5cmd needs (batches, processes, the listing) are imported when the transport opens or lists.
"""

from binance_archive.transports.s5cmd.binary import find_binary
from binance_archive.transports.s5cmd.errors import classify
from binance_archive.transports.s5cmd.stats import S5cmdStats
from binance_archive.transports.s5cmd.transport import (
    DEFAULT_BUCKET,
    DEFAULT_REGION,
    S5cmdTransport,
    register_transports,
)

__all__ = [
    "DEFAULT_BUCKET",
    "DEFAULT_REGION",
    "S5cmdStats",
    "S5cmdTransport",
    "classify",
    "find_binary",
    "register_transports",
]
