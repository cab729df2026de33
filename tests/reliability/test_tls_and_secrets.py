"""HTTPS verifies certificates by default; credentials and signed URLs never reach logs, reports or exceptions."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import subprocess
import sys
import textwrap
import traceback
from pathlib import Path

import pytest

from binance_archive import Archive, Selection
from binance_archive.errors import BinanceArchiveError, TransportError
from binance_archive.events import Event
from binance_archive.report import Outcome

from ..support.tls import make_certificate, tls_front
from .scenario import TODAY, build
from .support import QUICK_RETRY, RecordingProxy, ServerThread, assert_mirror_trustworthy, backends

SELECTION = Selection(
    markets="spot", data_types="klines", symbols="BTCUSDT", intervals="1h", start="2024-01-01", end="2024-01-04",
    periods="daily",
)  # fmt: skip


@pytest.mark.parametrize("client", ["native", "aiohttp", "pyreqwest"])
async def test_https_refuses_a_self_signed_certificate_by_default_and_accepts_it_when_told(
    client: str, tmp_path: Path
) -> None:
    upstream = tmp_path / "upstream"
    files = build(upstream, SELECTION)
    cert, key, _ = make_certificate(tmp_path, host="127.0.0.1")
    async with backends("http", "local", upstream, tmp_path) as cell:
        assert cell.server is not None
        async with tls_front(cell.server.port, cert, key) as port:
            url = f"https://127.0.0.1:{port}"
            strict = Archive(
                tmp_path / "strict", base_url=url, listing_url=url, retry=QUICK_RETRY, entry_points=False,
                transport_options={"client": client},
            )  # fmt: skip
            report = await strict.download(SELECTION, today=TODAY)
            assert report.failed == len(files) and not (tmp_path / "strict").exists()
            for failure in report.failures:
                assert "TLS failed" in (failure.error or "") and "certificate" in (failure.error or "")
                assert failure.attempts == 1, "a certificate that fails verification is not worth retrying"
            assert cell.server.stats.requests == 0, "nothing may be sent over an unverified connection"
            with pytest.raises(TransportError, match=r"TLS failed.*certificate"):
                await strict.symbols("spot", "klines")

            trusting = Archive(
                tmp_path / "trusting", base_url=url, listing_url=url,
                transport_options={"verify_ssl": False, "client": client}, entry_points=False,
            )  # fmt: skip
            report = await trusting.download(SELECTION, today=TODAY)
            assert report.ok and report.downloaded == len(files)
    await assert_mirror_trustworthy(Archive(tmp_path / "trusting", entry_points=False), upstream)


CA_CHECK = textwrap.dedent(
    """
    import asyncio, json, sys
    from binance_archive.transports.http import HttpTransport
    async def fetch(url):
        async with HttpTransport(base_url=url, client=sys.argv[1]) as transport:
            try:
                await transport.get_bytes(sys.argv[2], max_size=4096)
                return "ok"
            except Exception as exc:
                return f"{type(exc).__name__}: {exc}"
    print(json.dumps([asyncio.run(fetch(url)) for url in sys.argv[3:]]), flush=True)
    import os; os._exit(0)  # past the answer: see test_tls_ca_bundle.py on pyreqwest's rare abort at exit
    """
)


@pytest.mark.parametrize("client", ["native", "aiohttp", "pyreqwest"])
async def test_verification_is_real_a_trusted_ca_is_accepted_and_a_wrong_host_refused(
    client: str, tmp_path: Path
) -> None:
    """The positive control: with its CA trusted (SSL_CERT_FILE), a certificate for 127.0.0.1 passes, and one
    for another host name, signed by the same CA, is refused for its name."""
    upstream = tmp_path / "upstream"
    files = build(upstream, SELECTION)
    ca_cert, _, ca = make_certificate(tmp_path, host="Reliability Test CA")
    good_cert, good_key, _ = make_certificate(tmp_path, host="127.0.0.1", ca=ca)  # type: ignore[arg-type]
    wrong_cert, wrong_key, _ = make_certificate(tmp_path, host="archive.example", ca=ca)  # type: ignore[arg-type]
    async with backends("http", "local", upstream, tmp_path) as cell:
        assert cell.server is not None
        async with (
            tls_front(cell.server.port, good_cert, good_key) as good,
            tls_front(cell.server.port, wrong_cert, wrong_key) as wrong,
        ):
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-c", CA_CHECK, client, files[0].checksum_key, f"https://127.0.0.1:{good}",
                f"https://127.0.0.1:{wrong}", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                env={"SSL_CERT_FILE": str(ca_cert), "PATH": "/usr/bin:/bin"},
            )  # fmt: skip
            out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    good_result, wrong_result = json.loads(out)
    assert good_result == "ok"
    assert wrong_result.startswith("TransportError: TLS failed") and "127.0.0.1" in wrong_result
    named = ("match", "hostname", "not valid for name")  # aiohttp's (OpenSSL's) words, then reqwest's (rustls')
    assert any(word in wrong_result.lower() for word in named), wrong_result


BLOCKING_CHECK = textwrap.dedent(
    """
    import json, sys
    from binance_archive.transports.http.blocking import BlockingGet
    from binance_archive.transports.http import BodySettings
    settings = BodySettings(min_speed=0, read_timeout=5, connect_timeout=5, large_body_bytes=1, verify_ssl=True,
                            user_agent="test")
    def fetch(url):
        try:
            get = BlockingGet(url + "/" + sys.argv[1], settings)
            b"".join(get.chunks(settings.guard(url)))
            return "ok"
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"
    print(json.dumps([fetch(url) for url in sys.argv[2:]]))
    """
)


def _blocking_get(url: str, *, verify_ssl: bool = True, read_timeout: float = 5.0) -> bytes:
    """A large body's second GET (``transports/http/blocking.py``) of ``url``, as the engine's worker thread sends it."""
    from binance_archive.transports.http import BodySettings
    from binance_archive.transports.http.blocking import BlockingGet

    settings = BodySettings(
        min_speed=0, read_timeout=read_timeout, connect_timeout=5, large_body_bytes=1, verify_ssl=verify_ssl,
        user_agent="test",
    )  # fmt: skip
    return b"".join(BlockingGet(url, settings).chunks(settings.guard(url)))


async def test_the_blocking_get_of_a_large_body_verifies_certificates_as_the_clients_do(tmp_path: Path) -> None:
    upstream = tmp_path / "upstream"
    files = build(upstream, SELECTION)
    self_signed, self_key, _ = make_certificate(tmp_path, host="127.0.0.1")
    ca_cert, _, ca = make_certificate(tmp_path, host="Reliability Test CA")
    good_cert, good_key, _ = make_certificate(tmp_path, host="127.0.0.1", ca=ca)  # type: ignore[arg-type]
    wrong_cert, wrong_key, _ = make_certificate(tmp_path, host="archive.example", ca=ca)  # type: ignore[arg-type]
    key = files[0].key
    async with backends("http", "local", upstream, tmp_path) as cell:
        assert cell.server is not None
        async with (
            tls_front(cell.server.port, self_signed, self_key) as untrusted,
            tls_front(cell.server.port, good_cert, good_key) as good,
            tls_front(cell.server.port, wrong_cert, wrong_key) as wrong,
        ):
            url = f"https://127.0.0.1:{untrusted}/{key}"
            with pytest.raises(TransportError, match=r"TLS failed.*certificate"):
                await asyncio.to_thread(_blocking_get, url)
            assert cell.server.stats.requests == 0, "nothing may be sent over an unverified connection"
            assert await asyncio.to_thread(_blocking_get, url, verify_ssl=False) == (upstream / key).read_bytes()
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-c", BLOCKING_CHECK, key, f"https://127.0.0.1:{good}", f"https://127.0.0.1:{wrong}",
                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                env={"SSL_CERT_FILE": str(ca_cert), "PATH": "/usr/bin:/bin"},
            )  # fmt: skip
            out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    good_result, wrong_result = json.loads(out)
    assert good_result == "ok", "a certificate signed by the CA of SSL_CERT_FILE is trusted"
    assert wrong_result.startswith("TransportError: TLS failed") and "127.0.0.1" in wrong_result
    assert any(word in wrong_result.lower() for word in ("match", "hostname")), wrong_result


SECRETS = ("alice-user", "pw-S3CR3T", "sig-T0P-SECRET", "kp-ID-42")


@pytest.mark.parametrize("client", ["native", "aiohttp", "pyreqwest"])
async def test_credentials_and_signatures_never_reach_logs_reports_or_exceptions(
    client: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    upstream = tmp_path / "upstream"
    files = build(upstream, SELECTION.with_(end="2024-01-20"))
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    events: list[Event] = []
    async with backends("http", "local", upstream, tmp_path, error_rate=0.2, reset_rate=0.05, seed=2) as cell:
        assert cell.server is not None
        cell.server.faults.missing_keys = {files[0].key, files[1].checksum_key}
        cell.server.faults.corrupt_keys = {files[2].key}
        cell.server.faults.stall_keys = {files[3].key}
        cell.server.faults.stall_seconds = 5
        async with RecordingProxy(cell.server.port) as proxy:
            signed = f"?Signature={SECRETS[2]}&Key-Pair-Id={SECRETS[3]}"
            base_url = proxy.url.replace("http://", f"http://{SECRETS[0]}:{SECRETS[1]}@") + "/" + signed
            listing_url = proxy.url.replace("http://", f"http://{SECRETS[0]}:{SECRETS[1]}@")
            listing_url += "/data.binance.vision" + signed
            archive = Archive(
                tmp_path / "mirror", base_url=base_url, listing_url=listing_url, progress=events.append,
                retry=QUICK_RETRY, transport_options={"read_timeout": 0.3, "client": client}, entry_points=False,
            )  # fmt: skip
            report = await archive.download(SELECTION.with_(end="2024-01-20"), today=TODAY)
            texts.append(report.to_json())
            # Discovery through the listing works with the signed listing URL...
            assert await archive.symbols("spot", "klines") == ["BTCUSDT"]
            # ...and its failures are exceptions whose messages and tracebacks must be clean too.
            cell.server.faults.error_rate = 1.0
            with pytest.raises(BinanceArchiveError) as caught:
                await archive.download(SELECTION.with_(symbols=(), end="2024-01-20"), today=TODAY)
            texts += [str(caught.value), repr(caught.value), "".join(traceback.format_exception(caught.value))]
            with pytest.raises(BinanceArchiveError) as invalid:
                Archive(tmp_path / "m2", base_url=base_url.replace("http://", "ftp://"), entry_points=False)
            texts += [str(invalid.value), "".join(traceback.format_exception(invalid.value))]
        sent = bytes(proxy.sent)
    # The run did meet every kind of failure, so its messages were exercised.
    outcomes = {o.outcome for o in report.outcomes}
    assert {Outcome.DOWNLOADED, Outcome.MISSING, Outcome.FAILED} <= outcomes, report.outcomes
    assert any("timed out" in (o.error or "") for o in report.failures)
    assert any("CHECKSUM" in (o.error or "") for o in report.failures)
    # The secrets were used on the wire: sent as Basic auth and as the query of every request...
    assert f"Signature={SECRETS[2]}".encode() in sent and b"Authorization: Basic " in sent.replace(
        b"authorization", b"Authorization"
    )
    assert all(SECRETS[2].encode() in line for line in proxy.request_lines)
    # ...and appear nowhere else.
    texts += [r.getMessage() for r in caplog.records]
    texts += [r.exc_text or "" for r in caplog.records]
    texts += [e.error or "" for e in events]
    assert caplog.records and any("retrying" in r.getMessage() for r in caplog.records)
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} leaked into: {text[:300]}"


async def test_the_blocking_get_of_a_large_body_sends_credentials_and_keeps_them_secret(tmp_path: Path) -> None:
    upstream = tmp_path / "upstream"
    files = build(upstream, SELECTION)
    async with backends("http", "local", upstream, tmp_path) as cell:
        assert cell.server is not None
        cell.server.faults.missing_keys = {files[1].key}
        cell.server.faults.stall_keys = {files[2].key}
        cell.server.faults.stall_seconds = 3
        async with RecordingProxy(cell.server.port) as proxy:
            base = proxy.url.replace("http://", f"http://{SECRETS[0]}:{SECRETS[1]}@")
            signed = f"?Signature={SECRETS[2]}&Key-Pair-Id={SECRETS[3]}"
            body = await asyncio.to_thread(_blocking_get, f"{base}/{files[0].key}{signed}")
            failures = []
            for file in files[1:3]:
                with pytest.raises(BinanceArchiveError) as caught:
                    await asyncio.to_thread(_blocking_get, f"{base}/{file.key}{signed}", read_timeout=0.3)
                failures.append(caught.value)
        sent = bytes(proxy.sent)
    assert body == (upstream / files[0].key).read_bytes()
    # Sent on the wire: Basic auth and the signed query string...
    pair = base64.b64encode(f"{SECRETS[0]}:{SECRETS[1]}".encode())
    assert b"Authorization: Basic " + pair in sent and all(SECRETS[2].encode() in line for line in proxy.request_lines)
    # ...and in no message: a missing file, a stalled body.
    assert "not found" in str(failures[0]) and "timed out" in str(failures[1])
    for failure in failures:
        text = str(failure) + repr(failure) + "".join(traceback.format_exception(failure))
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} leaked into: {text[:300]}"


def test_the_cli_keeps_secrets_out_of_its_output(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import io

    from binance_archive.cli import main

    upstream = tmp_path / "upstream"
    build(upstream, SELECTION)
    caplog.set_level(logging.DEBUG)
    with ServerThread(upstream, error_rate=0.3, seed=1) as server:
        server.faults.missing_keys = {"data/spot/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2024-01-02.zip.CHECKSUM"}
        url = server.base_url.replace("http://", f"http://{SECRETS[0]}:{SECRETS[1]}@") + f"/?sig={SECRETS[2]}"
        out, err = io.StringIO(), io.StringIO()
        saved, sys.stderr = sys.stderr, err
        try:
            statuses = [
                main(["-vv", "download", "--market", "spot", "--data-type", "klines", "--symbol", "BTCUSDT",
                      "--interval", "1h", "--start", "2024-01-01", "--end", "2024-01-04", "--period", "daily",
                      "--today", TODAY.isoformat(), "--base-url", url, "--to", str(tmp_path / "m"), *extra], out=out)
                for extra in ([], ["--json"])
            ]  # fmt: skip
            statuses.append(main(["download", "--market", "spot", "--data-type", "klines", "--interval", "1h",
                                  "--today", TODAY.isoformat(), "--base-url", url, "--listing-url", "ftp://" + url[7:],
                                  "--to", str(tmp_path / "m")], out=out))  # fmt: skip
        finally:
            sys.stderr = saved
    assert statuses[0] == statuses[1] == 1 and statuses[2] == 2  # the sidecar-less file fails; the bad URL is refused
    everything = out.getvalue() + err.getvalue() + "".join(r.getMessage() for r in caplog.records)
    assert "failed" in everything and "CHECKSUM" in everything
    for secret in SECRETS[:3]:
        assert secret not in everything


@pytest.mark.parametrize(
    ("transport", "base_url"),
    [
        ("http", f"ftp://{SECRETS[0]}:{SECRETS[1]}@host/x?sig={SECRETS[2]}"),
        ("http", f"http://{SECRETS[0]}:{SECRETS[1]}@host:port/x?sig={SECRETS[2]}"),
        ("mirror", f"file://{SECRETS[0]}:{SECRETS[1]}@host/x"),
        ("mirror", f"file://{SECRETS[0]}:{SECRETS[1]}@localhost/x?sig={SECRETS[2]}"),
        ("s5cmd", f"ftp://{SECRETS[0]}:{SECRETS[1]}@host/x"),
        ("s5cmd", f"http://{SECRETS[0]}:{SECRETS[1]}@host:port/x?sig={SECRETS[2]}"),
        ("s5cmd", f"http://{SECRETS[0]}:{SECRETS[1]}@host:9000/bucket/x?sig={SECRETS[2]}"),
    ],
)  # fmt: skip
def test_a_refused_base_url_is_named_without_its_credentials(transport: str, base_url: str) -> None:
    if transport == "s5cmd":
        from .support import s5cmd_or_skip

        s5cmd_or_skip()
    with pytest.raises(BinanceArchiveError) as caught:
        Archive("unused", transport=transport, base_url=base_url, entry_points=False)
    text = str(caught.value) + "".join(traceback.format_exception(caught.value))
    assert "host" in str(caught.value)
    for secret in SECRETS:
        assert secret not in text


@pytest.mark.parametrize(
    "url",
    [
        f"s3://{SECRETS[0]}:{SECRETS[1]}@bucket/x",
        f"s3://{SECRETS[0]}:{SECRETS[1]}@bucket/../x?sig={SECRETS[2]}",
        f"s3://bucket/a//b?sig={SECRETS[2]}",
        f"s4://{SECRETS[0]}:{SECRETS[1]}@bucket/x",
    ],
)
def test_a_refused_storage_url_is_named_without_its_credentials(url: str) -> None:
    pytest.importorskip("obstore")
    from binance_archive.storages.s3 import S3Storage

    with pytest.raises(BinanceArchiveError) as caught:
        S3Storage(url)
    text = str(caught.value) + "".join(traceback.format_exception(caught.value))
    assert "bucket" in str(caught.value)
    for secret in SECRETS:
        assert secret not in text


@pytest.mark.parametrize("base_url", ["?", "?sig=1", "ftp://host/x?sig=1"])
def test_a_refused_base_url_with_a_query_says_one_was_there(base_url: str) -> None:
    # The query is left out of the message (it may hold a signature); a URL of nothing but a query was then shown
    # as '' (found by the hostile-input test). It is marked instead.
    with pytest.raises(BinanceArchiveError) as caught:
        Archive("unused", base_url=base_url, entry_points=False)
    assert f"'{base_url.partition('?')[0]}?…'" in str(caught.value)
    assert "sig=1" not in str(caught.value)
