"""The HTTP transport's ``ca_bundle`` option: a private CA's certificates trusted beside the default trust store, by
aiohttp, pyreqwest and the blocking GET of a large body alike; a wrong value refused before any request."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from binance_archive import Archive
from binance_archive.errors import ConfigurationError, TransportError

from ..support.tls import make_certificate, tls_front
from .scenario import TODAY, build
from .support import QUICK_RETRY, assert_mirror_trustworthy, backends
from .test_tls_and_secrets import SELECTION


def _bundle(path: Path, *certs: Path) -> Path:
    """A PEM bundle of ``certs``, in order, with text between them as distributions' bundles have."""
    path.write_text("".join(f"# {cert.stem}\n{cert.read_text()}\n" for cert in certs))
    return path


@pytest.mark.parametrize("client", ["native", "aiohttp", "pyreqwest"])
async def test_ca_bundle_trusts_a_private_ca_beside_the_default_store_and_still_checks_the_host(
    client: str, tmp_path: Path
) -> None:
    upstream = tmp_path / "upstream"
    files = build(upstream, SELECTION)
    other_ca_cert, _, _ = make_certificate(tmp_path, host="Another CA")
    ca_cert, _, ca = make_certificate(tmp_path, host="Bundle Test CA")
    good_cert, good_key, _ = make_certificate(tmp_path, host="127.0.0.1", ca=ca)  # type: ignore[arg-type]
    wrong_cert, wrong_key, _ = make_certificate(tmp_path, host="archive.example", ca=ca)  # type: ignore[arg-type]
    # The CA that signed the server's certificate comes second: every certificate of a bundle is trusted.
    bundle = _bundle(tmp_path / "bundle.pem", other_ca_cert, ca_cert)
    options = {"client": client}
    async with backends("http", "local", upstream, tmp_path) as cell:
        assert cell.server is not None
        async with (
            tls_front(cell.server.port, good_cert, good_key) as good,
            tls_front(cell.server.port, wrong_cert, wrong_key) as wrong,
        ):
            url = f"https://127.0.0.1:{good}"
            without = Archive(
                tmp_path / "without", base_url=url, listing_url=url, retry=QUICK_RETRY, entry_points=False,
                transport_options=options,
            )  # fmt: skip
            report = await without.download(SELECTION, today=TODAY)
            assert report.failed == len(files), "without the option the private CA is not trusted"
            assert cell.server.stats.requests == 0
            trusting = Archive(
                tmp_path / "trusting", base_url=url, listing_url=url, retry=QUICK_RETRY, entry_points=False,
                transport_options={**options, "ca_bundle": str(bundle)},
            )  # fmt: skip
            report = await trusting.download(SELECTION, today=TODAY)
            assert report.ok and report.downloaded == len(files), report.failures
            assert await trusting.symbols("spot", "klines") == ["BTCUSDT"]  # the listing trusts it too

            wrong_url = f"https://127.0.0.1:{wrong}"
            misnamed = Archive(
                tmp_path / "misnamed", base_url=wrong_url, listing_url=wrong_url, retry=QUICK_RETRY,
                entry_points=False, transport_options={**options, "ca_bundle": str(bundle)},
            )  # fmt: skip
            report = await misnamed.download(SELECTION, today=TODAY)
            assert report.failed == len(files), "a trusted CA's certificate for another host is still refused"
            assert all("TLS failed" in (f.error or "") and "ca_bundle" in (f.error or "") for f in report.failures)
    await assert_mirror_trustworthy(Archive(tmp_path / "trusting", entry_points=False), upstream)


def _blocking_get(url: str, ca_bundle: Path | None) -> str:
    """A large body's second GET (``transports/http/blocking.py``), with the settings the transport gives it."""
    from binance_archive.transports.http import BodySettings
    from binance_archive.transports.http.blocking import BlockingGet
    from binance_archive.transports.http.tls import load_ca_bundle

    settings = BodySettings(
        min_speed=0, read_timeout=5, connect_timeout=5, large_body_bytes=1, verify_ssl=True, user_agent="test",
        ca_pem=load_ca_bundle(ca_bundle, verify_ssl=True),
    )  # fmt: skip
    try:
        b"".join(BlockingGet(url, settings).chunks(settings.guard(url)))
        return "ok"
    except TransportError as exc:
        return str(exc)


async def test_the_blocking_get_of_a_large_body_trusts_the_ca_bundle_too(tmp_path: Path) -> None:
    upstream = tmp_path / "upstream"
    files = build(upstream, SELECTION)
    ca_cert, _, ca = make_certificate(tmp_path, host="Blocking Test CA")
    good_cert, good_key, _ = make_certificate(tmp_path, host="127.0.0.1", ca=ca)  # type: ignore[arg-type]
    wrong_cert, wrong_key, _ = make_certificate(tmp_path, host="archive.example", ca=ca)  # type: ignore[arg-type]
    bundle = _bundle(tmp_path / "bundle.pem", make_certificate(tmp_path, host="Another CA")[0], ca_cert)
    async with backends("http", "local", upstream, tmp_path) as cell:
        assert cell.server is not None
        async with (
            tls_front(cell.server.port, good_cert, good_key) as good,
            tls_front(cell.server.port, wrong_cert, wrong_key) as wrong,
        ):
            good_url, wrong_url = (f"https://127.0.0.1:{port}/{files[0].key}" for port in (good, wrong))
            untrusted = await asyncio.to_thread(_blocking_get, good_url, None)
            trusted = await asyncio.to_thread(_blocking_get, good_url, bundle)
            misnamed = await asyncio.to_thread(_blocking_get, wrong_url, bundle)
    assert untrusted.startswith("TLS failed") and "ca_bundle" in untrusted
    assert trusted == "ok"
    assert misnamed.startswith("TLS failed") and any(w in misnamed.lower() for w in ("match", "hostname")), misnamed


@pytest.mark.parametrize("client", ["native", "aiohttp", "pyreqwest"])
async def test_ca_bundle_adds_to_ssl_cert_file_rather_than_replacing_it(client: str, tmp_path: Path) -> None:
    """Both trusted at once: the CA of ``SSL_CERT_FILE`` (the default store) and that of the bundle, in a subprocess
    (the default store is read from the environment once per process)."""
    upstream = tmp_path / "upstream"
    files = build(upstream, SELECTION)
    env_ca_cert, _, env_ca = make_certificate(tmp_path, host="Environment CA")
    bundle_ca_cert, _, bundle_ca = make_certificate(tmp_path, host="Bundle CA")
    (tmp_path / "env").mkdir()  # the two leaves share a host name, and so a file name
    by_env, by_env_key, _ = make_certificate(tmp_path / "env", host="127.0.0.1", ca=env_ca)  # type: ignore[arg-type]
    by_bundle, by_bundle_key, _ = make_certificate(tmp_path, host="127.0.0.1", ca=bundle_ca)  # type: ignore[arg-type]
    script = (
        "import asyncio, json, sys\n"
        "from binance_archive.transports.http import HttpTransport\n"
        "async def fetch(url):\n"
        "    async with HttpTransport(base_url=url, client=sys.argv[1], ca_bundle=sys.argv[2]) as transport:\n"
        "        try:\n"
        "            await transport.get_bytes(sys.argv[3], max_size=4096)\n"
        "            return 'ok'\n"
        "        except Exception as exc:\n"
        "            return f'{type(exc).__name__}: {exc}'\n"
        "print(json.dumps([asyncio.run(fetch(url)) for url in sys.argv[4:]]), flush=True)\n"
        # pyreqwest 0.15 has aborted the interpreter at exit once in many runs on a loaded machine (a Rust thread
        # taking the GIL while Python finalizes: PyGILState_Release), after the answer is out. What this test
        # checks is the answer, so the script ends without finalizing.
        "import os; os._exit(0)\n"
    )
    async with backends("http", "local", upstream, tmp_path) as cell:
        assert cell.server is not None
        async with (
            tls_front(cell.server.port, by_env, by_env_key) as env_port,
            tls_front(cell.server.port, by_bundle, by_bundle_key) as bundle_port,
        ):
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-c", script, client, str(bundle_ca_cert), files[0].checksum_key,
                f"https://127.0.0.1:{env_port}", f"https://127.0.0.1:{bundle_port}",
                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                env={"SSL_CERT_FILE": str(env_ca_cert), "PATH": "/usr/bin:/bin",
                     "PYTHONPATH": os.environ.get("PYTHONPATH", "")},
            )  # fmt: skip
            out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    assert json.loads(out) == ["ok", "ok"]


async def test_the_cli_takes_ca_bundle_as_a_transport_option(tmp_path: Path) -> None:
    upstream = tmp_path / "upstream"
    files = build(upstream, SELECTION)
    ca_cert, _, ca = make_certificate(tmp_path, host="CLI Test CA")
    cert, key, _ = make_certificate(tmp_path, host="127.0.0.1", ca=ca)  # type: ignore[arg-type]
    async with backends("http", "local", upstream, tmp_path) as cell:
        assert cell.server is not None
        async with tls_front(cell.server.port, cert, key) as port:
            url = f"https://127.0.0.1:{port}"
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "binance_archive", "download", "--market", "spot", "--data-type", "klines",
                "--symbol", "BTCUSDT", "--interval", "1h", "--start", "2024-01-01", "--end", "2024-01-04",
                "--period", "daily", "--today", TODAY.isoformat(), "--base-url", url, "--listing-url", url,
                "--transport-option", f"ca_bundle={ca_cert}", "--to", str(tmp_path / "cli"), "--json",
                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )  # fmt: skip
            out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()[-2000:]
    assert json.loads(out)["downloaded"] == len(files), out.decode()[:500]


@pytest.mark.parametrize(
    ("value", "extra", "words"),
    [
        ("missing.pem", {}, ("cannot read", "missing.pem")),
        ("empty.pem", {}, ("holds no PEM certificate",)),
        ("damaged.pem", {}, ("cannot be loaded",)),
        ("good.pem", {"verify_ssl": False}, ("contradict", "verify_ssl")),
        (7, {}, ("must be the path of a PEM file", "7")),
        ("", {}, ("must be the path of a PEM file",)),
    ],
)
def test_a_wrong_ca_bundle_is_refused_when_the_archive_is_built_naming_the_option(
    value: object, extra: dict[str, object], words: tuple[str, ...], tmp_path: Path
) -> None:
    good, _, _ = make_certificate(tmp_path, host="Some CA")
    (tmp_path / "good.pem").write_text(good.read_text())
    (tmp_path / "empty.pem").write_text("# nothing here\n")
    body = good.read_text().splitlines()
    body[2] = "A" * len(body[2])  # base64 still, but no longer a certificate
    (tmp_path / "damaged.pem").write_text("\n".join(body) + "\n")
    option = str(tmp_path / value) if isinstance(value, str) and value else value
    with pytest.raises(ConfigurationError) as caught:
        Archive(
            tmp_path / "mirror", base_url="https://127.0.0.1:9", entry_points=False,
            transport_options={"ca_bundle": option, **extra},
        )  # fmt: skip
    message = str(caught.value)
    assert "ca_bundle" in message and all(word in message for word in words), message
    assert not (tmp_path / "mirror").exists()


def test_the_tls_error_points_at_the_option() -> None:
    from binance_archive.transports.http.errors import tls_error

    error = tls_error("https://host/key", "self-signed certificate")
    assert isinstance(error, TransportError) and "ca_bundle" in str(error)
