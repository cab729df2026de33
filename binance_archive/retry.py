"""When and how long to wait before trying a file again: exponential backoff with full jitter."""

from __future__ import annotations

import random
from typing import Any

import attrs

from binance_archive.errors import ConfigurationError

__all__ = ["RetryPolicy"]


def _positive(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if value < 0:
        raise ConfigurationError(f"retry {attribute.name} must not be negative, got {value}")


@attrs.frozen
class RetryPolicy:
    """How the engine retries transient failures (5xx, 429, timeouts, resets, truncated bodies).

    Attributes:
        attempts: tries per file in all, the first included.
        backoff: the base delay in seconds; try n waits a random time up to ``backoff * 2**(n-1)``.
        max_backoff: the longest delay between two tries.
        max_retry_after: the longest Retry-After honoured (a server asking for more gets this).
        verify_attempts: tries per file when the bytes do not match the sidecar (a corrupted transfer).
    """

    attempts: int = attrs.field(default=5, validator=_positive)
    backoff: float = attrs.field(default=0.25, validator=_positive)
    max_backoff: float = attrs.field(default=20.0, validator=_positive)
    max_retry_after: float = attrs.field(default=60.0, validator=_positive)
    verify_attempts: int = attrs.field(default=3, validator=_positive)

    def __attrs_post_init__(self) -> None:
        if self.attempts < 1 or self.verify_attempts < 1:
            raise ConfigurationError("retry attempts must be at least 1")

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed try number ``attempt`` (1-based)."""
        if retry_after is not None:
            return min(retry_after, self.max_retry_after)
        ceiling = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        # Full jitter: many files failing at once do not come back at once.
        return random.uniform(0, ceiling)
