"""HTTPS on loopback for the tests: certificates made on the spot (self-signed, or signed by a CA of the test's own)
and a TLS front that forwards the decrypted bytes to a plain HTTP server."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

__all__ = ["make_certificate", "tls_front"]


def make_certificate(folder: Path, *, host: str, ca: tuple[object, object] | None = None) -> tuple[Path, Path, object]:
    """A certificate for ``host`` (self-signed, or signed by ``ca``); returns (cert file, key file, (cert, key))."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host if ca is None else f"leaf {host}")])
    issuer_cert, issuer_key = ca if ca is not None else (None, key)
    now = dt.datetime.now(dt.UTC)
    try:
        alt: object = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        alt = x509.DNSName(host)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name if ca is not None else x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(issuer_cert.subject if issuer_cert is not None else name)  # type: ignore[attr-defined]
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([alt]), critical=False)  # type: ignore[list-item]
        .add_extension(x509.BasicConstraints(ca=ca is None, path_length=None), critical=True)
    )
    certificate = builder.sign(issuer_key, hashes.SHA256())  # type: ignore[arg-type]
    stem = folder / host.replace(".", "_").replace(":", "_")
    if ca is not None:
        stem = stem.with_name(stem.name + "_leaf")
    cert_file, key_file = stem.with_suffix(".crt"), stem.with_suffix(".key")
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file, (certificate, key)


@asynccontextmanager
async def tls_front(target_port: int, cert: Path, key: Path) -> AsyncIterator[int]:
    """An HTTPS server on loopback: TLS terminated here, the bytes forwarded to the fake archive."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            writer.close()
            return

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, ssl.SSLError):
                pass
            finally:
                sink.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
