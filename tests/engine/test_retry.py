"""The one retrying helper: which errors are tried again, how often, and what ends the tries."""

from __future__ import annotations

import asyncio

import pytest

from binance_archive import RetryPolicy
from binance_archive.engine.retry import DeadHost, Retrying
from binance_archive.errors import ConfigurationError, FileMissingError, RetryableError, VerificationError

QUICK = RetryPolicy(attempts=4, backoff=0, verify_attempts=2)


def failing(*errors: BaseException) -> tuple[list[int], object]:
    tries: list[int] = []

    async def attempt(number: int) -> str:
        tries.append(number)
        if len(tries) <= len(errors):
            raise errors[len(tries) - 1]
        return "done"

    return tries, attempt


async def test_a_transient_error_is_tried_again_until_the_job_succeeds() -> None:
    heard: list[BaseException] = []
    tries, attempt = failing(RetryableError("503"), RetryableError("reset"))
    retrying = Retrying(QUICK, what="a file", on_retry=heard.append)
    assert await retrying(attempt) == "done"  # type: ignore[arg-type]
    assert tries == [1, 2, 3] and retrying.attempts == 3 and [str(e) for e in heard] == ["503", "reset"]


async def test_the_last_try_s_error_ends_the_job() -> None:
    tries, attempt = failing(*(RetryableError(f"503 #{n}") for n in range(10)))
    retrying = Retrying(QUICK, what="a file")
    with pytest.raises(RetryableError, match="503 #3"):
        await retrying(attempt)  # type: ignore[arg-type]
    assert tries == [1, 2, 3, 4] and retrying.attempts == QUICK.attempts


async def test_verification_failures_are_tried_again_only_when_asked_and_only_so_often() -> None:
    tries, attempt = failing(VerificationError("bad bytes"))
    with pytest.raises(VerificationError):
        await Retrying(QUICK, what="a listing")(attempt)  # type: ignore[arg-type]
    assert tries == [1], "a listing that is not one is not read again"

    tries, attempt = failing(VerificationError("1"), VerificationError("2"), VerificationError("3"))
    retrying = Retrying(QUICK, what="a file", verify=True)
    with pytest.raises(VerificationError, match="2"):
        await retrying(attempt)  # type: ignore[arg-type]
    assert tries == [1, 2] and retrying.attempts == QUICK.verify_attempts


async def test_other_errors_end_the_job_at_once() -> None:
    tries, attempt = failing(FileMissingError("404"))
    retrying = Retrying(QUICK, what="a file", verify=True)
    with pytest.raises(FileMissingError):
        await retrying(attempt)  # type: ignore[arg-type]
    assert tries == [1] and retrying.attempts == 1


def test_the_default_policy_tries_10_times_with_capped_jittered_waits() -> None:
    policy = RetryPolicy()
    assert policy.attempts == 10 and policy.final_pass and policy.dead_after > 0
    waits = [policy.delay(n) for n in range(1, 10) for _ in range(200)]
    assert max(waits) <= policy.max_backoff == 5.0
    assert min(waits) >= 0 and len({round(w, 6) for w in waits}) > 1000, "full jitter: the waits are spread out"
    assert policy.delay(3, retry_after=2.5) == 2.5 and policy.delay(1, retry_after=1e6) == policy.max_retry_after


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"attempts": 0}, "attempts must be a whole number of at least 1, got 0"),
        ({"attempts": 2.5}, "attempts must be a whole number"),
        ({"attempts": True}, "attempts must be a whole number"),
        ({"dead_after": -1}, "dead_after must be a number of 0 or more"),
        ({"dead_after_failures": 0}, "dead_after_failures must be a whole number"),
        ({"backoff": float("nan")}, "backoff must be a number of 0 or more"),
    ],
)
def test_a_policy_out_of_bounds_is_refused_naming_the_field(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        RetryPolicy(**changes)  # type: ignore[arg-type]


def test_retries_n_sets_the_tries_and_1_turns_retrying_off() -> None:
    assert RetryPolicy.with_retries() == RetryPolicy()
    assert RetryPolicy.with_retries(4) == RetryPolicy(attempts=4)
    assert RetryPolicy.with_retries(1) == RetryPolicy(attempts=1, final_pass=False)
    assert RetryPolicy.with_retries(dead_after=0).dead_after == 0


async def test_the_dead_host_needs_time_failures_in_a_row_and_more_than_one_file() -> None:
    policy = RetryPolicy(dead_after=0.05, dead_after_failures=3)
    heard: list[str] = []
    watch = DeadHost(policy, on_dead=heard.append)
    for _ in range(5):
        watch.failed(RetryableError("HTTP 503 for http://h/a"), "a")
    await asyncio.sleep(0.06)
    watch.failed(RetryableError("HTTP 503 for http://h/a"), "a")
    assert watch.reason is None, "one file failing alone is not a dead host"
    watch.failed(RetryableError("HTTP 503 for http://h/b"), "b")
    assert watch.reason is not None and heard == [watch.reason]
    assert "every request has failed since" in watch.reason and "HTTP 503 for http://h/b" in watch.reason
    assert "since the run started" in watch.reason and "7 tries in a row" in watch.reason
    watch.failed(RetryableError("again"), "c")
    assert heard == [watch.reason], "told once"


async def test_a_success_resets_the_count() -> None:
    watch = DeadHost(RetryPolicy(dead_after=0.01, dead_after_failures=2))
    watch.failed(RetryableError("503"), "a")
    await asyncio.sleep(0.02)
    watch.succeeded()
    watch.failed(RetryableError("503"), "b")
    assert watch.reason is None, "one failure since the last success"
    await asyncio.sleep(0.02)
    watch.failed(RetryableError("503"), "c")
    assert watch.reason is not None and "since the last success" in watch.reason


async def test_retrying_gives_up_at_once_when_the_host_is_taken_for_dead_meanwhile() -> None:
    """A file waiting between tries wakes up and ends with its last error, rather than sleeping on."""
    watch = DeadHost(RetryPolicy(dead_after=0.05, dead_after_failures=2))
    slow = RetryPolicy(attempts=10, backoff=30, max_backoff=30)
    tries, attempt = failing(*(RetryableError(f"503 #{n}") for n in range(10)))

    async def other_files_fail() -> None:
        await asyncio.sleep(0.1)
        watch.failed(RetryableError("refused"), "another file")

    retrying = Retrying(slow, what="a file", dead_host=watch)
    async with asyncio.timeout(10):
        failing_too = asyncio.create_task(other_files_fail())
        with pytest.raises(RetryableError, match="503 #0"):
            await retrying(attempt)  # type: ignore[arg-type]
        await failing_too
    assert tries == [1] and watch.reason is not None
