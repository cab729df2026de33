"""Fixtures for end-to-end tests of the engine against the fake archive on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from binance_archive.testing import FakeArchiveServer, build_archive

from .scenario import FUNDING, SELECTION, planned


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "upstream"
    build_archive(root, planned(SELECTION, FUNDING), max_rows=50)
    return root


@pytest.fixture
async def server(tree: Path) -> AsyncIterator[FakeArchiveServer]:
    async with FakeArchiveServer(tree) as srv:
        yield srv


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "mirror"
    yield path
    # No test may leave a temporary file behind, whatever it did.
    leftovers = list(path.rglob(".binance-archive-*")) if path.exists() else []
    assert not leftovers, f"temporary files left behind: {leftovers}"
