"""The one mapping from what went wrong in an HTTP request to the library's errors, for every client.

Each client (aiohttp, pyreqwest, the blocking GET) only says which of these happened, from its own library's
exceptions; the error, its class (retried or not) and its words are chosen here, so that a failure reads the
same whichever client met it. URLs are named redacted.
"""

from __future__ import annotations

from binance_archive.common.urls import redact
from binance_archive.errors import FileMissingError, RetryableError, TransportError

__all__ = ["broke_off", "connection_failed", "reason", "request_failed", "status_error", "timed_out", "tls_error"]


def status_error(status: int, url: str, what: str, retry_after: str | None) -> Exception:
    """A status other than 200: 404 is missing, 429 and 5xx are retried (honouring Retry-After), the rest fails."""
    if status == 404:
        return FileMissingError(f"{what} not found: {redact(url)}")
    if status == 429 or status >= 500:
        # 429 and 503 are the server saying it has too much to do (S3's SlowDown is a 503): a sign to slow down.
        throttled = status in (429, 503)
        return RetryableError(
            f"HTTP {status} for {redact(url)}", retry_after=_retry_after(retry_after), throttled=throttled
        )
    return TransportError(f"HTTP {status} for {redact(url)}")


def timed_out(url: str, *, received: int | None = None, reading: bool = False) -> RetryableError:
    """No answer, or no next bytes of a body, within the timeout: retried. ``received`` counts the body's bytes."""
    if received is not None:
        return RetryableError(f"reading {redact(url)} timed out after {received} bytes")
    if reading:
        return RetryableError(f"reading {redact(url)} timed out")
    return RetryableError(f"timed out waiting for {redact(url)}")


def broke_off(url: str, reason: str, *, received: int | None = None) -> RetryableError:
    """The body ended in an error (a reset, a cut connection): retried."""
    after = f" after {received} bytes" if received is not None else ""
    return RetryableError(f"the body of {redact(url)} broke off{after}: {reason}")


def connection_failed(url: str, reason: str) -> RetryableError:
    """The request never got an answer (refused, reset, unreachable): retried, and a sign of a server (or a path)
    that takes no more connections."""
    return RetryableError(f"connection failed for {redact(url)}: {reason}", throttled=True)


def request_failed(url: str, reason: str) -> TransportError:
    """Anything else the client refused (a redirect loop, a closed client): not retried."""
    return TransportError(f"request for {redact(url)} failed: {reason}")


def tls_error(where: str, reason: str) -> TransportError:
    """A certificate that failed verification: not retried (``where`` is redacted already)."""
    return TransportError(
        f"TLS failed for {where}: {reason}; the server's certificate must be valid for its host and signed by a "
        "trusted CA (trust a private CA with the ca_bundle option; pass verify_ssl=False only for a test server "
        "you trust)"
    )


def reason(exc: BaseException) -> str:
    """A failure of the socket in words: its class, and its message where it has one."""
    text = str(exc)
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: rare here, and the backoff will do
