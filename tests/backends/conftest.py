"""Real components on loopback for the backend tests: moto's S3 server (tests/support/moto.py), fake AWS credentials."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from binance_archive.transports.s5cmd import find_binary

from ..support.moto import MotoS3, moto_s3

# Nothing real may leak in: no profile, no shared files, no instance metadata, no endpoint of the user's.
_FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials",
    "AWS_CONFIG_FILE": "/nonexistent/config",
}
_UNSET = ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "S3_ENDPOINT_URL")


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoS3]:
    with moto_s3() as server:
        yield server


@pytest.fixture(autouse=True)
def fake_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in _FAKE_AWS.items():
        monkeypatch.setenv(name, value)
    for name in _UNSET:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def s5cmd_binary() -> str:
    """The s5cmd binary; the s5cmd tests skip, saying why, only where it is genuinely absent."""
    try:
        return find_binary()
    except Exception as exc:  # ConfigurationError: not installed
        if shutil.which("s5cmd") is None:
            pytest.skip(f"s5cmd is not installed: {exc}")
        raise
