"""What a URL is requested as by the native client: the origin to connect to and the bytes of its GET."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import unquote, urlsplit

from binance_archive.common.urls import redact
from binance_archive.errors import TransportError
from binance_archive.transports.http.native.connection import Origin

__all__ = ["Target", "Targets"]


class Target:
    """What a URL is requested as: its origin and the request's bytes."""

    __slots__ = ("origin", "request")

    def __init__(self, origin: Origin, request: bytes) -> None:
        self.origin = origin
        self.request = request


class Targets:
    """Turns URLs into targets. The part of a request that depends only on the URL's origin (its Host, User-Agent
    and credentials) is made once per origin: a run sends thousands of requests to one."""

    def __init__(self, user_agent: str) -> None:
        self._user_agent = user_agent
        self._origins: dict[str, tuple[Origin, bytes]] = {}

    def target(self, url: str, credentials_of: str) -> Target:
        """The target of ``url``; ``credentials_of`` is the URL first asked for (``url`` unless redirected), whose
        credentials go to its own origin only."""
        scheme_end = url.find("://")
        path_start = url.find("/", scheme_end + 3) if scheme_end > 0 else -1
        prefix, path = (url, "/") if path_start < 0 else (url[:path_start], url[path_start:])
        if "?" in prefix or "#" in prefix or (credentials_of != url and not credentials_of.startswith(prefix + "/")):
            # A URL with no path ("http://host?query"), or one redirected to: credentials decided from the first URL.
            return self._slow(url, credentials_of)
        if "#" in path:
            path = path.split("#", 1)[0]
        _check_path(url, path)
        known = self._origins.get(prefix)
        if known is None:
            if len(self._origins) > 64:
                self._origins.clear()
            known = self._origins[prefix] = self._origin_part(prefix + "/", prefix + "/")
        origin, rest = known
        return Target(origin, b"GET " + path.encode("ascii") + b" HTTP/1.1\r\n" + rest)

    def _slow(self, url: str, credentials_of: str) -> Target:
        origin, rest = self._origin_part(url, credentials_of)
        parts = urlsplit(url)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        _check_path(url, path)
        return Target(origin, b"GET " + path.encode("ascii") + b" HTTP/1.1\r\n" + rest)

    def _origin_part(self, url: str, credentials_of: str) -> tuple[Origin, bytes]:
        """The origin of ``url`` and the request's lines after the request line."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise TransportError(f"cannot fetch {redact(url)}: only http and https URLs are supported")
        try:
            host = parts.hostname or ""
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError as exc:
            raise TransportError(f"cannot fetch {redact(url)}: {exc}") from None
        if not host:
            raise TransportError(f"cannot fetch {redact(url)}: it names no host")
        try:
            wire_host = host if host.isascii() else host.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise TransportError(f"cannot fetch {redact(url)}: its host cannot be encoded ({exc})") from None
        if ":" in wire_host:
            wire_host = f"[{wire_host}]"  # an IPv6 literal
        host_header = wire_host if port == (443 if scheme == "https" else 80) else f"{wire_host}:{port}"
        origin: Origin = (scheme, host, port)
        lines = [f"Host: {host_header}", f"User-Agent: {self._user_agent}", "Accept: */*"]
        # Credentials go to the URL they were given with, as the other clients': not to another host redirected to.
        first = urlsplit(credentials_of)
        if first.username is not None and _origin_of(first) == origin:
            pair = f"{unquote(first.username)}:{unquote(first.password or '')}".encode()
            lines.append("Authorization: Basic " + base64.b64encode(pair).decode("ascii"))
        return origin, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _check_path(url: str, path: str) -> None:
    if not path.isascii() or " " in path or "\r" in path or "\n" in path:
        raise TransportError(f"cannot fetch {redact(url)}: its path must be percent-encoded")


def _origin_of(parts: Any) -> Origin:
    scheme = parts.scheme.lower()
    return scheme, parts.hostname or "", parts.port or (443 if scheme == "https" else 80)
