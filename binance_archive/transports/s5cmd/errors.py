"""s5cmd's words turned into the library's errors, and the tail of its output kept for messages."""

from __future__ import annotations

import re
from collections import deque

from binance_archive.errors import FileMissingError, RetryableError, TransportError

__all__ = ["Tail", "bounded", "classify"]

_MESSAGE_LIMIT = 600  # characters of s5cmd's own words kept in an error message
_TAIL_LINES = 20
_STATUS = re.compile(r"status code: (\d{3})")


def bounded(text: str, limit: int = _MESSAGE_LIMIT) -> str:
    """``text`` on one line, cut to ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def classify(message: str, what: str) -> TransportError:
    """The library's exception for one of s5cmd's error messages about ``what`` (an ``s3://`` URL).

    404/NoSuchKey -> FileMissingError; 403 -> TransportError explaining anonymous access; 5xx, 408, 429 and
    network failures -> RetryableError; other 4xx and local file-system failures -> TransportError.
    """
    text = bounded(message)
    lowered = message.lower()
    match = _STATUS.search(message)
    status = int(match.group(1)) if match else None
    if "nosuchbucket" in lowered:
        return TransportError(f"{what}: the bucket does not exist ({text}); check bucket and endpoint_url")
    if "nosuchkey" in lowered or status == 404 or "no object found" in lowered:
        return FileMissingError(f"file not found: {what}")
    if status in (401, 403) or "accessdenied" in lowered or "forbidden" in lowered:
        return TransportError(
            f"access denied to {what} ({text}); an anonymous client (s5cmd --no-sign-request) needs a bucket "
            "policy allowing s3:GetObject and s3:ListBucket to everyone, or pass sign_requests=True with "
            "AWS credentials in the environment"
        )
    if "incorrect usage" in lowered or "flag provided but not defined" in lowered or "bad value for" in lowered:
        return TransportError(f"s5cmd refused its command line ({text}); check extra_args and endpoint_url")
    if "nocredentialproviders" in lowered:
        return TransportError(
            f"{what}: s5cmd found no AWS credentials ({text}); set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            "(or AWS_PROFILE), or leave sign_requests off to read a public bucket anonymously"
        )
    if status is not None:
        if status >= 500 or status in (408, 429):
            return RetryableError(f"{what}: HTTP {status} ({text})")
        return TransportError(f"{what}: HTTP {status} ({text})")
    if any(s in lowered for s in ("no space left", "permission denied", "read-only file system", "quota")):
        return TransportError(f"cannot stage {what}: {text}; free space or choose another staging_dir")
    return RetryableError(f"{what}: {text}")


class Tail:
    """The last lines of s5cmd's other output (general errors), for messages."""

    def __init__(self) -> None:
        self.lines: deque[str] = deque(maxlen=_TAIL_LINES)

    def add(self, line: str) -> None:
        self.lines.append(line)

    def text(self) -> str:
        return bounded(" | ".join(self.lines))
