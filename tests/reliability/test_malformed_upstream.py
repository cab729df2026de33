"""A listing or sidecar that is malformed, huge or lying is rejected, with bounded memory.

A small aiohttp server on loopback plays the hostile archive: each test says what it answers for the listing,
for sidecars and for zips (real responses on a real socket, not mocks).
"""

from __future__ import annotations

import asyncio
import hashlib
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from aiohttp import web

from binance_archive import Archive, Selection
from binance_archive.core import ArchiveFile, plan
from binance_archive.errors import TransportError, VerificationError
from binance_archive.testing import make_csv, make_sidecar, make_zip
from binance_archive.transports.http import HttpTransport

from .scenario import TODAY
from .support import QUICK_RETRY, temp_files

NS = "http://s3.amazonaws.com/doc/2006-03-01/"
SELECTION = Selection(
    markets="spot", data_types="klines", symbols="BTCUSDT", intervals="1h", start="2024-01-01", end="2024-01-03",
    periods="daily",
)  # fmt: skip
FILES = list(plan(SELECTION, today=TODAY))
LIMIT = 48 * 1024 * 1024  # Python-level bytes a refused 16 MB listing or endless body may cost at its peak
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def real_zip(file: ArchiveFile) -> bytes:
    return make_zip(file, make_csv(file, max_rows=3))


def listing(prefixes: list[str] = (), contents: list[tuple[str, int, str]] = (), *, truncated: bool = False,  # type: ignore[assignment]
            next_marker: str | None = None) -> bytes:  # fmt: skip
    parts = [f'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="{NS}"><Name>b</Name>']
    parts.append(f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>")
    if next_marker is not None:
        parts.append(f"<NextMarker>{escape(next_marker)}</NextMarker>")
    for key, size, etag in contents:
        parts.append(f"<Contents><Key>{escape(key)}</Key><Size>{size}</Size><ETag>&quot;{etag}&quot;</ETag>"
                     "<LastModified>2024-01-02T02:50:00.000Z</LastModified></Contents>")  # fmt: skip
    parts += [f"<CommonPrefixes><Prefix>{escape(p)}</Prefix></CommonPrefixes>" for p in prefixes]
    parts.append("</ListBucketResult>")
    return "".join(parts).encode()


async def endless(request: web.Request, chunk: bytes = b"<a>" * 21845) -> web.StreamResponse:
    """A chunked body that never ends (the client must stop reading)."""
    response = web.StreamResponse(headers={"Content-Type": "application/xml"})
    await response.prepare(request)
    try:
        while True:
            await response.write(chunk)
    except (ConnectionError, RuntimeError):
        pass
    return response


async def claims(request: web.Request, length: int, body: bytes = b"") -> web.StreamResponse:
    """A response whose Content-Length claims ``length`` bytes, then sends ``body`` and hangs up."""
    response = web.StreamResponse()
    response.content_length = length
    await response.prepare(request)
    await response.write(body)
    if request.transport is not None:
        request.transport.close()
    return response


class Hostile:
    """The hostile archive: files served from ``files``; ``overrides`` (by key, or "LIST") answer instead."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.overrides: dict[str, Handler] = {}
        self.requests: list[str] = []
        self.runner: web.AppRunner | None = None
        self.port = 0

    def add(self, file: ArchiveFile, data: bytes | None = None) -> None:
        data = data if data is not None else real_zip(file)
        self.files[file.key] = data
        self.files[file.checksum_key] = make_sidecar(file, data)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path in ("/bucket", "/bucket/"):
            self.requests.append("LIST " + request.query_string)
            if "LIST" in self.overrides:
                return await self.overrides["LIST"](request)
            return web.Response(body=self.default_listing(request), content_type="application/xml")
        key = path.lstrip("/")
        self.requests.append(key)
        if key in self.overrides:
            return await self.overrides[key](request)
        if key not in self.files:
            return web.Response(status=404)
        return web.Response(body=self.files[key])

    def default_listing(self, request: web.Request) -> bytes:
        prefix = request.query.get("prefix", "")
        keys = sorted(k for k in self.files if k.startswith(prefix))
        if request.query.get("delimiter") == "/":
            folders = sorted(
                {prefix + k[len(prefix) :].split("/", 1)[0] + "/" for k in keys if "/" in k[len(prefix) :]}
            )
            return listing(folders, [(k, len(self.files[k]), hashlib.md5(self.files[k]).hexdigest())
                                     for k in keys if "/" not in k[len(prefix):]])  # fmt: skip
        return listing([], [(k, len(self.files[k]), hashlib.md5(self.files[k]).hexdigest()) for k in keys])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def archive(self, mirror: Path, **kwargs: object) -> Archive:
        return Archive(mirror, base_url=self.url, listing_url=self.url + "/bucket", retry=QUICK_RETRY,
                       entry_points=False, **kwargs)  # type: ignore[arg-type]  # fmt: skip


@asynccontextmanager
async def hostile() -> AsyncIterator[Hostile]:
    server = Hostile()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", server.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.runner = runner
    server.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield server
    finally:
        await runner.cleanup()


@asynccontextmanager
async def peak_python_memory() -> AsyncIterator[list[int]]:
    """The peak of Python's allocations inside the block (tracemalloc), appended to the yielded list."""
    tracemalloc.start()
    result: list[int] = []
    try:
        yield result
    finally:
        result.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()


# -- listings -----------------------------------------------------------------------------------------------------


NOT_A_NUMBER = listing(contents=[("data/spot/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2024-01-01.zip", 1, "x")]).replace(
    b"<Size>1</Size>", b"<Size>lots</Size>"
)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"this is not XML", "not valid XML"),
        (b"<Error><Code>AccessDenied</Code></Error>", "expected a ListBucketResult"),
        (b"\xff\xfe<\x00", "not valid XML"),
        (b"", "not valid XML"),
        (NOT_A_NUMBER, "not a number"),
    ],
)
async def test_a_malformed_listing_is_a_clear_transport_error(tmp_path: Path, body: bytes, message: str) -> None:
    async with hostile() as server:
        server.overrides["LIST"] = lambda request: asyncio.sleep(0, web.Response(body=body))  # type: ignore[arg-type,return-value]
        archive = server.archive(tmp_path / "mirror")
        with pytest.raises(TransportError, match=message):
            await archive.symbols("spot", "klines")
        with pytest.raises(TransportError, match=message):
            await archive.download(SELECTION.with_(symbols=()), today=TODAY)
    assert not (tmp_path / "mirror").exists()


async def test_a_listing_that_claims_to_be_huge_is_refused_unread(tmp_path: Path) -> None:
    async with hostile() as server:
        server.overrides["LIST"] = lambda request: claims(request, 10**12, b"<ListBucketResult>")
        with pytest.raises(VerificationError, match="at most 16777216"):
            await server.archive(tmp_path / "m").symbols("spot", "klines")


async def test_an_endless_listing_is_cut_off_with_bounded_memory(tmp_path: Path) -> None:
    async with hostile() as server:
        server.overrides["LIST"] = endless
        async with peak_python_memory() as peak:
            with pytest.raises(VerificationError, match="larger than the 16777216 bytes"):
                await server.archive(tmp_path / "m").symbols("spot", "klines")
    assert peak[0] < LIMIT, f"peak {peak[0] / 1e6:.0f} MB"


async def test_an_xml_bomb_in_the_listing_is_refused_with_bounded_memory(tmp_path: Path) -> None:
    entities = ['<!ENTITY a0 "' + "x" * 1000 + '">']
    entities += [f'<!ENTITY a{i} "{f"&a{i - 1};" * 10}">' for i in range(1, 9)]
    bomb = f'<?xml version="1.0"?><!DOCTYPE b [{"".join(entities)}]><ListBucketResult xmlns="{NS}">'
    bomb += "<CommonPrefixes><Prefix>&a8;</Prefix></CommonPrefixes></ListBucketResult>"
    async with hostile() as server:
        server.overrides["LIST"] = lambda request: asyncio.sleep(0, web.Response(body=bomb.encode()))  # type: ignore[arg-type,return-value]
        async with peak_python_memory() as peak:
            with pytest.raises(TransportError, match="not valid XML"):
                await server.archive(tmp_path / "m").symbols("spot", "klines")
    assert peak[0] < LIMIT, f"peak {peak[0] / 1e6:.0f} MB (the bomb expands to 100 GB)"


async def test_a_listing_whose_pages_go_round_in_circles_is_stopped(tmp_path: Path) -> None:
    pages = {"": "data/spot/daily/klines/B/", "data/spot/daily/klines/B/": "data/spot/daily/klines/A/"}

    async def cycle(request: web.Request) -> web.StreamResponse:
        marker = request.query.get("marker", "")
        following = pages.get(marker, "data/spot/daily/klines/B/")
        return web.Response(body=listing([following], truncated=True, next_marker=following))

    async with hostile() as server:
        server.overrides["LIST"] = cycle
        async with asyncio.timeout(10):
            with pytest.raises(TransportError, match="went back"):
                await server.archive(tmp_path / "m").symbols("spot", "klines")
        assert len(server.requests) <= 3, server.requests


async def test_hostile_folder_names_in_the_listing_are_skipped_not_followed(tmp_path: Path) -> None:
    good = FILES
    # (Control characters cannot appear in XML 1.0 at all: such a page is refused whole, as malformed.)
    evil = ["../../../escape", "/absolute", "..", "BTC\u202eUSDT", "btcusdt", "A B", ".hidden", "x" * 100, "a\\b"]
    async with hostile() as server:
        for file in good:
            server.add(file)
        prefix = "data/spot/daily/klines/"

        async def folders(request: web.Request) -> web.StreamResponse:
            if request.query.get("prefix") == prefix:
                names = [prefix + s + "/" for s in [*evil, "BTCUSDT"]]
                return web.Response(body=listing(names))
            return web.Response(body=server.default_listing(request))

        server.overrides["LIST"] = folders
        mirror = tmp_path / "sandbox" / "mirror"
        report = await server.archive(mirror).download(SELECTION.with_(symbols=()), today=TODAY)
    assert report.ok and report.downloaded == len(good)
    assert sorted(p.name for p in (mirror / "data/spot/daily/klines").iterdir()) == ["BTCUSDT"]
    assert sorted(p.name for p in (tmp_path / "sandbox").iterdir()) == ["mirror"]
    assert not (tmp_path / "escape").exists() and not Path("/absolute").exists()


# -- sidecars -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sidecar", "reason"),
    [
        (b"", "sidecar does not start with a 64-digit SHA-256"),
        (b"   \n", "sidecar does not start with a 64-digit SHA-256"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        (b"<html>Access denied</html>", "does not start with a 64-digit SHA-256"),
        (b"z" * 64 + b"  BTCUSDT-1h-2024-01-01.zip", "does not start with a 64-digit SHA-256"),
        (b"0" * 64 + b"  ETHUSDT-1h-2024-01-01.zip", "names 'ETHUSDT-1h-2024-01-01.zip'"),
        (b"0" * 64 + b"  BTCUSDT-1h-2024-01-01.zip", "does not match the sidecar"),
        (b"a" * 5000, "at most 4096"),
    ],
)
async def test_a_malformed_or_lying_sidecar_fails_its_file_and_stores_nothing(
    tmp_path: Path, sidecar: bytes, reason: str
) -> None:
    victim = FILES[0]
    async with hostile() as server:
        for file in FILES:
            server.add(file)
        server.files[victim.checksum_key] = sidecar
        report = await server.archive(tmp_path / "mirror").download(SELECTION, today=TODAY)
    (failure,) = report.failures
    assert failure.key == victim.key and reason in (failure.error or ""), failure.error
    assert report.downloaded == len(FILES) - 1
    assert not (tmp_path / "mirror" / victim.key).exists() and not temp_files(tmp_path / "mirror")


async def test_an_upper_case_sidecar_is_still_a_valid_one(tmp_path: Path) -> None:
    async with hostile() as server:
        for file in FILES:
            server.add(file)
        server.files[FILES[0].checksum_key] = server.files[FILES[0].checksum_key].upper().replace(b".ZIP", b".zip")
        server.files[FILES[0].checksum_key] = server.files[FILES[0].checksum_key].replace(b"BTCUSDT-1H", b"BTCUSDT-1h")
        report = await server.archive(tmp_path / "mirror").download(SELECTION, today=TODAY)
    assert report.ok and report.downloaded == len(FILES)


@pytest.mark.parametrize("shape", ["claims huge", "endless"])
async def test_a_huge_sidecar_is_refused_with_bounded_memory(tmp_path: Path, shape: str) -> None:
    victim = FILES[0]
    async with hostile() as server:
        for file in FILES:
            server.add(file)
        if shape == "claims huge":
            server.overrides[victim.checksum_key] = lambda request: claims(request, 10**12, b"0" * 64)
        else:
            server.overrides[victim.checksum_key] = lambda request: endless(request, b"0" * 65536)
        async with peak_python_memory() as peak:
            report = await server.archive(tmp_path / "mirror").download(SELECTION, today=TODAY)
    (failure,) = report.failures
    assert failure.key == victim.key and "4096" in (failure.error or "")
    assert peak[0] < LIMIT
    assert not (tmp_path / "mirror" / victim.key).exists()


@pytest.mark.parametrize("client", ["native", "aiohttp", "pyreqwest"])
async def test_a_transport_refuses_a_huge_sidecar_before_reading_it(client: str, tmp_path: Path) -> None:
    async with hostile() as server:
        served: list[int] = []

        async def huge(request: web.Request) -> web.StreamResponse:
            response = web.StreamResponse()
            response.content_length = 10**9
            await response.prepare(request)
            try:
                for _ in range(10**9 // 65536):
                    await response.write(b"0" * 65536)
                    served.append(65536)
            except (ConnectionError, RuntimeError):
                pass
            return response

        server.overrides["x.CHECKSUM"] = huge
        async with HttpTransport(base_url=server.url, client=client) as transport:
            with pytest.raises(VerificationError, match="1000000000 bytes; at most 4096"):
                await transport.get_bytes("x.CHECKSUM", max_size=4096)
        await asyncio.sleep(0.05)
    assert sum(served) < 32 * 1024 * 1024, "the client went on reading a body it had refused"


# -- zips that lie about their size -------------------------------------------------------------------------------


@pytest.mark.parametrize("client", ["native", "aiohttp", "pyreqwest"])
@pytest.mark.parametrize("lie", ["longer than sent", "shorter than sent"])
async def test_a_zip_whose_length_lies_is_never_stored(tmp_path: Path, lie: str, client: str) -> None:
    victim = FILES[1]
    async with hostile() as server:
        for file in FILES:
            server.add(file)
        data = server.files[victim.key]
        if lie == "longer than sent":
            server.overrides[victim.key] = lambda request: claims(request, len(data) + 1000, data)
        else:
            server.overrides[victim.key] = lambda request: claims(request, len(data) - 10, data)
        archive = server.archive(tmp_path / "mirror", transport_options={"client": client})
        report = await archive.download(SELECTION, today=TODAY)
    (failure,) = report.failures
    assert failure.key == victim.key
    assert any(word in (failure.error or "") for word in ("truncated", "broke off", "does not match")), failure
    assert not (tmp_path / "mirror" / victim.key).exists() and not temp_files(tmp_path / "mirror")
    assert report.downloaded == len(FILES) - 1
