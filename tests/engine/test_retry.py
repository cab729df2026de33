"""The one retrying helper: which errors are tried again, how often, and what ends the tries."""

from __future__ import annotations

import pytest

from binance_archive import RetryPolicy
from binance_archive.engine.retry import Retrying
from binance_archive.errors import FileMissingError, RetryableError, VerificationError

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
