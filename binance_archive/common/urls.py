"""URLs of the archive and of buckets: checked before any I/O, and shown without their secrets.

A URL may carry credentials (``user:password@``) and a signed query string: messages and logs name it
:func:`redacted`, and a refused URL :func:`as_typed` (as the user typed it, control characters and all, less the
secrets).
"""

from __future__ import annotations

from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit

from binance_archive.errors import ConfigurationError

__all__ = ["as_typed", "basic_authorization", "check_http_url", "origin", "redact", "split_query"]


def redact(url: str) -> str:
    """A URL without credentials or query string, for messages and logs (signed URLs carry secrets)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def as_typed(url: str) -> str:
    """``url`` as the user typed it (control characters and all, for a message) less its secrets: no
    ``user:password@`` and no query string, which is marked ``?…`` (so that a URL of nothing but a query is not
    shown as empty). (``urlsplit`` would silently drop tabs and newlines.)"""
    text, query, _ = url.partition("?")
    scheme, sep, rest = text.partition("://") if "://" in text else ("", "", text)
    host, slash, path = rest.partition("/")
    return f"{scheme}{sep}{host.rpartition('@')[2]}{slash}{path}{'?…' if query else ''}"


def check_http_url(url: object, what: str) -> str:
    """``url``, checked as an ``http://`` or ``https://`` URL with a host (less a trailing slash unless it has a
    query string); ``what`` names it in the error ("base URL").

    Raises:
        ConfigurationError: before any I/O, rather than as a failure of every file: no host, white space or
            control characters in it, a port that is not one, a backslash in the host part.
    """
    if not isinstance(url, str):
        raise ConfigurationError(f"the {what} must be an http:// or https:// URL, not {url!r}")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for a port that is not a number
    except ValueError:
        parts, port = None, None
    # A backslash in the host is refused here (aiohttp's yarl would refuse it too, but costs 8 ms to import).
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or "\\" in parts.netloc
        or any(c.isspace() or not c.isprintable() for c in url)
        or (port is not None and not 0 < port < 65536)
    ):
        raise ConfigurationError(f"invalid {what} {as_typed(url)!r}; expected an http:// or https:// URL")
    return url if parts.query else url.rstrip("/")


def split_query(url: str) -> tuple[str, str]:
    """``(url without its query, query)``: a signed base URL keeps its signature on every request."""
    base, _, query = url.partition("?")
    return base.rstrip("/"), query


def origin(parts: SplitResult) -> tuple[str, str, int]:
    """A split URL's scheme, host and port (the scheme's default where it names none)."""
    return parts.scheme, parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


def basic_authorization(credentials_of: str, target: SplitResult) -> str | None:
    """The ``Authorization`` header's value for a request to ``target`` with the credentials of the URL
    ``credentials_of``: ``None`` where that URL has none, or where ``target`` is another origin (credentials go to the
    URL they were given with, as aiohttp's do, not to another host a redirect names)."""
    given = urlsplit(credentials_of)
    if given.username is None or origin(given) != origin(target):
        return None
    import base64  # only for a URL with credentials: not at every start-up

    pair = f"{unquote(given.username)}:{unquote(given.password or '')}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")
