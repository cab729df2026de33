"""Real components on loopback for the backend tests: moto's S3 server (tests/support/moto.py), fake AWS credentials."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from binance_archive.transports.s5cmd import find_binary

from ..support.moto import MotoS3, fake_aws_environment, moto_s3


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoS3]:
    with moto_s3() as server:
        yield server


@pytest.fixture(autouse=True)
def fake_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_aws_environment(monkeypatch)


@pytest.fixture(scope="session")
def s5cmd_binary() -> str:
    """The s5cmd binary; the s5cmd tests skip, saying why, only where it is genuinely absent."""
    try:
        return find_binary()
    except Exception as exc:  # ConfigurationError: not installed
        if shutil.which("s5cmd") is None:
            pytest.skip(f"s5cmd is not installed: {exc}")
        raise
