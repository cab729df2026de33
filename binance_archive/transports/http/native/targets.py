"""What a URL is requested as by the native client: the origin to connect to and the bytes of its GET."""

from __future__ import annotations

from urllib.parse import urlsplit

from binance_archive.common.urls import basic_authorization, origin, redact
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
        if parts.scheme not in ("http", "https"):  # urlsplit lower-cases the scheme (and the host)
            raise TransportError(f"cannot fetch {redact(url)}: only http and https URLs are supported")
        try:
            scheme, host, port = where = origin(parts)
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
        lines = [f"Host: {host_header}", f"User-Agent: {self._user_agent}", "Accept: */*"]
        if (authorization := basic_authorization(credentials_of, parts)) is not None:
            lines.append(f"Authorization: {authorization}")
        return where, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _check_path(url: str, path: str) -> None:
    if not path.isascii() or " " in path or "\r" in path or "\n" in path:
        raise TransportError(f"cannot fetch {redact(url)}: its path must be percent-encoded")
