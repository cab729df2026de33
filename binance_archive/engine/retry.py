"""Retrying: one policy (how often, how long to wait, when a host is given up for dead) and one helper that applies
it, for every retry the engine makes (a file's download, a listing read for discovery or for a refresh)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import attrs

from binance_archive.errors import ConfigurationError, FileMissingError, RetryableError, VerificationError

__all__ = ["DeadHost", "RetryPolicy", "Retrying"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")


def _non_negative(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ConfigurationError(f"retry {attribute.name} must be a number of 0 or more, got {value!r}")


def _at_least_one(_: object, attribute: attrs.Attribute[Any], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"retry {attribute.name} must be a whole number of at least 1, got {value!r}")


@attrs.frozen
class RetryPolicy:
    """How the engine retries transient failures (5xx, 429, timeouts, resets, truncated bodies).

    The defaults follow s5cmd and rclone, which try a request 10 times: 10 tries a file, waits growing from 0.2 s
    and capped at 5 s (full jitter: about 13 s of waiting over the 10 tries on average, at most 26 s), then one more
    round of 10 tries at the end of the run for the files that still failed transiently. A host that answers
    nothing but failures for ``dead_after`` seconds stops the run instead (see :class:`DeadHost`).

    Attributes:
        attempts: tries per file in all, the first included (``--retries``).
        backoff: the base delay in seconds; try n waits a random time up to ``backoff * 2**(n-1)``.
        max_backoff: the longest delay between two tries.
        max_retry_after: the longest Retry-After honoured (a server asking for more gets this).
        verify_attempts: tries per file when the bytes do not match the sidecar (a corrupted transfer).
        final_pass: once the plan is done, try the files that failed transiently (5xx, resets, timeouts...) once
            more, with a full set of ``attempts``; a file that succeeds then counts as downloaded, not failed.
            Files that failed for good (a mismatch that repeated, a refused request) are not tried again.
        dead_after: seconds of nothing but failed tries (no request of the run succeeding) after which the
            host is taken for dead and the run stops, saying what failed and since when; 0 never stops.
        dead_after_failures: ... and at least this many tries failed in a row (a quiet run with a file or two in
            flight is not judged on too few tries).
    """

    attempts: int = attrs.field(default=10, validator=_at_least_one)
    backoff: float = attrs.field(default=0.2, validator=_non_negative)
    max_backoff: float = attrs.field(default=5.0, validator=_non_negative)
    max_retry_after: float = attrs.field(default=60.0, validator=_non_negative)
    verify_attempts: int = attrs.field(default=3, validator=_at_least_one)
    final_pass: bool = True
    dead_after: float = attrs.field(default=15.0, validator=_non_negative)
    dead_after_failures: int = attrs.field(default=10, validator=_at_least_one)

    @classmethod
    def with_retries(cls, retries: int | None = None, *, dead_after: float | None = None) -> RetryPolicy:
        """The default policy with ``retries`` tries a request (``--retries N``: 1 tries once, with no final pass
        either) and ``dead_after`` (``--dead-after SECONDS``); ``None`` keeps a default."""
        changes: dict[str, Any] = {}
        if retries is not None:
            changes["attempts"] = retries
            changes["final_pass"] = retries != 1
        if dead_after is not None:
            changes["dead_after"] = dead_after
        return cls(**changes)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed try number ``attempt`` (1-based)."""
        if retry_after is not None:
            return min(retry_after, self.max_retry_after)
        ceiling = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        # Full jitter: many files failing at once do not come back at once.
        return random.uniform(0, ceiling)


class DeadHost:
    """Watches every try of a run, across files, for a host that answers nothing but failures.

    A try that gets an answer (the file, a 404, bytes that fail their checksum) shows the host alive; a transient
    failure (:class:`RetryableError`) counts against it. Once tries have failed for ``policy.dead_after`` seconds
    with no success in between, at least ``policy.dead_after_failures`` of them in a row and of more than one job
    (one broken file retried alone is not a dead host), the host is taken for dead: :attr:`reason` says what
    failed and since when, ``on_dead`` is called once, and every :class:`Retrying` that watches it gives up at its
    next failure or wait instead of retrying on. Without it, a closed port or a server answering 503 to everything
    takes the whole retry budget of every file of the plan.
    """

    def __init__(self, policy: RetryPolicy, *, on_dead: Callable[[str], None] | None = None) -> None:
        self._policy = policy
        self._on_dead = on_dead
        self._failures = 0
        self._since = 0.0  # monotonic time of the first failure in a row
        self._since_wall = dt.datetime.now(dt.UTC)
        self._ever_succeeded = False
        self._first_job = ""  # the job of the first failure in a row ...
        self._several_jobs = False  # ... and whether another job has failed since
        self._dead = asyncio.Event()
        self.reason: str | None = None
        """Why the host was taken for dead, or ``None`` while it is not."""

    def succeeded(self) -> None:
        """A try got an answer from the host."""
        self._failures = 0
        self._ever_succeeded = True

    def failed(self, exc: BaseException, job: str) -> None:
        """A try of ``job`` (a file's key, say) failed transiently with ``exc``."""
        if self.reason is not None:
            return
        now = time.monotonic()
        if self._failures == 0:
            self._since, self._since_wall = now, dt.datetime.now(dt.UTC)
            self._first_job, self._several_jobs = job, False
        elif job != self._first_job:
            self._several_jobs = True
        self._failures += 1
        policy = self._policy
        elapsed = now - self._since
        if (
            policy.dead_after
            and self._several_jobs
            and self._failures >= policy.dead_after_failures
            and elapsed >= policy.dead_after
        ):
            before = "since the run started" if not self._ever_succeeded else "since the last success"
            self.reason = (
                f"every request has failed since {self._since_wall:%Y-%m-%d %H:%M:%S} UTC ({elapsed:.0f} s, "
                f"{self._failures} tries in a row, none succeeding {before}); the last: {exc}. The host looks "
                "down or unreachable: check the URL and the network, then run again (to wait out a longer outage: "
                "--dead-after SECONDS, or dead_after; 0 never stops)"
            )
            self._dead.set()
            if self._on_dead is not None:
                self._on_dead(self.reason)

    async def sleep(self, delay: float) -> bool:
        """Wait ``delay`` seconds; returns False at once should the host be taken for dead meanwhile."""
        if self.reason is not None:
            return False
        try:
            await asyncio.wait_for(self._dead.wait(), delay)
        except TimeoutError:
            return True
        return False


class Retrying:
    """The tries of one job under a :class:`RetryPolicy`; ``await retrying(attempt_once)``.

    ``attempt_once(n)`` is awaited for n = 1, 2, ... until it returns. A :class:`RetryableError` is tried again
    after the policy's delay (the server's Retry-After where it sent one), up to ``policy.attempts`` tries in all;
    with ``verify``, so is a :class:`VerificationError` (bytes that did not match their sidecar: a corrupted
    transfer), at once, up to ``policy.verify_attempts`` of them. The error that ends the tries is raised, and
    :attr:`attempts` says how many were made. ``on_retry`` hears of every error that is tried again. With
    ``dead_host``, every try is reported to it, and the tries end early (with the last error) once it has given
    the host up.
    """

    def __init__(
        self,
        policy: RetryPolicy,
        *,
        what: str,
        verify: bool = False,
        on_retry: Callable[[BaseException], None] | None = None,
        dead_host: DeadHost | None = None,
    ) -> None:
        self._policy = policy
        self._what = what
        self._verify = verify
        self._on_retry = on_retry
        self._dead_host = dead_host
        self.attempts = 0
        """Tries made so far."""

    async def __call__(self, attempt_once: Callable[[int], Awaitable[_T]]) -> _T:
        policy = self._policy
        watch = self._dead_host
        verify_failures = 0
        while True:
            self.attempts += 1
            try:
                result = await attempt_once(self.attempts)
            except RetryableError as exc:
                if watch is not None:
                    watch.failed(exc, self._what)
                    if watch.reason is not None:
                        raise
                if self.attempts >= policy.attempts:
                    raise
                delay = policy.delay(self.attempts, exc.retry_after)
                log.debug("retrying %s in %.2fs: %s", self._what, delay, exc)
                if self._on_retry is not None:
                    self._on_retry(exc)
                if watch is None:
                    await asyncio.sleep(delay)
                elif not await watch.sleep(delay):
                    raise
            except FileMissingError:
                if watch is not None:
                    watch.succeeded()  # the host answered
                raise
            except VerificationError as exc:
                if watch is not None:
                    watch.succeeded()  # bytes arrived: the host is alive, if not well
                verify_failures += 1
                if not self._verify or verify_failures >= policy.verify_attempts or self.attempts >= policy.attempts:
                    raise
                if self._on_retry is not None:
                    self._on_retry(exc)
            else:
                if watch is not None:
                    watch.succeeded()
                return result
