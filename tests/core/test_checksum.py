"""CHECKSUM sidecars: ``<64 lowercase hex><two spaces><zip name>``, with or without a trailing newline."""

from __future__ import annotations

import hashlib
import re

import pytest

from binance_archive.core import format_checksum, parse_checksum
from binance_archive.core.checksum import MAX_SIDECAR_BYTES
from binance_archive.errors import VerificationError

DIGEST = hashlib.sha256(b"some zip bytes").hexdigest()
NAME = "BTCUSDT-1h-2026-05-08.zip"


def test_spot_sidecar_without_newline() -> None:
    assert parse_checksum(f"{DIGEST}  {NAME}".encode()) == DIGEST


def test_futures_sidecar_with_newline() -> None:
    assert parse_checksum(f"{DIGEST}  {NAME}\n".encode()) == DIGEST
    assert parse_checksum(f"{DIGEST}  {NAME}\r\n") == DIGEST


def test_digest_alone_and_surrounding_white_space() -> None:
    assert parse_checksum(DIGEST) == DIGEST
    assert parse_checksum(f"\n  {DIGEST}  {NAME}  \n\n") == DIGEST


def test_upper_case_hex_is_lowered() -> None:
    assert parse_checksum(f"{DIGEST.upper()}  {NAME}") == DIGEST


def test_file_name_must_match_when_given() -> None:
    assert parse_checksum(f"{DIGEST}  {NAME}", filename=NAME) == DIGEST
    assert parse_checksum(f"{DIGEST} *{NAME}\n", filename=NAME) == DIGEST  # sha256sum's binary-mode marker
    assert parse_checksum(DIGEST, filename=NAME) == DIGEST  # a bare digest names no file
    with pytest.raises(
        VerificationError, match=re.escape("names 'ETHUSDT-1h-2026-05-08.zip', not 'BTCUSDT-1h-2026-05-08.zip'")
    ):
        parse_checksum(f"{DIGEST}  ETHUSDT-1h-2026-05-08.zip", filename=NAME)


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"", "64-digit SHA-256"),
        (b"   \n", "64-digit SHA-256"),
        (DIGEST[:-1].encode() + b"  x.zip", "64-digit SHA-256"),
        (DIGEST.encode() + b"0  x.zip", "64-digit SHA-256"),
        (("g" + DIGEST[1:]).encode(), "64-digit SHA-256"),
        (b"<?xml version='1.0'?><Error><Code>NoSuchKey</Code></Error>", "64-digit SHA-256"),
        (b"\xff\xfe" + DIGEST.encode(), "not UTF-8"),
        (DIGEST.encode() + b" " * MAX_SIDECAR_BYTES, "a real one is about 100"),
    ],
)
def test_bad_sidecars_are_refused(content: bytes, why: str) -> None:
    with pytest.raises(VerificationError) as info:
        parse_checksum(content)
    assert why in str(info.value)


def test_format_checksum_as_binance_writes_it() -> None:
    assert format_checksum(DIGEST, NAME) == f"{DIGEST}  {NAME}\n"
    assert format_checksum(DIGEST, NAME, newline=False) == f"{DIGEST}  {NAME}"


@pytest.mark.parametrize("newline", [True, False])
def test_format_then_parse_round_trips(newline: bool) -> None:
    assert parse_checksum(format_checksum(DIGEST, NAME, newline=newline).encode(), filename=NAME) == DIGEST
