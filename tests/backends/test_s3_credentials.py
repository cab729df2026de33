"""S3 credentials: none anywhere is said at once (which, and how to give them), profiles are read, the instance's
role still works, and public buckets are read (or written) anonymously.

The instance metadata service is played on loopback (``AWS_METADATA_ENDPOINT``, ``AWS_EC2_METADATA_SERVICE_ENDPOINT``):
by a socket that never answers (what 169.254.169.254 is off EC2 on most machines; obstore waited 180 s there before
each request failed), a closed port, a server refusing tokens (what it is on this machine: 403), and a fake that
names a role and hands out its keys. Real signatures are checked by SeaweedFS; moto accepts any keys.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp import web

from binance_archive import Archive
from binance_archive.errors import ConfigurationError, StorageError, TransportError
from binance_archive.storages.s3 import S3Storage
from binance_archive.transports.s5cmd import S5cmdTransport

from ..support.moto import MotoS3
from ..support.seaweedfs import SeaweedS3
from ._scenario import FILES, SPOT, TODAY, assert_mirrored, build_upstream

BOUND = 30.0  # seconds a refusal may take at most (a bound, not a measurement: it takes ~1 s, the probe's timeout)
HOW_TO_GIVE = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "access_key_id", "anonymous=true")


@pytest.fixture
def no_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No AWS setting at all (as on a new user's machine), and a home of its own; returns the home."""
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


@pytest.fixture
def silent_port() -> Iterator[str]:
    """A loopback endpoint that accepts connections and never answers (nothing accepts them: the backlog does)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()


@pytest.fixture
def closed_port() -> str:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return f"http://127.0.0.1:{port}"


class FakeMetadata:
    """The EC2 instance metadata service (IMDSv2) on loopback: a token, a role's name, its keys; or refusals."""

    def __init__(self, *, role: str | None = "mirror-role", token_status: int = 200) -> None:
        self.role = role
        self.token_status = token_status
        self.requests: list[str] = []
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(f"{request.method} {request.path}")
        if request.path == "/latest/api/token" and request.method == "PUT":
            return web.Response(text="token-1", status=self.token_status)
        if request.headers.get("X-aws-ec2-metadata-token") != "token-1":
            return web.Response(status=401)
        base = "/latest/meta-data/iam/security-credentials/"
        if request.path == base and self.role:
            return web.Response(text=self.role)
        if request.path == base + str(self.role) and self.role:
            return web.json_response(
                {
                    "Code": "Success",
                    "Type": "AWS-HMAC",
                    "AccessKeyId": "testing",
                    "SecretAccessKey": "testing",
                    "Token": "instance-token",
                    "Expiration": "2099-01-01T00:00:00Z",
                }
            )
        return web.Response(status=404)

    async def __aenter__(self) -> FakeMetadata:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


@pytest.fixture
async def bucket_endpoint() -> AsyncIterator[tuple[str, list[str]]]:
    """An S3 endpoint that records every request it gets (and answers none usefully)."""
    seen: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(f"{request.method} {request.path}")
        return web.Response(status=500)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", seen
    finally:
        await runner.cleanup()


# -- no credentials ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("metadata", ["silent", "closed", "refusing", "no role"])
@pytest.mark.parametrize("endpoint", [False, True], ids=["aws", "endpoint"])
async def test_no_credentials_are_refused_at_once_saying_how_to_give_them(
    no_aws: Path,
    monkeypatch: pytest.MonkeyPatch,
    silent_port: str,
    closed_port: str,
    bucket_endpoint: tuple[str, list[str]],
    metadata: str,
    endpoint: bool,
) -> None:
    """Before any request to the bucket, within the probe's second, whatever the metadata service does."""
    url, seen = bucket_endpoint
    async with FakeMetadata(token_status=403 if metadata == "refusing" else 200, role=None) as fake:
        where = {"silent": silent_port, "closed": closed_port}.get(metadata, fake.url)
        monkeypatch.setenv("AWS_METADATA_ENDPOINT", where)
        storage = S3Storage("s3://bucket/prefix", **({"endpoint_url": url} if endpoint else {}))
        assert storage.credentials == "instance metadata"
        started = time.monotonic()
        with pytest.raises(ConfigurationError) as caught:
            await asyncio.wait_for(storage.open(), BOUND)
        took = time.monotonic() - started
    message = str(caught.value)
    assert message.startswith("no AWS credentials for s3://bucket/prefix"), message
    for words in HOW_TO_GIVE:
        assert words in message, (words, message)
    assert ("endpoint_url=http://HOST:PORT" in message) is not endpoint, "the endpoint is named when none is given"
    assert where in message, "the metadata service asked is named"
    if metadata == "no role":
        assert "names no IAM role" in message
    assert seen == [], "no request reached the bucket"
    assert took < BOUND


async def test_the_metadata_service_is_not_asked_when_disabled(
    no_aws: Path, monkeypatch: pytest.MonkeyPatch, silent_port: str
) -> None:
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_METADATA_SERVICE_TIMEOUT", "600")  # would hang the test if it were asked
    monkeypatch.setenv("AWS_METADATA_ENDPOINT", silent_port)
    with pytest.raises(ConfigurationError, match=r"off \(AWS_EC2_METADATA_DISABLED\)"):
        await asyncio.wait_for(S3Storage("s3://bucket").open(), BOUND)


def test_the_command_says_which_credentials_are_missing(tmp_path: Path, silent_port: str) -> None:
    """``download --to s3://...`` in an environment with no AWS setting: exit status 2 and the message at once,
    not a failure per file after obstore's retries of the metadata service (played by a port that never answers).
    """
    import subprocess

    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        "HOME": str(tmp_path),
        "AWS_METADATA_ENDPOINT": silent_port,
    }
    args = [sys.executable, "-m", "binance_archive", "download", "--market", "spot", "--data-type", "klines"]
    args += ["--symbol", "BTCUSDT", "--interval", "1h", "--start", "2024-01-01", "--end", "2024-01-02"]
    args += ["--base-url", "http://127.0.0.1:9", "--to", "s3://bucket/prefix"]
    started = time.monotonic()
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    took = time.monotonic() - started
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("binance-archive: error: no AWS credentials for s3://bucket/prefix"), done.stderr
    for words in (*HOW_TO_GIVE, "--storage-option anonymous=true", "endpoint_url"):
        assert words in done.stderr, words
    assert "Traceback" not in done.stderr
    assert took < 60, f"took {took:.1f} s"


# -- credentials that are there ----------------------------------------------------------------------------------


async def test_the_instance_role_still_gives_credentials(
    no_aws: Path, monkeypatch: pytest.MonkeyPatch, moto_server: MotoS3
) -> None:
    bucket = moto_server.bucket()
    async with FakeMetadata() as fake:
        monkeypatch.setenv("AWS_METADATA_ENDPOINT", fake.url)
        storage = S3Storage(f"s3://{bucket}", endpoint_url=moto_server.url, region="us-east-1")
        async with storage:
            await storage.put_bytes("data/x", b"x")
        assert "GET /latest/meta-data/iam/security-credentials/mirror-role" in fake.requests, "obstore used it"
    assert moto_server.keys(bucket) == {"data/x": 1}


def _write_profiles(home: Path, credentials: str, config: str = "") -> None:
    (home / ".aws").mkdir(exist_ok=True)
    (home / ".aws" / "credentials").write_text(credentials)
    (home / ".aws" / "config").write_text(config)


GOOD = "aws_access_key_id = testing\naws_secret_access_key = testing\n"
WRONG = "aws_access_key_id = testing\naws_secret_access_key = not-the-secret\n"


async def test_profiles_are_read(no_aws: Path, monkeypatch: pytest.MonkeyPatch, seaweedfs_server: SeaweedS3) -> None:
    """The AWS CLI's files: ``default``, ``AWS_PROFILE``, the option ``profile`` (which wins over the environment's
    keys), a profile's region; SeaweedFS checks the signatures, so the keys written are the keys used."""
    bucket = seaweedfs_server.bucket()
    _write_profiles(
        no_aws, f"[default]\n{GOOD}\n[other]\n{GOOD}\n[wrong]\n{WRONG}", "[profile other]\nregion = eu-west-3\n"
    )
    url = seaweedfs_server.url

    async def put(storage: S3Storage) -> None:
        async with storage:
            await storage.put_bytes("data/x", b"x")

    default = S3Storage(f"s3://{bucket}/default", endpoint_url=url)
    assert (default.credentials, default.region) == ("profile default", None)
    await put(default)
    monkeypatch.setenv("AWS_PROFILE", "other")
    other = S3Storage(f"s3://{bucket}/other", endpoint_url=url)
    assert (other.credentials, other.region) == ("profile other", "eu-west-3")
    await put(other)
    monkeypatch.setenv("AWS_PROFILE", "wrong")
    with pytest.raises(StorageError, match=r"check the AWS credentials \(taken from the profile wrong\)"):
        await put(S3Storage(f"s3://{bucket}/wrong", endpoint_url=url))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    chosen = S3Storage(f"s3://{bucket}/chosen", endpoint_url=url, profile="default")
    assert chosen.credentials == "profile default"
    await put(chosen)
    monkeypatch.delenv("AWS_PROFILE")  # (boto3, looking from outside, would look for it)
    assert set(seaweedfs_server.keys(bucket)) == {"default/data/x", "other/data/x", "chosen/data/x"}


def test_profiles_that_cannot_be_used_are_named(no_aws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_profiles(no_aws, "[half]\naws_access_key_id = AKIA\n", "[profile sso]\nsso_session = corp\n")
    monkeypatch.setenv("AWS_PROFILE", "nope")
    with pytest.raises(ConfigurationError, match=r"profile 'nope' is in neither .*credentials nor .*config"):
        S3Storage("s3://bucket")
    with pytest.raises(ConfigurationError, match=r"'sso' holds no aws_access_key_id .*\(it uses sso_session\).*"
                       r"aws configure export-credentials --profile sso"):  # fmt: skip
        S3Storage("s3://bucket", profile="sso")
    with pytest.raises(ConfigurationError, match="give both"):
        S3Storage("s3://bucket", profile="half")
    # A default profile without keys: the search goes on, and the refusal says why that profile did not count.
    _write_profiles(no_aws, "", "[default]\ncredential_process = /usr/bin/get-keys\n")
    monkeypatch.delenv("AWS_PROFILE")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    storage = S3Storage("s3://bucket")
    assert storage.credentials == "instance metadata"
    with pytest.raises(ConfigurationError, match=r"'default' holds no aws_access_key_id .*credential_process"):
        asyncio.run(storage.open())
    with pytest.raises(ConfigurationError, match="anonymous=true sends unsigned requests"):
        S3Storage("s3://bucket", anonymous=True, access_key_id="a", secret_access_key="b")
    with pytest.raises(ConfigurationError, match="anonymous must be true or false"):
        S3Storage("s3://bucket", anonymous="yes")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="session_token goes with keys"):
        S3Storage("s3://bucket", session_token="t")


# -- anonymous ---------------------------------------------------------------------------------------------------
# On SeaweedFS: moto, a mock, lets anyone write to any bucket and refuses anonymous HEADs even on public buckets.


async def test_anonymous_reads_a_public_bucket_and_writes_where_allowed(
    no_aws: Path, seaweedfs_server: SeaweedS3
) -> None:
    """With no credentials anywhere (and no metadata service asked)."""
    objects = {"data/a": b"hello"}
    public = seaweedfs_server.bucket(public=True, objects=objects)
    private = seaweedfs_server.bucket(objects=objects)
    writable = seaweedfs_server.bucket(writable=True, objects=objects)

    def anonymous(bucket: str) -> S3Storage:
        storage = S3Storage(f"s3://{bucket}", endpoint_url=seaweedfs_server.url, anonymous=True)
        assert storage.credentials == "anonymous"
        return storage

    with pytest.MonkeyPatch.context() as patch:  # obstore's variable says the same
        patch.setenv("AWS_SKIP_SIGNATURE", "true")
        assert S3Storage(f"s3://{public}").credentials == "anonymous"
        assert S3Storage(f"s3://{public}", access_key_id="a", secret_access_key="b").credentials == "options"

    async with anonymous(public) as storage:
        assert await storage.read_bytes("data/a", max_size=10) == b"hello"
        assert [o.key async for o in storage.list("data/")] == ["data/a"]
        assert (await storage.stat("data/a")).size == 5  # type: ignore[union-attr]
        with pytest.raises(StorageError, match=r"anonymous=true sends unsigned requests.*give credentials"):
            await storage.put_bytes("data/b", b"b")
    async with anonymous(private) as storage:
        with pytest.raises(StorageError, match="anonymous=true sends unsigned requests"):
            await storage.read_bytes("data/a", max_size=10)
    async with anonymous(writable) as storage:
        await storage.put_bytes("data/b", b"written anonymously")
    assert seaweedfs_server.keys(writable) == {"data/a": 5, "data/b": 19}


async def test_anonymous_verify_and_mirror_from_a_public_bucket(
    tmp_path: Path, no_aws: Path, seaweedfs_server: SeaweedS3, s5cmd_binary: str
) -> None:
    """A public mirror in S3, with no credentials anywhere: verified through the Python API and the command, and
    mirrored from by the command with s5cmd (unsigned by default)."""
    import subprocess

    upstream = build_upstream(tmp_path / "upstream")
    bucket = seaweedfs_server.bucket(public=True)
    assert seaweedfs_server.upload_tree(bucket, upstream) == 2 * len(FILES)
    options = {"endpoint_url": seaweedfs_server.url, "anonymous": True}
    report = await Archive(f"s3://{bucket}", storage_options=options, entry_points=False).verify()
    assert report.ok and report.checked == len(FILES), report.problems

    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": os.environ.get("PYTHONPATH", ""), "HOME": str(no_aws)}
    command = [sys.executable, "-m", "binance_archive"]
    verify = [*command, "verify", f"s3://{bucket}", "--storage-option", f"endpoint_url={seaweedfs_server.url}"]

    def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)

    done = await asyncio.to_thread(run, [*verify, "--storage-option", "anonymous=true"], env)
    assert done.returncode == 0, done.stderr
    assert f"{len(FILES)} files verified" in done.stdout, done.stdout
    refused = await asyncio.to_thread(run, verify, {**env, "AWS_EC2_METADATA_DISABLED": "true"})
    assert refused.returncode == 2 and "anonymous=true" in refused.stderr, refused.stderr

    download = [*command, "download", "--market", "spot", "--data-type", "klines", "--symbol", "BTCUSDT"]
    download += ["--interval", "1h", "--start", str(SPOT.start), "--end", str(SPOT.end), "--today", str(TODAY)]
    download += ["--transport", "s5cmd", "--base-url", f"{seaweedfs_server.url}/{bucket}"]
    download += ["--transport-option", "region=us-east-1", "--to", str(tmp_path / "mirror"), "--quiet"]
    done = await asyncio.to_thread(run, download, env)
    assert done.returncode == 0, done.stderr
    assert_mirrored(upstream, tmp_path / "mirror", FILES[:6])


def test_anonymous_convert_from_a_public_bucket(tmp_path: Path, no_aws: Path, seaweedfs_server: SeaweedS3) -> None:
    """``convert --from s3://... --storage-option anonymous=true``: the tables of a public mirror, no credentials."""
    import subprocess

    pytest.importorskip("pyarrow", reason="convert needs pyarrow (the [test] extra installs it)")
    bucket = seaweedfs_server.bucket(public=True)
    seaweedfs_server.upload_tree(bucket, build_upstream(tmp_path / "upstream"))
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": os.environ.get("PYTHONPATH", ""), "HOME": str(no_aws)}
    args = [sys.executable, "-m", "binance_archive", "convert", "--from", f"s3://{bucket}", "--to", str(tmp_path / "t")]
    args += ["--storage-option", f"endpoint_url={seaweedfs_server.url}", "--storage-option", "anonymous=true"]
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{len(FILES)} converted, 0 unchanged, 0 failed"), done.stdout
    assert list((tmp_path / "t").rglob("*.parquet"))


# -- s5cmd: the same vocabulary ------------------------------------------------------------------------------------


async def test_s5cmd_signed_requests_without_credentials_are_refused_at_once(
    tmp_path: Path, no_aws: Path, monkeypatch: pytest.MonkeyPatch, silent_port: str, s5cmd_binary: str
) -> None:
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", silent_port)  # the Go SDK's name for it
    transport = S5cmdTransport(endpoint_url="http://127.0.0.1:9", bucket="b", sign_requests=True, staging_dir=tmp_path)
    with pytest.raises(ConfigurationError) as caught:
        await asyncio.wait_for(transport.open(), BOUND)
    message = str(caught.value)
    assert message.startswith("no AWS credentials for s5cmd's signed requests (sign_requests=true) to s3://b")
    for words in ("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "leave sign_requests off", "--no-sign-request", silent_port):
        assert words in message, words
    assert [p.name for p in tmp_path.iterdir()] == ["home"], "nothing staged"


async def test_s5cmd_signed_and_anonymous_on_a_real_server(
    tmp_path: Path, no_aws: Path, seaweedfs_server: SeaweedS3, s5cmd_binary: str
) -> None:
    """A private bucket: refused to unsigned requests (saying how to sign), read with a profile's keys."""
    bucket = seaweedfs_server.bucket(objects={"data/x.zip": b"x"})
    options = {"endpoint_url": seaweedfs_server.url, "bucket": bucket, "region": "us-east-1", "staging_dir": tmp_path}
    async with S5cmdTransport(**options) as anonymous:
        with pytest.raises(TransportError, match=r"access denied.*sign_requests=True"):
            await anonymous.get_bytes("data/x.zip", max_size=10)
    _write_profiles(no_aws, f"[default]\n{GOOD}")
    async with S5cmdTransport(**options, sign_requests=True) as signed:
        assert await signed.get_bytes("data/x.zip", max_size=10) == b"x"
