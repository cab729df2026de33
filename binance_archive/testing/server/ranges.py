"""The ``Range`` header of an object request: the one byte range served, or the whole body."""

from __future__ import annotations

__all__ = ["Unsatisfiable", "parse_range"]


class Unsatisfiable(Exception):
    pass


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, end exclusive)`` of a single ``bytes=`` range, or ``None`` to send the whole body.

    Malformed and multi-range headers are ignored (RFC 9110 allows answering them with the whole body, as
    S3 does). Raises :class:`Unsatisfiable` for a range outside the body.
    """
    if not header:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    try:
        if not first:
            suffix = int(last)
            if suffix <= 0 or size == 0:
                raise Unsatisfiable
            return max(0, size - suffix), size
        start = int(first)
        if start >= size:
            raise Unsatisfiable
        end = int(last) + 1 if last else size
    except ValueError:
        return None
    if start < 0 or end <= start:
        return None  # "b-a": not a valid range, so ignored
    return start, min(end, size)
