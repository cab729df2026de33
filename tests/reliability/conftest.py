"""Fixtures of the reliability suite (helpers live in support.py)."""

from __future__ import annotations

import pytest

from ..support.moto import MotoS3, moto_server
from ..support.s3 import s3_server
from ..support.seaweedfs import seaweedfs_server

__all__ = ["moto_server", "s3_server", "seaweedfs_server"]  # the shared fixtures, imported to be visible here


@pytest.fixture
def moto_if_needed(request: pytest.FixtureRequest) -> MotoS3 | None:
    """The moto server, only for the parametrisations that use the S3 storage (so local runs need no moto)."""
    params = getattr(request.node, "callspec", None)
    if params is not None and params.params.get("storage") == "s3":
        return request.getfixturevalue("moto_server")  # type: ignore[no-any-return]
    return None
