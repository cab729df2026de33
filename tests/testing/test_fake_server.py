"""The fake archive server: files, listings, faults and counters, through a real aiohttp client."""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import hashlib
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from binance_archive.core import ArchiveFile, DataType, Interval, ListedObject, Market, Period, parse_listing
from binance_archive.testing import FakeArchiveServer, Faults, build_archive, replace_file

UM_SYMBOLS = ("BNBUSDT", "BTCUSDT", "ETHUSDT", "SOLUSDT", "币安人生USDT")  # as in conftest's tree
NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
FILE = ArchiveFile(Market.FUTURES_UM, DataType.KLINES, "BTCUSDT", Period.DAILY, dt.date(2026, 5, 1), Interval.H1)
NON_ASCII = ArchiveFile(
    Market.FUTURES_UM, DataType.KLINES, "币安人生USDT", Period.DAILY, dt.date(2026, 5, 2), Interval.H1
)


def _disk(tree: Path, key: str) -> bytes:
    return tree.joinpath(*key.split("/")).read_bytes()


async def _get(session: aiohttp.ClientSession, url: str, **kw: Any) -> tuple[int, bytes, Mapping[str, str]]:
    """Status, body and (case-insensitive) headers of a GET."""
    async with session.get(url, **kw) as response:
        return response.status, await response.read(), response.headers


# ------------------------------------------------------------------------------------------------ files


async def test_get_serves_the_file_with_cloudfront_headers(
    server: FakeArchiveServer, session: aiohttp.ClientSession, tree: Path
) -> None:
    status, body, headers = await _get(session, FILE.url(server.base_url))
    assert status == 200
    assert body == _disk(tree, FILE.key)
    assert headers["Content-Length"] == str(len(body))
    assert headers["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    assert re.fullmatch(r'"[0-9a-f]{32}"', headers["ETag"])
    assert headers["Content-Type"] == "application/zip"
    modified = email.utils.parsedate_to_datetime(headers["Last-Modified"])
    assert modified == dt.datetime(2026, 5, 2, 8, 30, tzinfo=dt.UTC)  # futures publish ~08:30 the next day
    status, sidecar, _ = await _get(session, FILE.checksum_url(server.base_url))
    assert status == 200
    assert sidecar.decode().split() == [hashlib.sha256(body).hexdigest(), FILE.filename]


async def test_path_style_bucket_urls_serve_the_same_bytes(
    server: FakeArchiveServer, session: aiohttp.ClientSession
) -> None:
    _, direct, _ = await _get(session, FILE.url(server.base_url))
    status, path_style, _ = await _get(session, FILE.url(server.listing_url))
    assert status == 200
    assert path_style == direct


async def test_head_sends_headers_without_a_body(server: FakeArchiveServer, session: aiohttp.ClientSession) -> None:
    _, body, get_headers = await _get(session, FILE.url(server.base_url))
    async with session.head(FILE.url(server.base_url)) as response:
        assert response.status == 200
        assert await response.read() == b""
        assert response.headers["Content-Length"] == str(len(body))
        assert response.headers["ETag"] == get_headers["ETag"]
    async with session.head(server.url("data/spot/daily/klines/NOPE/1m/NOPE-1m-2026-05-01.zip")) as response:
        assert response.status == 404


@pytest.mark.parametrize(
    ("header", "expected"),
    [("bytes=10-19", (10, 20)), ("bytes=100-", (100, None)), ("bytes=-7", (-7, None)), ("bytes=0-0", (0, 1))],
)
async def test_single_byte_ranges(
    server: FakeArchiveServer,
    session: aiohttp.ClientSession,
    tree: Path,
    header: str,
    expected: tuple[int, int | None],
) -> None:
    whole = _disk(tree, FILE.key)
    part = whole[slice(*expected)]
    status, body, headers = await _get(session, FILE.url(server.base_url), headers={"Range": header})
    assert status == 206
    assert body == part
    start = expected[0] % len(whole)
    assert headers["Content-Range"] == f"bytes {start}-{start + len(part) - 1}/{len(whole)}"
    assert headers["Content-Length"] == str(len(part))


async def test_unsatisfiable_and_multiple_ranges(
    server: FakeArchiveServer, session: aiohttp.ClientSession, tree: Path
) -> None:
    size = len(_disk(tree, FILE.key))
    status, _, headers = await _get(session, FILE.url(server.base_url), headers={"Range": f"bytes={size}-"})
    assert status == 416
    assert headers["Content-Range"] == f"bytes */{size}"
    status, body, _ = await _get(session, FILE.url(server.base_url), headers={"Range": "bytes=0-1,5-6"})
    assert (status, len(body)) == (200, size)  # answered whole, as S3 does


async def test_missing_key_is_404_in_both_url_styles(server: FakeArchiveServer, session: aiohttp.ClientSession) -> None:
    missing = FILE.url(server.base_url).replace("2026-05-01", "2020-01-01")
    status, body, _ = await _get(session, missing)
    assert status == 404
    assert b"<Code>NoSuchKey</Code>" in body
    assert (await _get(session, missing.replace(server.base_url, server.listing_url)))[0] == 404
    assert (await _get(session, server.base_url + "/data/../etc/passwd"))[0] == 404


async def test_percent_encoded_non_ascii_key(
    server: FakeArchiveServer, session: aiohttp.ClientSession, tree: Path
) -> None:
    url = NON_ASCII.url(server.base_url)
    assert "%E5%B8%81" in url
    status, body, _ = await _get(session, url)
    assert status == 200
    assert body == _disk(tree, NON_ASCII.key)


async def test_conditional_get(server: FakeArchiveServer, session: aiohttp.ClientSession) -> None:
    _, _, headers = await _get(session, FILE.url(server.base_url))
    status, body, _ = await _get(session, FILE.url(server.base_url), headers={"If-None-Match": headers["ETag"]})
    assert (status, body) == (304, b"")
    since = {"If-Modified-Since": headers["Last-Modified"]}
    assert (await _get(session, FILE.url(server.base_url), headers=since))[0] == 304
    assert (await _get(session, FILE.url(server.base_url), headers={"If-None-Match": '"0"'}))[0] == 200


# ------------------------------------------------------------------------------------------------ listing


async def _list_all(
    session: aiohttp.ClientSession, url: str, prefix: str, *, delimiter: str = "", v2: bool = False
) -> tuple[list[ListedObject], list[str], int]:
    """Every object and common prefix of a listing, following its pages; and the number of pages."""
    objects: list[ListedObject] = []
    prefixes: list[str] = []
    params = {"prefix": prefix, **({"delimiter": delimiter} if delimiter else {}), **({"list-type": "2"} if v2 else {})}
    pages = 0
    while True:
        status, body, _ = await _get(session, url, params=params)
        assert status == 200, body
        page = parse_listing(body)
        pages += 1
        objects += page.objects
        prefixes += page.prefixes
        if not page.is_truncated:
            return objects, prefixes, pages
        assert page.next_marker
        params["continuation-token" if v2 else "marker"] = page.next_marker
        assert pages < 100


def _keys_under(tree: Path, prefix: str) -> list[str]:
    keys = [p.relative_to(tree).as_posix() for p in tree.rglob("*") if p.is_file()]
    return sorted(k for k in keys if k.startswith(prefix))


@pytest.mark.parametrize("v2", [False, True], ids=["v1", "v2"])
async def test_listing_without_delimiter_pages_over_every_key_once(
    server: FakeArchiveServer, session: aiohttp.ClientSession, tree: Path, v2: bool
) -> None:
    prefix = "data/futures/um/daily/klines/"
    objects, prefixes, pages = await _list_all(session, server.listing_url, prefix, v2=v2)
    keys = [o.key for o in objects]
    assert keys == _keys_under(tree, prefix)  # in order, each once, sidecars included
    assert len(keys) == len(UM_SYMBOLS) * 3 * 2
    assert any(k.endswith(".CHECKSUM") for k in keys)
    assert not prefixes
    assert pages == -(-len(keys) // 3)
    for obj in objects[:2]:
        body = _disk(tree, obj.key)
        assert obj.size == len(body)
        assert obj.etag == hashlib.md5(body).hexdigest()
        assert obj.last_modified is not None
        assert obj.last_modified.tzinfo is not None


@pytest.mark.parametrize("v2", [False, True], ids=["v1", "v2"])
async def test_listing_with_delimiter_gives_symbols_as_common_prefixes(
    server: FakeArchiveServer, session: aiohttp.ClientSession, v2: bool
) -> None:
    prefix = "data/futures/um/daily/klines/"
    objects, prefixes, pages = await _list_all(session, server.listing_url, prefix, delimiter="/", v2=v2)
    assert not objects
    assert prefixes == sorted(f"{prefix}{s}/" for s in UM_SYMBOLS)
    assert pages == 2
    # One level down, the files themselves.
    objects, prefixes, _ = await _list_all(session, server.listing_url, f"{prefix}BTCUSDT/1h/", delimiter="/", v2=v2)
    assert len(objects) == 6
    assert not prefixes


async def test_listing_markets_and_root_with_bucket_unspecified(
    server: FakeArchiveServer, session: aiohttp.ClientSession
) -> None:
    _, top, _ = await _list_all(session, server.base_url + "/", "data/", delimiter="/")
    assert top == ["data/futures/", "data/spot/"]
    _, markets, _ = await _list_all(session, server.listing_url, "data/futures/", delimiter="/")
    assert markets == ["data/futures/um/"]


async def test_listing_xml_follows_s3_v1(server: FakeArchiveServer, session: aiohttp.ClientSession) -> None:
    params = {"prefix": "data/futures/um/daily/klines/", "delimiter": "/"}
    _, body, headers = await _get(session, server.listing_url, params=params)
    assert headers["Content-Type"].startswith("application/xml")
    root = ET.fromstring(body)
    assert root.tag == f"{NS}ListBucketResult"
    tags = [child.tag.removeprefix(NS) for child in root]
    assert (
        tags
        == ["Name", "Prefix", "Marker", "NextMarker", "MaxKeys", "Delimiter", "IsTruncated"] + ["CommonPrefixes"] * 3
    )
    assert root.findtext(f"{NS}Name") == "data.binance.vision"
    assert root.findtext(f"{NS}MaxKeys") == "3"
    assert root.findtext(f"{NS}NextMarker") == "data/futures/um/daily/klines/ETHUSDT/"  # the third symbol
    # Without a delimiter S3 sends no NextMarker: the client pages from the last key.
    _, body, _ = await _get(session, server.listing_url, params={"prefix": "data/spot/"})
    root = ET.fromstring(body)
    assert root.find(f"{NS}NextMarker") is None
    assert root.findtext(f"{NS}IsTruncated") == "true"
    contents = root.findall(f"{NS}Contents")
    assert [c.tag.removeprefix(NS) for c in contents[0]] == ["Key", "LastModified", "ETag", "Size", "StorageClass"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', contents[0].findtext(f"{NS}ETag") or "")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", contents[0].findtext(f"{NS}LastModified") or "")


async def test_listing_v2_fields_and_start_after(server: FakeArchiveServer, session: aiohttp.ClientSession) -> None:
    prefix = "data/futures/um/daily/klines/BTCUSDT/1h/"
    params = {"list-type": "2", "prefix": prefix, "max-keys": "2"}
    _, body, _ = await _get(session, server.listing_url, params=params)
    root = ET.fromstring(body)
    assert root.findtext(f"{NS}KeyCount") == "2"
    assert root.findtext(f"{NS}MaxKeys") == "2"
    assert root.findtext(f"{NS}NextContinuationToken")
    keys = [k.text for k in root.iter(f"{NS}Key")]
    _, body, _ = await _get(session, server.listing_url, params={**params, "start-after": keys[0] or ""})
    assert next(k.text for k in ET.fromstring(body).iter(f"{NS}Key")) == keys[1]
    status, body, _ = await _get(session, server.listing_url, params={**params, "continuation-token": "%%"})
    assert status == 400


async def test_listing_url_encoding_for_sdk_clients(server: FakeArchiveServer, session: aiohttp.ClientSession) -> None:
    params = {"prefix": "data/futures/um/daily/klines/币", "encoding-type": "url"}
    _, body, _ = await _get(session, server.listing_url, params=params)
    root = ET.fromstring(body)
    assert root.findtext(f"{NS}EncodingType") == "url"
    assert (root.findtext(f"{NS}Contents/{NS}Key") or "").startswith("data/futures/um/daily/klines/%E5%B8%81")


async def test_listing_shows_new_files_after_refresh_and_replacements_at_once(
    tmp_path: Path, session: aiohttp.ClientSession, tree_files: list[ArchiveFile]
) -> None:
    build_archive(tmp_path, tree_files[:2], max_rows=5)
    async with FakeArchiveServer(tmp_path) as server:
        prefix = "data/futures/um/daily/klines/BNBUSDT/1h/"
        before, _, _ = await _list_all(session, server.listing_url, prefix)
        assert len(before) == 4
        new = ArchiveFile(Market.FUTURES_UM, DataType.KLINES, "BNBUSDT", Period.DAILY, dt.date(2026, 5, 9), Interval.H1)
        build_archive(tmp_path, [new], max_rows=5)
        assert (await _get(session, new.url(server.base_url)))[0] == 200  # files are read from disk
        assert len((await _list_all(session, server.listing_url, prefix))[0]) == 4  # the key index is cached
        server.refresh()
        assert len((await _list_all(session, server.listing_url, prefix))[0]) == 6

        old_file = tree_files[0]
        _, old_body, old_headers = await _get(session, old_file.url(server.base_url))
        digest = replace_file(tmp_path, old_file, seed=5)
        _, body, headers = await _get(session, old_file.url(server.base_url))
        assert body != old_body
        assert hashlib.sha256(body).hexdigest() == digest
        assert headers["ETag"] != old_headers["ETag"]
        listed = {o.key: o for o in (await _list_all(session, server.listing_url, prefix))[0]}
        assert f'"{listed[old_file.key].etag}"' == headers["ETag"]


# ------------------------------------------------------------------------------------------------ faults


async def test_error_rate_answers_500_or_503_for_files_and_listings(
    server: FakeArchiveServer, session: aiohttp.ClientSession
) -> None:
    server.faults.error_rate = 1.0
    statuses = {(await _get(session, FILE.url(server.base_url)))[0] for _ in range(8)}
    assert statuses <= {500, 503}
    assert statuses
    assert (await _get(session, server.listing_url, params={"prefix": "data/"}))[0] in (500, 503)
    assert server.stats.faults["error"] == 9


async def test_rate_429_sends_retry_after(server: FakeArchiveServer, session: aiohttp.ClientSession) -> None:
    server.faults = Faults(rate_429=1.0, retry_after=7)
    status, _, headers = await _get(session, FILE.checksum_url(server.base_url))
    assert status == 429
    assert headers["Retry-After"] == "7"


async def test_max_in_flight_sheds_what_comes_beyond_with_a_429(
    server: FakeArchiveServer, session: aiohttp.ClientSession
) -> None:
    """A server shedding load: 3 requests taken at once, the rest of 8 sent together answered 429 with Retry-After
    (after the same latency), counted as shed; one at a time, nothing is shed."""
    server.faults = Faults(latency=0.3, max_in_flight=3, retry_after=2)
    answers = await asyncio.gather(*(_get(session, FILE.url(server.base_url)) for _ in range(8)))
    statuses = sorted(status for status, _, _ in answers)
    assert statuses == [200] * 3 + [429] * 5
    assert {headers["Retry-After"] for status, _, headers in answers if status == 429} == {"2"}
    assert server.stats.faults["shed"] == 5
    for _ in range(4):
        assert (await _get(session, FILE.url(server.base_url)))[0] == 200
    assert server.stats.faults["shed"] == 5


async def test_reset_raises_a_client_error(server: FakeArchiveServer, session: aiohttp.ClientSession) -> None:
    server.faults.reset_rate = 1.0
    with pytest.raises(aiohttp.ClientError):
        await _get(session, FILE.url(server.base_url))
    assert server.stats.faults["reset"] >= 1
    assert not server.stats.by_status  # a reset sends no status at all


async def test_truncated_body_is_shorter_than_content_length(
    server: FakeArchiveServer, session: aiohttp.ClientSession
) -> None:
    server.faults.truncate_rate = 1.0
    received: list[bytes] = []

    async def read_all(response: aiohttp.ClientResponse) -> None:
        async for chunk in response.content.iter_any():
            received.append(chunk)

    async with session.get(FILE.url(server.base_url)) as response:
        assert response.status == 200
        expected = int(response.headers["Content-Length"])
        with pytest.raises(aiohttp.ClientPayloadError):
            await read_all(response)
    assert sum(map(len, received)) < expected


async def test_corrupt_body_keeps_its_length_but_not_its_digest(
    server: FakeArchiveServer, session: aiohttp.ClientSession, tree: Path
) -> None:
    good = _disk(tree, FILE.key)
    server.faults.corrupt_rate = 1.0
    _, body, headers = await _get(session, FILE.url(server.base_url))
    assert len(body) == len(good) == int(headers["Content-Length"])
    assert hashlib.sha256(body).digest() != hashlib.sha256(good).digest()

    server.faults = Faults(corrupt_keys={FILE})  # ArchiveFile objects are taken as their keys
    assert (await _get(session, FILE.url(server.base_url)))[1] != good
    assert (await _get(session, NON_ASCII.url(server.base_url)))[1] == _disk(tree, NON_ASCII.key)


async def test_missing_keys_are_404_and_left_out_of_listings(
    server: FakeArchiveServer, session: aiohttp.ClientSession
) -> None:
    server.faults.missing_keys = {FILE.key}
    assert (await _get(session, FILE.url(server.base_url)))[0] == 404
    assert (await _get(session, FILE.checksum_url(server.base_url)))[0] == 404  # its sidecar goes with it
    objects, _, _ = await _list_all(session, server.listing_url, "data/futures/um/daily/klines/BTCUSDT/")
    assert FILE.key not in {o.key for o in objects}
    assert len(objects) == 4


async def test_fail_first_fails_each_keys_first_gets(server: FakeArchiveServer, session: aiohttp.ClientSession) -> None:
    server.faults.fail_first = 2
    url = FILE.url(server.base_url)
    assert [(await _get(session, url))[0] for _ in range(3)] == [503, 503, 200]
    async with session.head(NON_ASCII.url(server.base_url)) as response:
        assert response.status == 200  # HEADs are not counted
    assert (await _get(session, NON_ASCII.url(server.base_url)))[0] == 503
    server.reset_attempts()
    assert (await _get(session, url))[0] == 503


async def test_stalled_key_trips_a_client_timeout_then_completes(
    server: FakeArchiveServer, session: aiohttp.ClientSession, tree: Path
) -> None:
    server.faults = Faults(stall_keys={FILE.key}, stall_seconds=0.4)
    with pytest.raises(asyncio.TimeoutError):
        await _get(session, FILE.url(server.base_url), timeout=aiohttp.ClientTimeout(sock_read=0.1))
    started = time.monotonic()
    _, body, _ = await _get(session, FILE.url(server.base_url))
    assert time.monotonic() - started >= 0.35
    assert body == _disk(tree, FILE.key)


async def test_latency_delays_every_request(server: FakeArchiveServer, session: aiohttp.ClientSession) -> None:
    server.faults.latency = 0.15
    started = time.monotonic()
    await _get(session, server.listing_url, params={"prefix": "data/spot/"})
    await _get(session, FILE.url(server.base_url))
    assert time.monotonic() - started >= 0.3


async def test_listings_ignore_file_faults(server: FakeArchiveServer, session: aiohttp.ClientSession) -> None:
    server.faults = Faults(rate_429=1.0, reset_rate=1.0, truncate_rate=1.0, corrupt_rate=1.0, fail_first=5)
    objects, _, _ = await _list_all(session, server.listing_url, "data/spot/")
    assert len(objects) == 4


async def test_fault_draws_are_reproducible(
    tree: Path, session: aiohttp.ClientSession, tree_files: list[ArchiveFile]
) -> None:
    runs = []
    for _ in range(2):
        async with FakeArchiveServer(tree, error_rate=0.5, seed=3) as server:
            runs.append([(await _get(session, f.url(server.base_url)))[0] for f in tree_files for _ in range(2)])
    assert runs[0] == runs[1]
    assert {200, 500, 503} & set(runs[0]) >= {200}
    assert set(runs[0]) - {200}


def test_fault_knobs_are_validated(tree: Path) -> None:
    with pytest.raises(ValueError, match="error_rate"):
        Faults(error_rate=1.5)
    with pytest.raises(TypeError):
        FakeArchiveServer(tree, no_such_knob=1)
    with pytest.raises(ValueError, match="page_size"):
        FakeArchiveServer(tree, page_size=1001)


# ------------------------------------------------------------------------------------------------ stats


async def test_stats_count_requests_kinds_keys_and_bytes(
    server: FakeArchiveServer, session: aiohttp.ClientSession
) -> None:
    server.stats.reset()
    _, zip_body, _ = await _get(session, FILE.url(server.base_url))
    _, sidecar, _ = await _get(session, FILE.checksum_url(server.base_url))
    _, listing, _ = await _get(session, server.listing_url, params={"prefix": "data/spot/"})
    async with session.head(FILE.url(server.base_url)):
        pass
    stats = server.stats
    assert stats.requests == 4
    assert stats.by_method == {"GET": 3, "HEAD": 1}
    assert (stats.zip_requests, stats.checksum_requests, stats.listing_requests) == (2, 1, 1)
    assert stats.by_key[FILE.key] == 2
    assert stats.by_key[FILE.checksum_key] == 1
    assert stats.by_status == {200: 4}
    assert stats.bytes_sent == len(zip_body) + len(sidecar) + len(listing)
    stats.reset()
    assert stats.requests == 0
    assert not stats.by_key
    assert stats.bytes_sent == 0


@pytest.mark.parametrize("limit", [1, 4])
async def test_stats_see_no_more_connections_than_the_client_opens(
    server: FakeArchiveServer, limit: int, tree_files: list[ArchiveFile]
) -> None:
    server.faults.latency = 0.02
    server.stats.reset()
    files = tree_files
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=limit)) as client:
        await asyncio.gather(*(_get(client, f.url(server.base_url)) for f in files))
    assert server.stats.max_connections == limit
    assert server.stats.max_in_flight == limit
    assert server.stats.connections_total == limit
    await asyncio.sleep(0.05)
    assert server.stats.connections == 0
