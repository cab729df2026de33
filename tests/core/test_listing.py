"""The S3 listing of the bucket: ListObjects v1 (and v2) XML pages, parsed without I/O."""

from __future__ import annotations

import datetime as dt

import pytest

from binance_archive.core import ListedObject, parse_listing
from binance_archive.errors import TransportError

NS = "http://s3.amazonaws.com/doc/2006-03-01/"

# v1 with delimiter=/: the folders of symbols under a prefix, as the bucket answers them.
SYMBOL_FOLDERS = f"""<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="{NS}">
  <Name>data.binance.vision</Name>
  <Prefix>data/futures/um/daily/klines/</Prefix>
  <Marker></Marker>
  <NextMarker>data/futures/um/daily/klines/ADAUSDT/</NextMarker>
  <MaxKeys>3</MaxKeys>
  <Delimiter>/</Delimiter>
  <IsTruncated>true</IsTruncated>
  <CommonPrefixes><Prefix>data/futures/um/daily/klines/1000BONKUSDT/</Prefix></CommonPrefixes>
  <CommonPrefixes><Prefix>data/futures/um/daily/klines/1INCHUSDT/</Prefix></CommonPrefixes>
  <CommonPrefixes><Prefix>data/futures/um/daily/klines/ADAUSDT/</Prefix></CommonPrefixes>
</ListBucketResult>
""".encode()

# v1 with delimiter=/ inside an interval folder: zips and sidecars, last page.
FILES = f"""<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="{NS}">
  <Name>data.binance.vision</Name>
  <Prefix>data/spot/daily/klines/BTCUSDT/1h/</Prefix>
  <Marker>data/spot/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2026-05-07.zip.CHECKSUM</Marker>
  <MaxKeys>1000</MaxKeys>
  <Delimiter>/</Delimiter>
  <IsTruncated>false</IsTruncated>
  <Contents>
    <Key>data/spot/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2026-05-08.zip</Key>
    <LastModified>2026-05-09T02:51:07.000Z</LastModified>
    <ETag>&quot;0f343b0931126a20f133d67c2b018a3b&quot;</ETag>
    <Size>1613</Size>
    <StorageClass>STANDARD</StorageClass>
  </Contents>
  <Contents>
    <Key>data/spot/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2026-05-08.zip.CHECKSUM</Key>
    <LastModified>2026-05-09T02:51:08.000Z</LastModified>
    <ETag>&quot;8a8b6a5d6e4e2d8a0c2f7d7e9b1f6c3d&quot;</ETag>
    <Size>92</Size>
    <StorageClass>STANDARD</StorageClass>
  </Contents>
  <Contents>
    <Key>data/futures/um/daily/trades/币安人生USDT/币安人生USDT-trades-2025-10-09.zip</Key>
    <LastModified>2025-10-10T08:30:00.000Z</LastModified>
    <ETag>&quot;d41d8cd98f00b204e9800998ecf8427e&quot;</ETag>
    <Size>0</Size>
    <StorageClass>STANDARD</StorageClass>
  </Contents>
</ListBucketResult>
""".encode()

# v1 without a delimiter: truncated, but no NextMarker; the next page starts after the last key.
NO_NEXT_MARKER = f"""<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="{NS}">
  <Name>data.binance.vision</Name>
  <Prefix>data/futures/um/monthly/fundingRate/</Prefix>
  <Marker></Marker>
  <MaxKeys>2</MaxKeys>
  <IsTruncated>true</IsTruncated>
  <Contents>
    <Key>data/futures/um/monthly/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2026-03.zip</Key>
    <LastModified>2026-04-02T07:00:00.000Z</LastModified><ETag>"aa"</ETag><Size>958</Size>
  </Contents>
  <Contents>
    <Key>data/futures/um/monthly/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2026-04.zip</Key>
    <LastModified>2026-05-02T07:00:00.000Z</LastModified><ETag>"bb"</ETag><Size>960</Size>
  </Contents>
</ListBucketResult>
""".encode()

V2 = f"""<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="{NS}">
  <Name>data.binance.vision</Name>
  <Prefix>data/option/daily/BVOLIndex/</Prefix>
  <KeyCount>2</KeyCount>
  <MaxKeys>2</MaxKeys>
  <Delimiter>/</Delimiter>
  <IsTruncated>true</IsTruncated>
  <ContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</ContinuationToken>
  <NextContinuationToken>1Rw+fbSzG3ohzB7PbP3NQWxD0N4yE0mQ6Sx1vAjCk0d8=</NextContinuationToken>
  <CommonPrefixes><Prefix>data/option/daily/BVOLIndex/BTCBVOLUSDT/</Prefix></CommonPrefixes>
  <CommonPrefixes><Prefix>data/option/daily/BVOLIndex/ETHBVOLUSDT/</Prefix></CommonPrefixes>
</ListBucketResult>
""".encode()


def test_common_prefixes_and_next_marker() -> None:
    page = parse_listing(SYMBOL_FOLDERS)
    assert page.prefixes == (
        "data/futures/um/daily/klines/1000BONKUSDT/",
        "data/futures/um/daily/klines/1INCHUSDT/",
        "data/futures/um/daily/klines/ADAUSDT/",
    )
    assert page.objects == ()
    assert page.is_truncated is True
    assert page.next_marker == "data/futures/um/daily/klines/ADAUSDT/"


def test_contents() -> None:
    page = parse_listing(FILES)
    assert page.prefixes == ()
    assert page.is_truncated is False
    assert page.next_marker is None
    assert [o.key for o in page.objects] == [
        "data/spot/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2026-05-08.zip",
        "data/spot/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2026-05-08.zip.CHECKSUM",
        "data/futures/um/daily/trades/币安人生USDT/币安人生USDT-trades-2025-10-09.zip",
    ]
    first = page.objects[0]
    assert first == ListedObject(
        key="data/spot/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2026-05-08.zip",
        size=1613,
        etag="0f343b0931126a20f133d67c2b018a3b",  # quotes stripped
        last_modified=dt.datetime(2026, 5, 9, 2, 51, 7, tzinfo=dt.UTC),
    )
    assert first.last_modified is not None
    assert first.last_modified.utcoffset() == dt.timedelta(0)
    assert page.objects[1].size == 92
    assert page.objects[2].size == 0


def test_truncated_page_without_next_marker_continues_after_the_last_key() -> None:
    page = parse_listing(NO_NEXT_MARKER)
    assert page.is_truncated
    assert page.next_marker == "data/futures/um/monthly/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2026-04.zip"
    assert [o.etag for o in page.objects] == ["aa", "bb"]


def test_truncated_page_of_prefixes_without_next_marker_continues_after_the_last_prefix() -> None:
    text = SYMBOL_FOLDERS.replace(b"<NextMarker>data/futures/um/daily/klines/ADAUSDT/</NextMarker>", b"")
    assert b"NextMarker" not in text
    assert parse_listing(text).next_marker == "data/futures/um/daily/klines/ADAUSDT/"


def test_a_next_marker_on_the_last_page_is_ignored() -> None:
    text = SYMBOL_FOLDERS.replace(b"<IsTruncated>true</IsTruncated>", b"<IsTruncated>false</IsTruncated>")
    page = parse_listing(text)
    assert not page.is_truncated
    assert page.next_marker is None


def test_v2_next_continuation_token() -> None:
    page = parse_listing(V2)
    assert page.is_truncated
    assert page.next_marker == "1Rw+fbSzG3ohzB7PbP3NQWxD0N4yE0mQ6Sx1vAjCk0d8="
    assert page.prefixes == ("data/option/daily/BVOLIndex/BTCBVOLUSDT/", "data/option/daily/BVOLIndex/ETHBVOLUSDT/")


def test_listing_without_namespace() -> None:
    text = FILES.replace(f' xmlns="{NS}"'.encode(), b"")
    assert b"xmlns" not in text
    page = parse_listing(text)
    assert len(page.objects) == 3
    assert page.objects[0].size == 1613


def test_empty_listing() -> None:
    page = parse_listing(f'<ListBucketResult xmlns="{NS}"><IsTruncated>false</IsTruncated></ListBucketResult>'.encode())
    assert (page.prefixes, page.objects, page.is_truncated, page.next_marker) == ((), (), False, None)


def test_unparsable_last_modified_is_none() -> None:
    text = FILES.replace(b"2026-05-09T02:51:07.000Z", b"yesterday")
    assert parse_listing(text).objects[0].last_modified is None


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"<ListBucketResult><Contents>", "not valid XML"),
        (b"not xml at all", "not valid XML"),
        (
            b'<?xml version="1.0"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>',
            "expected a ListBucketResult, got <Error>",
        ),
        (FILES.replace(b"<Size>1613</Size>", b"<Size>1.6 KB</Size>"), "size that is not a number"),
    ],
)
def test_what_is_not_a_listing_is_refused(content: bytes, why: str) -> None:
    with pytest.raises(TransportError) as info:
        parse_listing(content)
    assert why in str(info.value)


def test_a_paginator_marks_a_page_truncated_only_when_an_entry_follows() -> None:
    from binance_archive.core import ListedObject
    from binance_archive.core.listing import Paginator

    def entries(count: int) -> list[tuple[str, ListedObject | None]]:
        return [(f"k{i:02d}", ListedObject(f"k{i:02d}", i)) if i % 3 else (f"p{i:02d}/", None) for i in range(count)]

    for count in (0, 1, 2, 3, 4, 6, 7):
        pages = Paginator(3)
        cut = [page for entry in entries(count) if (page := pages.add(entry)) is not None]
        cut.append(pages.last())
        assert [p.is_truncated for p in cut] == [True] * (len(cut) - 1) + [False], count
        keys = [o.key for p in cut for o in p.objects] + [q for p in cut for q in p.prefixes]
        assert sorted(keys) == sorted(k for k, _ in entries(count))
        assert all(len(p.objects) + len(p.prefixes) == 3 for p in cut[:-1])
        # A truncated page's marker is its last entry: the next page starts after it.
        assert [p.next_marker for p in cut[:-1]] == [entries(count)[3 * i + 2][0] for i in range(len(cut) - 1)]
        assert cut[-1].next_marker is None
