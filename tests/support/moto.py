"""moto's S3 server on loopback, and what the backend, reliability and tables tests do with it.

The fixtures at the end are imported by the conftests (and test modules) that need them.

boto3 looks at the buckets from outside: the library itself never uses it.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import pytest

_BUCKETS = itertools.count(1)
_CREDENTIALS = {"access_key_id": "testing", "secret_access_key": "testing", "region": "us-east-1"}


def _public_read(bucket: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": ["s3:GetObject", "s3:ListBucket"],
                    "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                }
            ],
        }
    )


@attrs.frozen
class MotoS3:
    """moto's S3 server on loopback (the S3 storage of the reliability matrix writes here too)."""

    url: str

    def client(self) -> Any:
        """A boto3 client of the server."""
        import boto3  # type: ignore[import-untyped]

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )

    def storage_options(self) -> dict[str, Any]:
        """The S3 storage's options for this server, credentials included."""
        return {"endpoint_url": self.url, **_CREDENTIALS}

    def bucket(self, *, public: bool = False, objects: Mapping[str, bytes] | None = None) -> str:
        """A new bucket (anonymously readable when ``public``, as s5cmd --no-sign-request needs), seeded."""
        name = f"bucket-{next(_BUCKETS)}"
        client = self.client()
        client.create_bucket(Bucket=name)
        if public:
            client.put_bucket_policy(Bucket=name, Policy=_public_read(name))
        for key, data in (objects or {}).items():
            client.put_object(Bucket=name, Key=key, Body=data)
        return name

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


def fake_aws_environment(monkeypatch: Any) -> None:
    """The environment of a test that talks to moto: fake credentials, and nothing of the user's AWS set-up."""
    for name, value in _FAKE_AWS.items():
        monkeypatch.setenv(name, value)
    for name in _UNSET:
        monkeypatch.delenv(name, raising=False)


@contextmanager
def moto_s3() -> Iterator[MotoS3]:
    """moto's threaded S3 server on a free loopback port, for as long as the block runs."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield MotoS3(f"http://{host}:{port}")
    finally:
        server.stop()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoS3]:
    """One moto server for the whole session; each test takes buckets of its own (`MotoS3.bucket`)."""
    pytest.importorskip("moto.server", reason="moto's S3 server is needed (the [test] extra installs moto[server])")
    pytest.importorskip("obstore", reason="the s3 storage needs obstore (the [test] extra installs it)")
    with moto_s3() as server:
        yield server


@pytest.fixture(autouse=True)
def fake_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and none of the user's AWS set-up, for every test of a module or conftest that imports it."""
    fake_aws_environment(monkeypatch)
