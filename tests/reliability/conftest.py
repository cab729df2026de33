"""Fixtures of the reliability suite (helpers live in support.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .support import Moto


@pytest.fixture(scope="session")
def moto() -> Iterator[Moto]:
    pytest.importorskip("moto.server", reason="moto[server] is needed for the S3 storage")
    pytest.importorskip("obstore", reason="obstore is needed for the S3 storage")
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield Moto(f"http://{host}:{port}")
    finally:
        server.stop()


@pytest.fixture
def moto_if_needed(request: pytest.FixtureRequest) -> Moto | None:
    """The moto server, only for the parametrisations that use the S3 storage (so local runs need no moto)."""
    params = getattr(request.node, "callspec", None)
    if params is not None and params.params.get("storage") == "s3":
        return request.getfixturevalue("moto")  # type: ignore[no-any-return]
    return None
