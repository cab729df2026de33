"""Fixtures of the reliability suite (helpers live in support.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ..support.moto import MotoS3, moto_s3


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoS3]:
    pytest.importorskip("moto.server", reason="moto[server] is needed for the S3 storage")
    pytest.importorskip("obstore", reason="obstore is needed for the S3 storage")
    with moto_s3() as server:
        yield server


@pytest.fixture
def moto_if_needed(request: pytest.FixtureRequest) -> MotoS3 | None:
    """The moto server, only for the parametrisations that use the S3 storage (so local runs need no moto)."""
    params = getattr(request.node, "callspec", None)
    if params is not None and params.params.get("storage") == "s3":
        return request.getfixturevalue("moto")  # type: ignore[no-any-return]
    return None
