"""The HTTP transport's ``ca_bundle`` option: a PEM file of CA certificates trusted in addition to the default trust
store, by every client alike (aiohttp, pyreqwest and the blocking GET of a large body).

Read and checked when the transport is built, so a wrong path or a file holding no certificate is refused before
any request, naming the option; the certificates are then handed to each client as PEM text. ``ssl`` is imported
only when the option is given (the HTTP clients import it anyway, but a run that sends no request need not).
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from binance_archive.errors import ConfigurationError

if TYPE_CHECKING:
    import ssl

__all__ = ["certificates", "load_ca_bundle", "ssl_context"]

_CERTIFICATE = re.compile(r"-----BEGIN CERTIFICATE-----\r?\n.+?\r?\n-----END CERTIFICATE-----", re.DOTALL)


def certificates(pem: str) -> list[str]:
    """Each certificate of a PEM bundle, in order, without the text around them."""
    return _CERTIFICATE.findall(pem)


def load_ca_bundle(value: object, *, verify_ssl: bool) -> str | None:
    """The certificates of the PEM file ``value`` names (``None`` for none), checked: refused when the option is not
    a path, the file cannot be read, holds no certificate OpenSSL can load, or certificates are not checked at all."""
    if value is None:
        return None
    if not isinstance(value, str | os.PathLike) or not os.fspath(value):
        raise ConfigurationError(f"ca_bundle must be the path of a PEM file of CA certificates, not {value!r}")
    path = os.fspath(value)
    if not verify_ssl:
        raise ConfigurationError(
            f"ca_bundle={path!r} and verify_ssl=False contradict each other: with verify_ssl off no certificate is "
            "checked; drop one of them"
        )
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            pem = handle.read()
    except OSError as exc:
        raise ConfigurationError(f"ca_bundle: cannot read {path!r}: {exc.strerror or exc}") from None
    found = certificates(pem)
    if not found:
        raise ConfigurationError(
            f"ca_bundle: {path!r} holds no PEM certificate (-----BEGIN CERTIFICATE----- ... lines); give the CA's "
            "certificate in PEM form (openssl x509 -in CERT -outform PEM converts a DER one)"
        )
    import ssl

    try:  # every certificate, as the clients will load them: a damaged one is refused here, not at the first request
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata="\n".join(found))
    except ssl.SSLError as exc:
        raise ConfigurationError(f"ca_bundle: {path!r} holds a certificate that cannot be loaded: {exc}") from None
    return "\n".join(found) + "\n"


def ssl_context(verify: bool, ca_pem: str | None) -> ssl.SSLContext:
    """A client context: the default trust store (``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` honoured) plus ``ca_pem``;
    nothing checked when ``verify`` is off."""
    import ssl

    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif ca_pem:
        context.load_verify_locations(cadata=ca_pem)
    return context
