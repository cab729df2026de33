"""The archive's S3 listing over HTTP: ListObjects pages, one request each, followed by their markers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import urlencode

from binance_archive.common.urls import split_query
from binance_archive.core.listing import ListingPage, parse_listing
from binance_archive.errors import TransportError

__all__ = ["MAX_LISTING_BYTES", "listing_pages"]

MAX_LISTING_BYTES = 16 * 1024 * 1024
"""The largest listing page read (a real page of 1000 entries is ~300 KB)."""


async def listing_pages(
    read: Callable[[str], Awaitable[bytes]], listing_url: str, prefix: str, delimiter: str | None
) -> AsyncIterator[ListingPage]:
    """The pages of the listing of ``prefix`` at ``listing_url`` (a signed URL keeps its query), each read whole
    by ``read(url)``.

    Raises:
        TransportError: for a page that is not a listing, or a listing whose markers go back (it would loop).
    """
    base, signed = split_query(listing_url)
    marker: str | None = None
    while True:
        query = {"prefix": prefix}
        if delimiter:
            query["delimiter"] = delimiter
        if marker:
            query["marker"] = marker
        page = parse_listing(await read(f"{base}?{signed + '&' if signed else ''}{urlencode(query)}"))
        yield page
        if not page.is_truncated or not page.next_marker:
            return
        if marker is not None and page.next_marker <= marker:
            # S3 lists in key order, so markers only grow; a listing that goes back would loop forever.
            raise TransportError(f"the listing of {prefix!r} went back from {marker!r} to {page.next_marker!r}")
        marker = page.next_marker
