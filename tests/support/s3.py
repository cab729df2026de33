"""What the tests do with an S3 server on loopback, whichever it is: moto's mock (tests/support/moto.py) or a real
one, SeaweedFS (tests/support/seaweedfs.py).

boto3 looks at the buckets from outside: the library itself never uses it.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import attrs
import pytest

_BUCKETS = itertools.count(1)

ACCESS_KEY_ID = SECRET_ACCESS_KEY = "testing"
"""The keys every server of the tests accepts (moto any, SeaweedFS these), and fake_aws puts in the environment."""


@attrs.frozen
class S3Server:
    """An S3 server on loopback; each test takes buckets of its own (:meth:`bucket`)."""

    url: str
    name: ClassVar[str] = "s3"

    def client(self, *, anonymous: bool = False) -> Any:
        """A boto3 client of the server (unsigned with ``anonymous``)."""
        import boto3  # type: ignore[import-untyped]
        from botocore import UNSIGNED  # type: ignore[import-untyped]
        from botocore.config import Config  # type: ignore[import-untyped]

        if anonymous:
            return boto3.client(
                "s3", endpoint_url=self.url, region_name="us-east-1", config=Config(signature_version=UNSIGNED)
            )
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
            region_name="us-east-1",
        )

    def storage_options(self) -> dict[str, Any]:
        """The S3 storage's options for this server, credentials included."""
        return {
            "endpoint_url": self.url,
            "access_key_id": ACCESS_KEY_ID,
            "secret_access_key": SECRET_ACCESS_KEY,
            "region": "us-east-1",
        }

    def bucket(
        self, *, public: bool = False, writable: bool = False, objects: Mapping[str, bytes] | None = None
    ) -> str:
        """A new bucket, seeded with ``objects``: anonymously readable (and listable) when ``public``, as s5cmd
        --no-sign-request needs, and anonymously writable too when ``writable``."""
        name = self._bucket_name(public=public or writable, writable=writable, number=next(_BUCKETS))
        client = self.client()
        client.create_bucket(Bucket=name)
        self._share(client, name, public=public or writable, writable=writable)
        for key, data in (objects or {}).items():
            client.put_object(Bucket=name, Key=key, Body=data)
        return name

    def _bucket_name(self, *, public: bool, writable: bool, number: int) -> str:
        return f"bucket-{number}"

    def _share(self, client: Any, bucket: str, *, public: bool, writable: bool) -> None:
        """Give everyone the access asked for (nothing by default)."""

    def upload_tree(self, bucket: str, root: Path) -> int:
        """Upload every file under ``root`` (dot files left out) under its relative path; return how many."""
        client = self.client()
        count = 0
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                client.put_object(Bucket=bucket, Key=path.relative_to(root).as_posix(), Body=path.read_bytes())
                count += 1
        return count

    def keys(self, bucket: str, prefix: str = "") -> dict[str, int]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return {o["Key"]: o["Size"] for page in pages for o in page.get("Contents", [])}

    def uploads(self, bucket: str, prefix: str = "") -> list[str]:
        """Keys of multipart uploads begun and neither completed nor aborted."""
        found = self.client().list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads", [])
        return [u["Key"] for u in found]


@pytest.fixture(params=["moto", "seaweedfs"])
def s3_server(request: pytest.FixtureRequest) -> S3Server:
    """Each S3 server in turn: moto's mock, then SeaweedFS, a real one (both once per session)."""
    return request.getfixturevalue(f"{request.param}_server")  # type: ignore[no-any-return]
