"""The listing through ``s5cmd ls``: its JSON lines read as S3 listing entries, cut into pages."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator
from contextlib import suppress
from typing import Any

from binance_archive.core.listing import ListedObject, ListingPage, Paginator
from binance_archive.errors import FileMissingError, RetryableError, TransportError
from binance_archive.transports.s5cmd.errors import Tail, bounded, classify
from binance_archive.transports.s5cmd.process import pump, running

__all__ = ["ls_pages"]


async def ls_pages(
    argv: list[str], *, env: dict[str, str] | None, url: str, root: str, read_timeout: float, page_size: int
) -> AsyncIterator[ListingPage]:
    """The pages of ``s5cmd ... ls URL`` (``argv``), whose keys are the entries' URLs less ``root`` (``s3://b/``).

    Raises:
        RetryableError: when s5cmd prints no entry for ``read_timeout`` seconds (a stalled server).
        TransportError: for what s5cmd reports as an error (a missing bucket, say).
    """
    pages = Paginator(page_size)
    errors: list[str] = []
    tail = Tail()
    async with running(argv, env=env) as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        stderr = asyncio.ensure_future(pump(proc.stderr, lambda line: _collect(line, errors, tail)))
        try:
            while True:
                try:
                    async with asyncio.timeout(read_timeout):
                        raw = await proc.stdout.readline()
                except ValueError:
                    continue
                except TimeoutError:
                    raise RetryableError(
                        f"listing {url} timed out: s5cmd printed nothing for {read_timeout:g} s "
                        "(read_timeout), so it was stopped"
                    ) from None
                if not raw:
                    break
                entry = _listing_entry(raw.decode("utf-8", "replace").strip(), root, errors, tail)
                if entry is not None and (page := pages.add(entry)) is not None:
                    yield page
            await stderr
            returncode = await proc.wait()
        finally:
            if not stderr.done():
                stderr.cancel()
                await asyncio.gather(stderr, return_exceptions=True)
    real = [e for e in errors if "no object found" not in e.lower()]
    if returncode != 0 and (real or not errors):
        message = " | ".join(real) or tail.text() or f"exit status {returncode}"
        exc = classify(message, url)
        if isinstance(exc, FileMissingError):  # a 404 on a listing is a missing bucket, not an empty prefix
            exc = TransportError(f"cannot list {url}: {bounded(message)}; check bucket and endpoint_url")
        raise exc
    yield pages.last()


def _collect(line: str, errors: list[str], tail: Tail) -> None:
    try:
        record: Any = json.loads(line)
    except ValueError:
        tail.add(line)
        return
    if isinstance(record, dict) and record.get("error") is not None:
        errors.append(str(record["error"]))
    else:
        tail.add(line)


def _listing_entry(line: str, root: str, errors: list[str], tail: Tail) -> tuple[str, ListedObject | None] | None:
    if not line:
        return None
    try:
        record: Any = json.loads(line)
    except ValueError:
        tail.add(line)
        return None
    if not isinstance(record, dict):
        return None
    if record.get("error") is not None:
        errors.append(str(record["error"]))
        return None
    url = str(record.get("key", ""))
    if not url.startswith(root):
        return None
    key = url[len(root) :]
    if record.get("type") == "directory":
        return key, None
    try:
        size = int(record.get("size", 0))
    except (TypeError, ValueError):
        raise TransportError(f"s5cmd gave {key!r} a size that is not a number") from None
    modified: dt.datetime | None = None
    if text := record.get("last_modified"):
        with suppress(ValueError):
            modified = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    etag = str(record.get("etag", "")).strip('"')
    return key, ListedObject(key=key, size=size, etag=etag, last_modified=modified)
