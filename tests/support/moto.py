"""moto's S3 server on loopback (the helpers all S3 servers share: tests/support/s3.py).

The fixtures at the end are imported by the conftests (and test modules) that need them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import attrs
import pytest

from .s3 import S3Server


def _policy(bucket: str, *, writable: bool) -> str:
    actions = ["s3:GetObject", "s3:ListBucket"] + (["s3:PutObject", "s3:DeleteObject"] if writable else [])
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": actions,
                    "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                }
            ],
        }
    )


@attrs.frozen
class MotoS3(S3Server):
    """moto's S3 server on loopback (the S3 storage of the reliability matrix writes here too).

    A mock: it accepts any credentials and, unless told otherwise, unsigned requests to any bucket; the public
    buckets get the policy a real bucket would need all the same.
    """

    name: ClassVar[str] = "moto"

    def _share(self, client: Any, bucket: str, *, public: bool, writable: bool) -> None:
        if public:
            client.put_bucket_policy(Bucket=bucket, Policy=_policy(bucket, writable=writable))


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
_UNSET = (
    "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
    "S3_ENDPOINT_URL", "AWS_SKIP_SIGNATURE", "AWS_METADATA_ENDPOINT", "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)  # fmt: skip


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
