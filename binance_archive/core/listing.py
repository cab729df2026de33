"""Parsing the archive's S3 listing (ListObjects v1 and v2 XML) without any I/O."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING

import attrs

from binance_archive.errors import TransportError

if TYPE_CHECKING:
    import xml.etree.ElementTree as ET

__all__ = ["ListedObject", "ListingPage", "Paginator", "parse_listing"]

_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


@attrs.frozen
class ListedObject:
    """One object of a listing."""

    key: str
    size: int
    etag: str = ""
    last_modified: dt.datetime | None = None


@attrs.frozen
class ListingPage:
    """One page of a listing: sub-folders (``prefixes``), objects, and where the next page starts."""

    prefixes: tuple[str, ...]
    objects: tuple[ListedObject, ...]
    is_truncated: bool
    next_marker: str | None
    """For v1, the marker of the next page (``NextMarker``, else the last key); for v2 the continuation token
    (``None`` when a truncated v2 page sends none: a v2 token cannot be guessed)."""

    @classmethod
    def of_entries(cls, entries: Sequence[tuple[str, ListedObject | None]], *, truncated: bool) -> ListingPage:
        """A page of entries in key order, each ``(prefix, None)`` for a sub-folder or ``(key, object)``; a
        truncated page's marker is its last entry (v1 semantics: the next page starts after it)."""
        prefixes = tuple(key for key, obj in entries if obj is None)
        objects = tuple(obj for _, obj in entries if obj is not None)
        marker = entries[-1][0] if truncated and entries else None
        return cls(prefixes, objects, truncated, marker)


class Paginator:
    """Cuts entries that arrive in key order into pages of ``page_size``, as S3 does for a listing that a
    backend makes itself (a folder tree, ``s5cmd ls``).

    A page is marked truncated only when another entry follows it, so one entry is held back until the next one
    arrives (or :meth:`last` is called).
    """

    def __init__(self, page_size: int) -> None:
        self._page_size = page_size
        self._page: list[tuple[str, ListedObject | None]] = []
        self._pending: tuple[str, ListedObject | None] | None = None

    def add(self, entry: tuple[str, ListedObject | None]) -> ListingPage | None:
        """Take the next entry; returns a full page when one is complete."""
        if self._pending is not None:
            self._page.append(self._pending)
        self._pending = entry
        if len(self._page) < self._page_size:
            return None
        page, self._page = self._page, []
        return ListingPage.of_entries(page, truncated=True)

    def last(self) -> ListingPage:
        """The last page (possibly empty): what is left once no entry follows."""
        if self._pending is not None:
            self._page.append(self._pending)
            self._pending = None
        page, self._page = self._page, []
        return ListingPage.of_entries(page, truncated=False)


def _text(element: ET.Element, name: str) -> str | None:
    found = element.find(_NS + name)
    if found is None:
        found = element.find(name)  # some servers omit the namespace
    return None if found is None else (found.text or "")


def _findall(element: ET.Element, name: str) -> list[ET.Element]:
    return element.findall(_NS + name) or element.findall(name)


def parse_listing(content: bytes) -> ListingPage:
    """Parse one ``ListBucketResult`` page.

    Raises:
        TransportError: for XML that is not a listing.
    """
    import xml.etree.ElementTree as ET  # here: 4 ms to import, and a download by dates lists nothing

    try:
        root = ET.fromstring(content)
    except ET.ParseError as exc:
        raise TransportError(f"the listing is not valid XML: {exc}") from None
    if not root.tag.endswith("ListBucketResult"):
        raise TransportError(f"expected a ListBucketResult, got <{root.tag}>")
    prefixes = tuple(p for cp in _findall(root, "CommonPrefixes") if (p := _text(cp, "Prefix")))
    objects = []
    for item in _findall(root, "Contents"):
        key = _text(item, "Key")
        if not key:
            continue
        try:
            size = int(_text(item, "Size") or 0)
        except ValueError:
            raise TransportError(f"listing gives {key!r} a size that is not a number") from None
        modified = _text(item, "LastModified")
        objects.append(
            ListedObject(
                key=key,
                size=size,
                etag=(_text(item, "ETag") or "").strip('"'),
                last_modified=_parse_time(modified) if modified else None,
            )
        )
    truncated = (_text(root, "IsTruncated") or "false").lower() == "true"
    next_marker = _text(root, "NextContinuationToken") or _text(root, "NextMarker")
    is_v2 = _text(root, "KeyCount") is not None or _text(root, "ContinuationToken") is not None
    if truncated and not next_marker and not is_v2:
        # v1 without a delimiter sends no NextMarker: the next page starts after the last key or prefix.
        last = [o.key for o in objects] + list(prefixes)
        next_marker = max(last) if last else None
    return ListingPage(prefixes, tuple(objects), truncated, next_marker if truncated else None)


def _parse_time(text: str) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
