"""Binance's ``.CHECKSUM`` sidecars: ``<64 lowercase hex><two spaces><file name>``, newline or not."""

from __future__ import annotations

import re

from binance_archive.errors import VerificationError

__all__ = ["MAX_SIDECAR_BYTES", "format_checksum", "parse_checksum"]

# A real sidecar is about 100 bytes; anything far larger is not a sidecar and is refused unread.
MAX_SIDECAR_BYTES = 4096
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


def parse_checksum(content: bytes | str, *, filename: str | None = None) -> str:
    """Return the lower-case SHA-256 hex digest from a sidecar's content.

    Spot sidecars have no trailing newline and futures ones do, so the content is stripped and its first
    token taken. Where ``filename`` is given and the sidecar names a file, the two must agree.

    Raises:
        VerificationError: for an empty, oversized or malformed sidecar, or one naming another file.
    """
    if len(content) > MAX_SIDECAR_BYTES:
        raise VerificationError(f"sidecar is {len(content)} bytes; a real one is about 100")
    if isinstance(content, bytes):
        try:
            content = content.decode("utf-8")
        except UnicodeDecodeError:
            raise VerificationError("sidecar is not UTF-8 text") from None
    tokens = content.split()
    if not tokens or not _HEX64.fullmatch(tokens[0]):
        raise VerificationError(f"sidecar does not start with a 64-digit SHA-256: {content[:80]!r}")
    if filename is not None and len(tokens) > 1 and tokens[1].lstrip("*") != filename:
        raise VerificationError(f"sidecar names {tokens[1]!r}, not {filename!r}")
    return tokens[0].lower()


def format_checksum(digest: str, filename: str, *, newline: bool = True) -> str:
    """A sidecar's content as Binance writes it (futures sidecars end in a newline, spot ones do not)."""
    return f"{digest}  {filename}" + ("\n" if newline else "")
