"""The contenders the harness runs: the command line of each, the lists it reads, and the environment it needs.

Each contender downloads the same zips and sidecars into ``dest`` (``dest/KEY``) from one base URL of the server,
plain HTTP or HTTPS. Over HTTPS every contender is told to trust the run's CA (:func:`server.make_certificates`)
the way its users would: ours through the HTTP transport's ``ca_bundle`` option, s5cmd through ``AWS_CA_BUNDLE``
(s5cmd 2.3.0 ignores ``SSL_CERT_FILE``: its AWS SDK builds its own certificate pool; checked on this machine),
curl through ``--cacert``, the sequential client (urllib) through ``SSL_CERT_FILE``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
WORKER = HERE / "worker.py"
REGION = "us-east-1"  # told to s5cmd (both ways), so neither spends a request discovering it
BUCKET = "data.binance.vision"

CONTENDERS = (
    "http",
    "http-native",
    "http-pyreqwest",
    "http-aiohttp",
    "http-2p",
    "s5cmd-transport",
    "s5cmd",
    "curl",
    "sequential",
    "floor",
)
HTTP_ONLY = frozenset({"floor"})
"""Contenders that speak plain HTTP only, left out of the HTTPS workloads."""
CURL_PARALLEL = 256
"""``curl --parallel-max``: as many transfers at once as s5cmd's 256 workers."""


def python_env() -> dict[str, str]:
    """The workers' environment: bytecode cached (as for an installed package), outside the source tree."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(
        Path(os.environ.get("BENCH_CACHE", "~/.cache/binance-archive-bench")).expanduser() / "pycache"
    )
    return env


def command(
    contender: str,
    *,
    base_url: str,
    dest: Path,
    folder: Path,
    keys: list[str],
    spec: list[dict[str, Any]],
    ca_file: Path | None,
    s5cmd: str,
) -> tuple[list[str], dict[str, str]]:
    """The argv and environment of one run of ``contender``; the lists it reads are written into ``folder``.

    ``keys`` are the objects to fetch (every zip and every sidecar), ``spec`` the selection as the library takes
    it, ``ca_file`` the CA to trust when ``base_url`` is HTTPS.
    """
    py = [sys.executable, str(WORKER)]
    env = python_env()
    # Ours trusts the CA through its documented option alone (no SSL_CERT_FILE), so a run over HTTPS shows it works.
    trust = ["--option", f"ca_bundle={ca_file}"] if ca_file else []
    if contender in ("http", "http-native", "http-pyreqwest", "http-aiohttp"):
        # The default client (auto: over HTTPS pyreqwest where installed, else the native one), and each client
        # named, for comparison.
        client = ["--option", f"client={contender[5:]}"] if contender != "http" else []
        return [
            *py, "archive", "--transport", "http", "--base-url", base_url, "--dest", str(dest),
            "--spec", str(_spec(folder, spec)), *client, *trust,
        ], env  # fmt: skip
    if contender == "http-2p":
        # The command itself, as a user runs it on two cores: two processes, one shard of the plan each.
        config = folder / "config.json"
        config.write_text(json.dumps({"selection": spec}))
        return [
            sys.executable, "-m", "binance_archive", "download", "--config", str(config), "--to", str(dest),
            "--base-url", base_url, "--today", "2026-01-01", "--processes", "2", "--quiet",
            *(["--transport-option", f"ca_bundle={ca_file}"] if ca_file else []),
        ], env  # fmt: skip
    if contender == "s5cmd-transport":
        if ca_file:
            env["AWS_CA_BUNDLE"] = str(ca_file)  # for the s5cmd processes the transport starts
            env["SSL_CERT_FILE"] = str(ca_file)  # for its inner HTTP transport, which fetches the sidecars
        return [
            *py, "archive", "--transport", "s5cmd", "--base-url", f"{base_url}/{BUCKET}", "--dest", str(dest),
            "--spec", str(_spec(folder, spec)), "--option", f"region={REGION}",
        ], env  # fmt: skip
    if contender == "s5cmd":
        env = dict(os.environ, AWS_REGION=REGION)
        if ca_file:
            env["AWS_CA_BUNDLE"] = str(ca_file)
        cmds = folder / "cmds.txt"
        cmds.write_text("".join(f"cp s3://{BUCKET}/{k} {dest}/{k}\n" for k in keys))
        return [s5cmd, "--endpoint-url", base_url, "--no-sign-request", "run", str(cmds)], env
    if contender == "curl":
        # Plain curl 7.88 as the issue ran it: every URL in one config file, 256 transfers at once, no
        # verification. Over http:// it speaks HTTP/1.1; over https:// it takes HTTP/2 when the server offers it
        # by ALPN (curl's default), multiplexing the transfers over few connections (the server's log says which).
        listing = folder / "curl.txt"
        listing.write_text("".join(f'url = "{base_url}/{k}"\noutput = "{dest}/{k}"\n' for k in keys))
        argv = ["curl", "--parallel", "--parallel-max", str(CURL_PARALLEL), "--create-dirs", "--fail", "-sS"]
        return [*argv, *(["--cacert", str(ca_file)] if ca_file else []), "-K", str(listing)], dict(os.environ)
    if contender in ("sequential", "floor"):
        # One file at a time, as Binance's scripts do; and the floor, the least a verifying download does in Python
        # (plain HTTP only). Both are worker.py subcommands reading the keys from a file.
        listing = folder / "keys.txt"
        listing.write_text("\n".join(keys) + "\n")
        if ca_file:
            env["SSL_CERT_FILE"] = str(ca_file)  # urllib's default context reads it
        return [*py, contender, "--base-url", base_url, "--dest", str(dest), "--keys", str(listing)], env
    raise ValueError(f"unknown contender {contender!r}; choose from {', '.join(CONTENDERS)}")


def _spec(folder: Path, spec: list[dict[str, Any]]) -> Path:
    path = folder / "spec.json"
    path.write_text(json.dumps(spec))
    return path
