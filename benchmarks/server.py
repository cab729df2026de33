"""The archive's stand-in for the benchmarks: nginx (Debian's nginx-light + lua for a per-request delay), or,
when nginx cannot be had, the project's own :class:`~binance_archive.testing.FakeArchiveServer`.

Both serve one tree whose first level is the bucket (``TREE/BUCKET/data/...``) on one port per latency (none, or
the injected one), path-style, so every object is reachable as ``http://127.0.0.1:PORT/data/KEY`` (the HTTP
transport, curl, the sequential client) and as ``s3://BUCKET/data/KEY`` through
``--endpoint-url http://127.0.0.1:PORT`` (s5cmd). nginx also serves HTTPS, three more ports per latency, with a
certificate for 127.0.0.1 signed by a CA made for the run (:func:`make_certificates`; every client is told to
trust the CA): scheme ``https`` offers HTTP/2 by ALPN beside HTTP/1.1, ``https1`` HTTP/1.1 only, and
``https-far`` is ``https`` with every TLS handshake delayed by the latency too (a real link's round trip for each
new connection, which the per-request delay leaves out; no session is resumed there). nginx answers
the bucket's listing only as far as a run's symbol check asks it (the folders of folders); the fake server
answers every listing. Each counts
the requests it answered, by method, status and protocol, and the CPU time it spent, so every run can report
requests per file and what the server cost.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

MODULE_DIRS = ("/usr/lib/nginx/modules", "/usr/share/nginx/modules")
LUA_MODULES = ("ndk_http_module.so", "ngx_http_lua_module.so")
APT_PACKAGES = ("nginx-light", "libnginx-mod-http-lua")
SCHEMES = ("http", "https", "https1", "https-far")
"""Plain HTTP; HTTPS offering HTTP/2 and HTTP/1.1 by ALPN; HTTPS offering HTTP/1.1 only (to compare the two)."""
_TICKS = os.sysconf("SC_CLK_TCK")
_S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_ports(count: int) -> list[int]:
    """``count`` different free ports: the kernel may hand a just-closed port out again, and nginx refuses a
    configuration that listens twice on one port."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def _find_nginx() -> tuple[str, list[str]] | None:
    """The nginx binary and the two lua module paths, if all are installed."""
    binary = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)
    if binary is None:
        return None
    for folder in MODULE_DIRS:
        paths = [os.path.join(folder, name) for name in LUA_MODULES]
        if all(os.path.isfile(p) for p in paths):
            return binary, paths
    return None


def find_or_install_nginx(log: Any) -> tuple[str, list[str]] | None:
    """nginx with the lua module: found, or installed with apt-get (as root); ``None`` when it cannot be had."""
    found = _find_nginx()
    if found is not None:
        log(f"server: found {found[0]} with {', '.join(LUA_MODULES)} in {os.path.dirname(found[1][0])}")
        return found
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        log("server: nginx with the lua module is not installed, and apt-get cannot be run here (not root?)")
        return None
    log(f"server: installing {' '.join(APT_PACKAGES)} with apt-get (apt-get update first) ...")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for argv in ([apt, "update", "-q"], [apt, "install", "-y", "-q", *APT_PACKAGES]):
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            log(f"server: {' '.join(argv[:2])} failed ({done.returncode}): {done.stderr.strip()[-400:]}")
            return None
    found = _find_nginx()
    if found is not None:
        log(f"server: installed {found[0]} ({' '.join(APT_PACKAGES)})")
    return found


def make_certificates(folder: Path) -> dict[str, Path]:
    """A CA and a certificate for 127.0.0.1 it signed (EC P-256, valid two days), made with the openssl command.

    A leaf signed by a CA rather than one self-signed certificate: rustls (pyreqwest) refuses a CA certificate
    presented as the server's own. Returns the paths of ``ca`` (what clients trust), ``cert`` and ``key``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    paths = {name: folder / f"{name}.pem" for name in ("ca", "ca-key", "cert", "key", "csr")}
    ext = folder / "leaf.ext"
    ext.write_text(
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
    )
    curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for argv in (
        ["req", "-x509", *curve, "-keyout", paths["ca-key"], "-out", paths["ca"], "-days", "2",
         "-subj", "/CN=binance-archive benchmark CA"],
        ["req", "-new", *curve, "-keyout", paths["key"], "-out", paths["csr"], "-subj", "/CN=127.0.0.1"],
        ["x509", "-req", "-in", paths["csr"], "-CA", paths["ca"], "-CAkey", paths["ca-key"], "-CAcreateserial",
         "-out", paths["cert"], "-days", "2", "-extfile", ext],
    ):  # fmt: skip
        done = subprocess.run(["openssl", *map(str, argv)], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"openssl {argv[0]} failed: {done.stderr.strip()[-400:]}")
    return {"ca": paths["ca"], "cert": paths["cert"], "key": paths["key"]}


def _version(binary: str) -> str:
    done = subprocess.run([binary, "-v"], capture_output=True, text=True, check=False)
    return (done.stderr or done.stdout).strip().removeprefix("nginx version: ")


class Mark:
    """Where the counters stood when a run started."""

    def __init__(self, offsets: dict[float, int], cpu: float) -> None:
        self.offsets = offsets
        self.cpu = cpu


class NginxServer:
    """nginx as a child process: one server block per latency and scheme, each with its own access log."""

    kind = "nginx"
    tls = True

    def __init__(self, tree: Path, bucket: str, latencies: list[float], binary: str, modules: list[str]) -> None:
        self.tree = tree
        self.bucket = bucket
        self.latencies = latencies
        self.binary = binary
        self.modules = modules
        self.version = _version(binary)
        self.dir = Path(tempfile.mkdtemp(prefix="bench-nginx-"))
        pairs = [(lat, scheme) for lat in latencies for scheme in SCHEMES]
        self.ports = dict(zip(pairs, free_ports(len(pairs)), strict=True))
        self.certificates: dict[str, Path] = {}
        self.proc: subprocess.Popen[bytes] | None = None

    def describe(self) -> str:
        return (
            f"nginx {self.version} (Debian nginx-light, lua ngx.sleep for the delay), 2 workers, sendfile; HTTPS "
            "with TLS 1.3 (a P-256 certificate for 127.0.0.1 signed by a CA made for the run), HTTP/2 offered by ALPN"
        )

    @property
    def ca_file(self) -> Path:
        """The CA every HTTPS client is told to trust."""
        return self.certificates["ca"]

    def _log(self, latency: float, scheme: str = "http") -> Path:
        suffix = {"http": "", "https": "-tls", "https1": "-tls-h1", "https-far": "-tls-far"}[scheme]
        return self.dir / f"access-{int(latency * 1000)}ms{suffix}.log"

    def config(self) -> str:
        root = self.tree
        user = "user root root;\n" if os.geteuid() == 0 else ""  # the tree may be readable by its owner only
        temps = "".join(
            f"    {name}_temp_path {self.dir}/tmp-{name};\n"
            for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        servers = []
        for (latency, scheme), port in self.ports.items():
            delay = f"        access_by_lua_block {{ ngx.sleep({latency}) }}\n" if latency > 0 else ""
            # nginx 1.22 takes http2 on the listen line (1.25 moved it to "http2 on;"); ALPN then offers h2 and
            # http/1.1 and each client picks. Session tickets and a session cache, as a CDN's front would have.
            http2 = " http2" if scheme != "https1" else ""  # https1: the same TLS, ALPN offering HTTP/1.1 only
            # https-far: each handshake waits the latency before the certificate goes out. The certificate's
            # callback is the one that may sleep here (a yield in the ClientHello's fails the handshake with this
            # nginx and OpenSSL), and a resumed session skips it: so sessions are not resumed there, and every
            # new connection pays the delay (a TLS 1.3 resumption costs a round trip on a real link too).
            hello = (
                f"        ssl_certificate_by_lua_block {{ ngx.sleep({latency}) }}\n        ssl_session_tickets off;\n"
                if scheme == "https-far" and latency > 0
                else ""
            )
            tls = (
                f"        listen 127.0.0.1:{port} ssl{http2} backlog=4096;\n"
                f"{hello}"
                f"        ssl_certificate {self.certificates.get('cert')};\n"
                f"        ssl_certificate_key {self.certificates.get('key')};\n"
                "        ssl_protocols TLSv1.2 TLSv1.3;\n"
                f"        ssl_session_cache {'off' if hello else 'shared:bench:10m'};\n"
                "        http2_max_concurrent_streams 256;\n"
                if scheme != "http"
                else f"        listen 127.0.0.1:{port} backlog=4096;\n"
            )
            servers.append(
                f"    server {{\n"
                f"{tls}"
                f"        access_log {self._log(latency, scheme)} bench;\n"
                f"{delay}"
                f"        root {root};\n"
                f"        location /data/ {{ alias {root}/{self.bucket}/data/; }}\n"
                f"        location = /{self.bucket} {{ {self._listing_lua()} }}\n"
                f"    }}\n"
            )
        loads = "".join(f"load_module {m};\n" for m in self.modules)
        return (
            f"{loads}{user}worker_processes 2;\nworker_rlimit_nofile 65536;\n"
            f"pid {self.dir}/nginx.pid;\nerror_log {self.dir}/error.log warn;\n"
            "events { worker_connections 8192; }\n"
            "http {\n"
            "    log_format bench '$request_method $status $body_bytes_sent $server_protocol $request_uri';\n"
            "    types { application/zip zip; text/plain CHECKSUM; }\n"
            "    default_type application/octet-stream;\n"
            "    sendfile on; tcp_nopush on; tcp_nodelay on;\n"
            "    keepalive_timeout 75s; keepalive_requests 1000000;\n"
            "    open_file_cache max=10000 inactive=60s; open_file_cache_valid 120s;\n"
            f"{temps}"
            f"{''.join(servers)}"
            "}\n"
        )

    def _listing_lua(self) -> str:
        """The bucket's S3 listing (``GET /BUCKET?list-type=2&prefix=P&delimiter=/``), as the s5cmd transport asks
        it to check the symbols a run names: answered from the files :meth:`write_listings` made, one per folder of
        folders; an empty listing for a prefix with no folder; 501 for any listing it cannot answer (a folder of
        files, no delimiter, a page after the first), so no client reads a wrong answer as the truth."""
        folder = self.dir / "listings"
        return (
            "default_type application/xml; content_by_lua_block { "
            "local a = ngx.req.get_uri_args(); local p = a['prefix'] or ''; "
            "if a['delimiter'] ~= '/' or a['continuation-token'] or a['start-after'] then "
            "ngx.status = 501; ngx.say('<Error><Code>NotImplemented</Code></Error>'); return end; "
            f"local f = io.open('{folder}/' .. ngx.md5(p) .. '.xml', 'rb'); "
            "if f then ngx.print(f:read('*a')); f:close(); return end; "
            f"f = io.open('{folder}/' .. ngx.md5(p) .. '.files', 'rb'); "
            "if f then f:close(); ngx.status = 501; ngx.say('<Error><Code>NotImplemented</Code></Error>'); return end; "
            f'ngx.print(\'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="{_S3_NS}">'
            f"<Name>{self.bucket}</Name><Prefix>' .. p .. '</Prefix><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys>"
            "<Delimiter>/</Delimiter><IsTruncated>false</IsTruncated></ListBucketResult>') }"
        )

    def write_listings(self) -> None:
        """One listing file per folder of the tree that holds folders only (what a run's symbol check asks): its
        subfolders as common prefixes; a marker for each folder that holds files (answered 501)."""
        folder = self.dir / "listings"
        folder.mkdir(exist_ok=True)
        top = self.tree / self.bucket
        for path, subfolders, files in os.walk(top):
            prefix = "" if Path(path) == top else Path(path).relative_to(top).as_posix() + "/"
            name = folder / hashlib.md5(prefix.encode()).hexdigest()
            if files:
                name.with_suffix(".files").touch()
                continue
            entries = "".join(
                f"<CommonPrefixes><Prefix>{escape(prefix + sub)}/</Prefix></CommonPrefixes>"
                for sub in sorted(subfolders)
            )
            name.with_suffix(".xml").write_text(
                f'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="{_S3_NS}"><Name>{self.bucket}</Name>'
                f"<Prefix>{escape(prefix)}</Prefix><KeyCount>{len(subfolders)}</KeyCount><MaxKeys>1000</MaxKeys>"
                f"<Delimiter>/</Delimiter><IsTruncated>false</IsTruncated>{entries}</ListBucketResult>"
            )

    def start(self) -> None:
        self.write_listings()
        self.certificates = make_certificates(self.dir / "tls")
        conf = self.dir / "nginx.conf"
        conf.write_text(self.config())
        for latency, scheme in self.ports:
            self._log(latency, scheme).touch()
        argv = [
            self.binary,
            "-c",
            str(conf),
            "-p",
            str(self.dir),
            "-e",
            str(self.dir / "error.log"),
            "-g",
            "daemon off;",
        ]
        with open(self.dir / "stderr.log", "wb") as stderr:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"nginx exited: {(self.dir / 'stderr.log').read_text()[-800:]}"
                    f"{(self.dir / 'error.log').read_text()[-800:]}"
                )
            if all(_port_open(p) for p in self.ports.values()):
                return
            time.sleep(0.05)
        raise RuntimeError("nginx did not open its ports within 10 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: the master stops its workers
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def base_url(self, latency: float, scheme: str = "http") -> str:
        return f"{'https' if scheme.startswith('https') else 'http'}://127.0.0.1:{self.ports[(latency, scheme)]}"

    def _pids(self) -> list[int]:
        assert self.proc is not None
        master = self.proc.pid
        pids = [master]
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
                    if int(fields[1]) == master:
                        pids.append(int(entry.name))
        return pids

    def cpu_seconds(self) -> float:
        total = 0
        for pid in self._pids():
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / _TICKS

    def mark(self) -> Mark:
        return Mark({port: self._log(*port).stat().st_size for port in self.ports}, self.cpu_seconds())

    def requests_since(self, mark: Mark, latency: float, scheme: str = "http") -> dict[str, Any]:
        """Requests answered since ``mark`` on the ``latency`` port of ``scheme``: by method, status and protocol
        (``HTTP/1.1``, ``HTTP/2.0``), from the log."""
        by_method: collections.Counter[str] = collections.Counter()
        by_status: collections.Counter[str] = collections.Counter()
        by_protocol: collections.Counter[str] = collections.Counter()
        sent = 0
        with open(self._log(latency, scheme), "rb") as handle:
            handle.seek(mark.offsets[(latency, scheme)])
            for line in handle:
                method, status, nbytes, protocol, _ = line.decode("utf-8", "replace").split(" ", 4)
                by_method[method] += 1
                by_status[status] += 1
                by_protocol[protocol] += 1
                sent += int(nbytes) if nbytes.isdigit() else 0
        return {
            "total": sum(by_method.values()),
            "by_method": dict(by_method),
            "by_status": dict(by_status),
            "by_protocol": dict(by_protocol),
            "bytes_sent": sent,
            "server_cpu_s": self.cpu_seconds() - mark.cpu,
        }


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class FakeServer:
    """The fallback: the project's FakeArchiveServer, one per latency, in a thread of this process."""

    kind = "fake"
    tls = False  # HTTPS workloads are left out with this server

    def __init__(self, tree: Path, bucket: str, latencies: list[float]) -> None:
        self.tree = tree
        self.bucket = bucket
        self.latencies = latencies
        self.servers: dict[float, Any] = {}
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fake-archive", daemon=True)

    def describe(self) -> str:
        return (
            "binance_archive.testing.FakeArchiveServer (aiohttp, in a thread of the harness; nginx was not available)"
        )

    def start(self) -> None:
        from binance_archive.testing import FakeArchiveServer

        self.thread.start()

        async def start_all() -> None:
            for latency in self.latencies:
                server = FakeArchiveServer(self.tree / self.bucket, bucket=self.bucket, latency=latency)
                await server.start()
                self.servers[latency] = server

        asyncio.run_coroutine_threadsafe(start_all(), self.loop).result(30)

    def stop(self) -> None:
        async def close_all() -> None:
            for server in self.servers.values():
                await server.close()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(close_all(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def base_url(self, latency: float, scheme: str = "http") -> str:
        assert scheme == "http", "the fake server serves plain HTTP only"
        return str(self.servers[latency].base_url)

    def cpu_seconds(self) -> float:
        return time.process_time()  # the harness itself is idle while a contender runs

    def mark(self) -> Mark:
        for server in self.servers.values():
            server.stats.reset()
        return Mark({}, self.cpu_seconds())

    def requests_since(self, mark: Mark, latency: float, scheme: str = "http") -> dict[str, Any]:
        stats = self.servers[latency].stats
        return {
            "total": stats.requests,
            "by_method": dict(stats.by_method),
            "by_status": {str(k): v for k, v in stats.by_status.items()},
            "bytes_sent": stats.bytes_sent,
            "server_cpu_s": self.cpu_seconds() - mark.cpu,
        }


def make_server(tree: Path, bucket: str, latencies: list[float], log: Any, *, force_fake: bool = False) -> Any:
    """nginx if it can be found or installed, else the fake server; says which."""
    if not force_fake:
        found = find_or_install_nginx(log)
        if found is not None:
            server = NginxServer(tree, bucket, latencies, *found)
            try:
                server.start()
                return server
            except Exception as exc:
                log(f"server: nginx failed to start ({exc}); falling back to the fake server")
                server.stop()
    server = FakeServer(tree, bucket, latencies)
    server.start()
    return server
