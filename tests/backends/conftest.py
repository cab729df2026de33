"""Real components on loopback for the backend tests: S3 servers (moto's mock, tests/support/moto.py, and SeaweedFS,
a real one, tests/support/seaweedfs.py; ``s3_server`` is each in turn), fake AWS credentials."""

from __future__ import annotations

import shutil

import pytest

from binance_archive.transports.s5cmd import find_binary

from ..support.moto import fake_aws, moto_server
from ..support.s3 import s3_server
from ..support.seaweedfs import seaweedfs_server

# The shared fixtures, imported to be visible here (fake_aws is autouse).
__all__ = ["fake_aws", "moto_server", "s3_server", "seaweedfs_server"]


@pytest.fixture(scope="session")
def s5cmd_binary() -> str:
    """The s5cmd binary; the s5cmd tests skip, saying why, only where it is genuinely absent."""
    try:
        return find_binary()
    except Exception as exc:  # ConfigurationError: not installed
        if shutil.which("s5cmd") is None:
            pytest.skip(f"s5cmd is not installed: {exc}")
        raise
