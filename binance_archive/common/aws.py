"""AWS credentials, looked for as the AWS SDKs do, and settled before the first request to a bucket.

The S3 storage's client, obstore (Rust's object_store), reads keys from the environment, web identity and container
credentials, and with none of them asks the EC2 instance metadata service (169.254.169.254) before every request,
with retries; it does not read the AWS CLI's profiles. A user with no credentials set up got, per file, "Error
performing PUT http://169.254.169.254/latest/api/token ... 403", or, where that address does not answer (most
machines off EC2), a wait of 180 s before each failure (measured with obstore 0.12.1). s5cmd, asked to sign its
requests, waits as long. So the backends settle their credentials first, in the order of the AWS SDKs:

1. ``anonymous``: unsigned requests (obstore's ``skip_signature``, s5cmd's ``--no-sign-request``); none looked for;
2. the options ``access_key_id`` and ``secret_access_key`` (and ``session_token``);
3. a profile named by the option ``profile`` (which then wins over the environment's keys, as in botocore);
4. the environment: ``AWS_ACCESS_KEY_ID`` and ``AWS_SECRET_ACCESS_KEY`` (and ``AWS_SESSION_TOKEN``);
5. a profile of the shared files (``AWS_PROFILE``, else ``default``; ``~/.aws/credentials`` and ``~/.aws/config``,
   or ``AWS_SHARED_CREDENTIALS_FILE`` and ``AWS_CONFIG_FILE``): its static keys (obstore reads no profile), or
   the profile itself for a client that reads profiles (s5cmd);
6. web identity or container credentials named by the environment: the clients read those themselves;
7. the instance metadata service: asked once, with a short timeout (boto's: 1 s, ``AWS_METADATA_SERVICE_TIMEOUT``),
   unless ``AWS_EC2_METADATA_DISABLED`` is true. When it gives no role the backend refuses to open, saying which
   credentials are missing and every way to give them (:func:`no_credentials`).

Standard library, attrs and :mod:`binance_archive.errors` only (the probe speaks HTTP/1.1 over asyncio's streams).
"""

from __future__ import annotations

import asyncio
import configparser
import contextlib
import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

import attrs

from binance_archive.errors import ConfigurationError

__all__ = [
    "METADATA_ENDPOINT",
    "Credentials",
    "Secret",
    "env_flag",
    "instance_role_missing",
    "no_credentials",
    "profile_files",
    "resolve",
]

METADATA_ENDPOINT = "http://169.254.169.254"
"""The instance metadata service, where no ``AWS_METADATA_ENDPOINT`` (obstore) or
``AWS_EC2_METADATA_SERVICE_ENDPOINT`` (the Go SDK, s5cmd) says otherwise."""

_TRUE = ("1", "true", "yes", "on")
_MAX_ANSWER = 64 * 1024


class Secret:
    """A credential that never shows itself in a repr, a message or a log."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "'***'"

    __str__ = __repr__


@attrs.frozen
class Credentials:
    """Where a backend's credentials come from, and the static ones."""

    source: str
    """``anonymous``, ``options``, ``environment``, ``profile NAME``, ``web identity``, ``container`` or
    ``instance metadata`` (the last: to be asked with :func:`instance_role_missing` before the first request)."""
    key_id: Secret | None = None
    secret: Secret | None = None
    token: Secret | None = None
    region: str | None = None
    """The profile's region, when the credentials come from a profile that names one."""
    note: str | None = None
    """Why the default profile, which exists, gave no keys (for the message when nothing else gives any)."""

    @property
    def anonymous(self) -> bool:
        return self.source == "anonymous"

    @property
    def secrets(self) -> tuple[Secret, ...]:
        return tuple(s for s in (self.key_id, self.secret, self.token) if s is not None)


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() in _TRUE


def env_flag(name: str, env: Mapping[str, str] = os.environ) -> bool:
    """Whether the environment variable ``name`` says true (``1``, ``true``, ``yes``, ``on``)."""
    return _true(env.get(name))


def _keys(key_id: str | None, secret: str | None, token: str | None, source: str, names: str) -> Credentials | None:
    if not key_id and not secret:
        return None
    if not key_id or not secret:
        raise ConfigurationError(
            f"give both an access key id and a secret access key ({names}), or neither: only one is set"
        )
    return Credentials(source, Secret(key_id), Secret(secret), Secret(token) if token else None)


def profile_files(env: Mapping[str, str] = os.environ) -> tuple[Path, Path]:
    """The shared credentials file and the config file, as the AWS SDKs find them."""
    home = Path(env.get("HOME") or Path.home())
    return (
        Path(env.get("AWS_SHARED_CREDENTIALS_FILE") or home / ".aws" / "credentials").expanduser(),
        Path(env.get("AWS_CONFIG_FILE") or home / ".aws" / "config").expanduser(),
    )


def _read_ini(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(path.read_text(encoding="utf-8"), source=str(path))
    except (FileNotFoundError, NotADirectoryError):
        pass
    except (OSError, UnicodeDecodeError, configparser.Error) as exc:
        raise ConfigurationError(f"cannot read the AWS file {path}: {exc}") from None
    return parser


def _profile(name: str, env: Mapping[str, str], *, named: bool, static: bool) -> Credentials | None:
    """The profile ``name`` of the shared files (its static keys when ``static``); None when there is none to use
    and it was not ``named``."""
    credentials_file, config_file = profile_files(env)
    credentials, config = _read_ini(credentials_file), _read_ini(config_file)
    section = name if name == "default" else f"profile {name}"
    from_credentials = dict(credentials[name]) if credentials.has_section(name) else {}
    from_config = dict(config[section]) if config.has_section(section) else {}
    if not from_credentials and not from_config:
        if named:
            raise ConfigurationError(
                f"the AWS profile {name!r} is in neither {credentials_file} nor {config_file}; "
                "check its name (AWS_PROFILE, or the option profile)"
            )
        return None
    region = from_config.get("region") or None
    if not static:
        return Credentials(f"profile {name}", region=region)
    values = {**from_config, **from_credentials}  # the credentials file wins, as in the AWS CLI
    found = _keys(
        values.get("aws_access_key_id"), values.get("aws_secret_access_key"), values.get("aws_session_token"),
        f"profile {name}", f"aws_access_key_id and aws_secret_access_key of the profile {name!r}",
    )  # fmt: skip
    if found is None:
        other = sorted(k for k in values if k in ("sso_session", "sso_start_url", "role_arn", "credential_process"))
        kind = f" (it uses {', '.join(other)})" if other else ""
        why = (
            f"the AWS profile {name!r} holds no aws_access_key_id and aws_secret_access_key{kind}; the s3 storage "
            f"reads a profile's keys only: export them with 'aws configure export-credentials --profile {name} "
            "--format env'"
        )
        if not named:
            return Credentials("", note=why)  # no keys: the search goes on, and the message says why not these
        raise ConfigurationError(f"{why}, or give the storage options access_key_id and secret_access_key")
    return attrs.evolve(found, region=region)


def resolve(
    *,
    anonymous: bool = False,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    session_token: str | None = None,
    profile: str | None = None,
    static_profiles: bool = True,
    env: Mapping[str, str] = os.environ,
) -> Credentials:
    """Where a backend's credentials come from (see the module's docstring for the order); no network.

    Args:
        static_profiles: the client reads no profile itself (obstore): a profile counts for its static keys,
            which the backend passes on. False for a client that reads profiles (s5cmd): a profile that exists
            is enough.

    Raises:
        ConfigurationError: contradictory options, half a key pair, a named profile that does not exist (or
            holds no keys when ``static_profiles``).
    """
    if anonymous:
        if access_key_id or secret_access_key or session_token or profile:
            raise ConfigurationError(
                "anonymous=true sends unsigned requests: drop access_key_id, secret_access_key, session_token "
                "and profile, or anonymous"
            )
        return Credentials("anonymous")
    names = "the options access_key_id and secret_access_key"
    found = _keys(access_key_id, secret_access_key, session_token, "options", names)
    if found is None and profile:
        found = _profile(profile, env, named=True, static=static_profiles)
    if found is None:
        token = session_token or env.get("AWS_SESSION_TOKEN")
        found = _keys(
            env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY"), token,
            "environment", "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        )  # fmt: skip
    if found is None and session_token:
        raise ConfigurationError(
            f"the option session_token goes with keys ({names}, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
        )
    note = None
    if found is None:
        named = env.get("AWS_PROFILE") or env.get("AWS_DEFAULT_PROFILE")
        found = _profile(named or "default", env, named=bool(named), static=static_profiles)
        if found is not None and not found.source:  # the default profile, without keys
            note = found.note
            found = None
    if found is not None:
        return found
    if env.get("AWS_WEB_IDENTITY_TOKEN_FILE") and env.get("AWS_ROLE_ARN"):
        return Credentials("web identity")
    if env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") or env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        return Credentials("container")
    return Credentials("instance metadata", note=note)


async def _request(endpoint: str, method: str, path: str, headers: Mapping[str, str]) -> tuple[int, str]:
    """One HTTP/1.1 request to the metadata service (plain HTTP, never through a proxy): status and body."""
    parts = urlsplit(endpoint)
    reader, writer = await asyncio.open_connection(parts.hostname or "", parts.port or 80)
    try:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {parts.netloc}", "Content-Length: 0", "Connection: close"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, *fields = head.decode("latin-1").split("\r\n")
        status = int(status_line.split()[1])
        length = next((int(f.split(":", 1)[1]) for f in fields if f.lower().startswith("content-length:")), None)
        body = await (reader.readexactly(length) if length is not None else reader.read(_MAX_ANSWER))
        return status, body.decode("latin-1").strip()
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def instance_role_missing(endpoint_variable: str, env: Mapping[str, str] = os.environ) -> str | None:
    """Why the instance metadata service gives no credentials, or None when it names a role to give.

    A request for a token (IMDSv2) and one for the role's name, within ``AWS_METADATA_SERVICE_TIMEOUT`` seconds
    (default 1, as boto's), at the endpoint ``endpoint_variable`` names (the client's own setting), else
    169.254.169.254.
    """
    if _true(env.get("AWS_EC2_METADATA_DISABLED")):
        return "the instance metadata service is off (AWS_EC2_METADATA_DISABLED)"
    endpoint = (env.get(endpoint_variable) or METADATA_ENDPOINT).rstrip("/")
    where = f"the instance metadata service at {endpoint}"
    try:
        timeout = float(env.get("AWS_METADATA_SERVICE_TIMEOUT") or 1.0)
    except ValueError:
        timeout = 1.0
    try:
        async with asyncio.timeout(timeout):
            ttl = {"X-aws-ec2-metadata-token-ttl-seconds": "60"}
            status, token = await _request(endpoint, "PUT", "/latest/api/token", ttl)
            if status != 200 and not (status == 403 and _true(env.get("AWS_IMDSV1_FALLBACK"))):
                return f"{where} refused a token (HTTP {status})"
            headers = {"X-aws-ec2-metadata-token": token} if status == 200 else {}
            status, role = await _request(endpoint, "GET", "/latest/meta-data/iam/security-credentials/", headers)
    except TimeoutError:
        return f"no answer from {where} within {timeout:g} s (not on EC2?)"
    except (
        OSError,
        ValueError,
        IndexError,
        EOFError,
        asyncio.LimitOverrunError,
    ) as exc:  # refused, reset, or not an HTTP answer
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        return f"{where} is unreachable ({reason}: not on EC2?)"
    if status == 200 and role:
        return None
    if status in (200, 404):
        return f"{where} names no IAM role for this machine"
    return f"{where} answered HTTP {status}"


def no_credentials(
    subject: str,
    endpoint: str | None,
    why: str,
    *,
    options: str | None,
    endpoint_option: str,
    anonymous: str,
    note: str | None = None,
) -> str:
    """The message of a backend that found no credentials: which are missing, and every way to give them.

    Args:
        subject: what needs them (``s3://bucket/prefix``).
        endpoint: the S3 endpoint, None for AWS.
        why: why the instance metadata service gave none.
        options: the backend's options, if it takes keys among them (``storage options``).
        endpoint_option: how to name another S3 server (``the storage option endpoint_url=http://HOST:PORT``).
        anonymous: how to do without credentials.
        note: why the default profile gave none (:attr:`Credentials.note`).
    """
    where = f"at {endpoint}" if endpoint else "on AWS (no endpoint_url given)"
    files = ", ".join(str(p) for p in profile_files())
    profiles = f"no profile with keys ({note})" if note else f"no profile ({files})"
    tried = f"none in the {options}, " if options else ""
    give = "Give keys with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile with AWS_PROFILE"
    if options:
        give += f" (or the {options[:-1]} profile), or the {options} access_key_id and secret_access_key"
    other = "" if endpoint else f"for another S3 server (MinIO, SeaweedFS, ...) also its endpoint: {endpoint_option}; "
    return (
        f"no AWS credentials for {subject} {where}: {tried}none in the environment (AWS_ACCESS_KEY_ID, "
        f"AWS_SECRET_ACCESS_KEY), {profiles}, and {why}. {give}; {other}{anonymous}"
    )
