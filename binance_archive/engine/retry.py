"""Retrying: one policy (how often, how long to wait) and one helper that applies it, for every retry the engine
makes (a file's download, a listing read for discovery or for a refresh)."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import attrs

from binance_archive.errors import ConfigurationError, RetryableError, VerificationError

__all__ = ["RetryPolicy", "Retrying"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")


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


class Retrying:
    """The tries of one job under a :class:`RetryPolicy`; ``await retrying(attempt_once)``.

    ``attempt_once(n)`` is awaited for n = 1, 2, ... until it returns. A :class:`RetryableError` is tried again
    after the policy's delay (the server's Retry-After where it sent one), up to ``policy.attempts`` tries in all;
    with ``verify``, so is a :class:`VerificationError` (bytes that did not match their sidecar: a corrupted
    transfer), at once, up to ``policy.verify_attempts`` of them. The error that ends the tries is raised, and
    :attr:`attempts` says how many were made. ``on_retry`` hears of every error that is tried again.
    """

    def __init__(
        self,
        policy: RetryPolicy,
        *,
        what: str,
        verify: bool = False,
        on_retry: Callable[[BaseException], None] | None = None,
    ) -> None:
        self._policy = policy
        self._what = what
        self._verify = verify
        self._on_retry = on_retry
        self.attempts = 0
        """Tries made so far."""

    async def __call__(self, attempt_once: Callable[[int], Awaitable[_T]]) -> _T:
        policy = self._policy
        verify_failures = 0
        while True:
            self.attempts += 1
            try:
                return await attempt_once(self.attempts)
            except RetryableError as exc:
                if self.attempts >= policy.attempts:
                    raise
                delay = policy.delay(self.attempts, exc.retry_after)
                log.debug("retrying %s in %.2fs: %s", self._what, delay, exc)
                if self._on_retry is not None:
                    self._on_retry(exc)
                await asyncio.sleep(delay)
            except VerificationError as exc:
                verify_failures += 1
                if not self._verify or verify_failures >= policy.verify_attempts or self.attempts >= policy.attempts:
                    raise
                if self._on_retry is not None:
                    self._on_retry(exc)
