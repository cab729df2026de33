"""The bucket's requests: ListObjects v1 and v2, HeadBucket and GetBucketLocation.

A listing pages through the cached key index (delimiters, markers, continuation tokens), leaving out missing keys.
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import datetime as dt
import functools
import random
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape

from aiohttp import web

from binance_archive.testing.server.state import MAX_PAGE, REGION, ServerState

__all__ = ["BucketRequests"]

_NS = "http://s3.amazonaws.com/doc/2006-03-01/"


@functools.lru_cache(maxsize=4096)  # files written together share their time stamps
def _iso(timestamp: float) -> str:
    """S3's LastModified: ``2024-01-02T02:50:00.000Z``."""
    moment = dt.datetime.fromtimestamp(timestamp, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _after_prefix(prefix: str) -> str:
    """The smallest string greater than every string starting with ``prefix``."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


class BucketRequests(ServerState):
    """The requests for the bucket itself: its region, its location, its listing."""

    async def _bucket(self, request: web.BaseRequest) -> web.StreamResponse:
        faults = self.faults
        if faults.latency:
            await asyncio.sleep(faults.latency)
        rng = random.Random(f"{faults.seed}|{request.method}|{request.path_qs}|{self._attempt('LIST', '')}")
        if faults.error_rate and rng.random() < faults.error_rate:
            return self._fail(request, rng, "listing")
        if request.method == "HEAD":  # HeadBucket
            return web.Response(headers={"x-amz-bucket-region": REGION, "Server": "AmazonS3"})
        if request.method != "GET":
            return self._error(request, 405, "MethodNotAllowed", "The method is not allowed on the bucket.")
        if "location" in request.query:
            location = f'<LocationConstraint xmlns="{_NS}">{REGION}</LocationConstraint>'
            return self._xml('<?xml version="1.0" encoding="UTF-8"?>\n' + location)
        try:
            return self._xml(await self._listing(request.query))
        except ValueError as exc:
            return self._error(request, 400, "InvalidArgument", str(exc))

    def _xml(self, body: str) -> web.Response:
        data = body.encode("utf-8")
        self.stats.bytes_sent += len(data)
        headers = {"x-amz-bucket-region": REGION, "Server": "AmazonS3"}
        return web.Response(body=data, content_type="application/xml", headers=headers)

    # listing -------------------------------------------------------------------------------------

    async def _listing(self, query: Any) -> str:
        v2 = query.get("list-type") == "2"
        prefix = query.get("prefix", "")
        delimiter = query.get("delimiter", "")
        url_encode = query.get("encoding-type") == "url"
        try:
            max_keys = int(query.get("max-keys", MAX_PAGE))
        except ValueError:
            raise ValueError("max-keys must be an integer") from None
        if max_keys < 0:
            raise ValueError("max-keys must not be negative")
        max_keys = min(max_keys, self.page_size)
        token = query.get("continuation-token")
        if v2:
            start_after = query.get("start-after", "")
            after = _decode_token(token) if token is not None else start_after
        else:
            after = query.get("marker", "")

        keys = await self._keys()
        taken: list[tuple[str, bool]] = []
        truncated = False
        if max_keys:
            for entry in self._entries(keys, prefix, delimiter, after):
                if len(taken) == max_keys:
                    truncated = True
                    break
                taken.append(entry)
        contents = [name for name, is_prefix in taken if not is_prefix]
        prefixes = [name for name, is_prefix in taken if is_prefix]

        def enc(value: str) -> str:
            return escape(quote(value, safe="/") if url_encode else value)

        out = ['<?xml version="1.0" encoding="UTF-8"?>\n', f'<ListBucketResult xmlns="{_NS}">']
        out.append(f"<Name>{escape(self.bucket)}</Name><Prefix>{enc(prefix)}</Prefix>")
        if v2:
            if query.get("start-after") is not None:
                out.append(f"<StartAfter>{enc(query['start-after'])}</StartAfter>")
            if token is not None:
                out.append(f"<ContinuationToken>{escape(token)}</ContinuationToken>")
            if truncated:
                out.append(f"<NextContinuationToken>{_encode_token(taken[-1][0])}</NextContinuationToken>")
            out.append(f"<KeyCount>{len(taken)}</KeyCount>")
        else:
            out.append(f"<Marker>{enc(after)}</Marker>")
            if truncated and delimiter:
                # S3 sends NextMarker only with a delimiter; without one, clients page from the last key.
                out.append(f"<NextMarker>{enc(taken[-1][0])}</NextMarker>")
        out.append(f"<MaxKeys>{max_keys}</MaxKeys>")
        if delimiter:
            out.append(f"<Delimiter>{enc(delimiter)}</Delimiter>")
        if url_encode:
            out.append("<EncodingType>url</EncodingType>")
        out.append(f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>")
        for key in contents:
            found = self._local(key)
            if found is None:
                continue  # removed since the index was built
            path, stat = found
            etag = await self._etag(path, stat)
            out.append(
                f"<Contents><Key>{enc(key)}</Key><LastModified>{_iso(stat.st_mtime)}</LastModified>"
                f"<ETag>&quot;{etag}&quot;</ETag><Size>{stat.st_size}</Size>"
                "<StorageClass>STANDARD</StorageClass></Contents>"
            )
        for name in prefixes:
            out.append(f"<CommonPrefixes><Prefix>{enc(name)}</Prefix></CommonPrefixes>")
        out.append("</ListBucketResult>")
        return "".join(out)

    def _entries(self, keys: list[str], prefix: str, delimiter: str, after: str) -> Iterator[tuple[str, bool]]:
        """``(key, False)`` and ``(common prefix, True)`` in order, after ``after``, skipping missing keys.

        Bisection finds the start and jumps over each common prefix's keys, so a page costs O(page + log n)
        (plus the missing keys stepped over), not a scan of the whole tree.
        """
        i = bisect.bisect_left(keys, prefix)
        if after:
            i = max(i, bisect.bisect_right(keys, after))
        missing = self.faults.is_missing
        while i < len(keys):
            key = keys[i]
            if not key.startswith(prefix):
                return
            if delimiter:
                cut = key.find(delimiter, len(prefix))
                if cut >= 0:
                    if missing(key):
                        i += 1
                        continue
                    common = key[: cut + len(delimiter)]
                    if common > after:  # a marker may be a common prefix already listed
                        yield common, True
                    i = bisect.bisect_left(keys, _after_prefix(common), i + 1)
                    continue
            if not missing(key):
                yield key, False
            i += 1


def _encode_token(after: str) -> str:
    return base64.urlsafe_b64encode(after.encode("utf-8")).decode("ascii")


def _decode_token(token: str) -> str:
    try:
        return base64.b64decode(token.encode("ascii"), altchars=b"-_", validate=True).decode("utf-8")
    except (ValueError, UnicodeError):
        raise ValueError("The continuation token provided is incorrect") from None
