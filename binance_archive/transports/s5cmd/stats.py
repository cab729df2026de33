"""What the s5cmd transport did, counted (for tests and tuning)."""

from __future__ import annotations

import attrs

__all__ = ["S5cmdStats"]


@attrs.define
class S5cmdStats:
    """What the transport did: processes run, keys fetched, and the largest batch."""

    processes: int = 0
    batches: int = 0
    keys: int = 0
    largest_batch: int = 0
    listings: int = 0
