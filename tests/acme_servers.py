"""Real Pebble and pebble-challtestsrv on free loopback ports (Debian package `pebble`).

Pebble serves its ACME directory over HTTPS with a throwaway CA made here with `cryptography`
(the Debian package ships no test certificate); challtestsrv is the DNS server Pebble and the
ownership checks ask, managed through its HTTP API. Both are killed by PID when done.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port free for TCP and UDP on 127.0.0.1."""
    while True:
        with socket.socket(socket.AF_INET, kind) as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        other = socket.SOCK_DGRAM if kind == socket.SOCK_STREAM else socket.SOCK_STREAM
        try:
            with socket.socket(socket.AF_INET, other) as second:
                second.bind(("127.0.0.1", port))
        except OSError:
            continue
        return port


def make_tls_files(folder: Path) -> Path:
    """A throwaway CA and a `localhost`/127.0.0.1 leaf for Pebble's HTTPS; returns the CA file."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "streamflow test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    import ipaddress

    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (folder / "cert.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return folder / "ca.pem"


def _wait(check: Any, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as error:
            last = error
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not start: {last}")


@dataclass
class ChallTestSrv:
    """A running pebble-challtestsrv: mock DNS on `dns_port`, management API on `url`."""

    folder: Path
    dns_port: int = 0
    management_port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.management_port}"

    @property
    def resolver(self) -> str:
        return f"127.0.0.1:{self.dns_port}"

    def start(self) -> ChallTestSrv:
        self.dns_port = free_port(socket.SOCK_DGRAM)
        self.management_port = free_port()
        log = (self.folder / "challtestsrv.log").open("ab")
        self.process = subprocess.Popen(
            [
                shutil.which("pebble-challtestsrv") or "pebble-challtestsrv",
                "-http01",
                "",
                "-https01",
                "",
                "-tlsalpn01",
                "",
                "-dns01",
                self.resolver,
                "-management",
                f"127.0.0.1:{self.management_port}",
                "-defaultIPv6",
                "",
                "-defaultIPv4",
                "127.0.0.1",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        _wait(
            lambda: httpx.post(f"{self.url}/clear-txt", json={"host": "up.test."}).is_success,
            "challtestsrv",
        )
        return self

    def post(self, path: str, body: dict[str, Any]) -> None:
        httpx.post(f"{self.url}{path}", json=body, timeout=5).raise_for_status()

    def set_txt(self, host: str, value: str) -> None:
        self.post("/set-txt", {"host": host.rstrip(".") + ".", "value": value})

    def clear_txt(self, host: str) -> None:
        self.post("/clear-txt", {"host": host.rstrip(".") + "."})

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@dataclass
class Pebble:
    """A running Pebble ACME server answering at `directory_url`, trusted through `ca_bundle`."""

    folder: Path
    dns_server: str
    env: dict[str, str] = field(default_factory=dict)
    http_port: int = 5002
    acme_port: int = 0
    management_port: int = 0
    process: subprocess.Popen[bytes] | None = None
    ca_bundle: str = ""

    @property
    def directory_url(self) -> str:
        return f"https://127.0.0.1:{self.acme_port}/dir"

    @property
    def management_url(self) -> str:
        return f"https://127.0.0.1:{self.management_port}"

    def start(self) -> Pebble:
        self.folder.mkdir(parents=True, exist_ok=True)
        if not self.ca_bundle:
            self.ca_bundle = str(make_tls_files(self.folder))
        if not self.acme_port:
            self.acme_port = free_port()
            self.management_port = free_port()
        config = {
            "pebble": {
                "listenAddress": f"127.0.0.1:{self.acme_port}",
                "managementListenAddress": f"127.0.0.1:{self.management_port}",
                "certificate": str(self.folder / "cert.pem"),
                "privateKey": str(self.folder / "key.pem"),
                "httpPort": self.http_port,
                "tlsPort": 5001,
                "ocspResponderURL": "",
                "externalAccountBindingRequired": False,
            }
        }
        (self.folder / "pebble.json").write_text(json.dumps(config))
        env = {
            **os.environ,
            "PEBBLE_VA_NOSLEEP": "1",
            "PEBBLE_WFE_NONCEREJECT": "0",
            "PEBBLE_AUTHZREUSE": "0",
            **self.env,
        }
        log = (self.folder / "pebble.log").open("ab")
        self.process = subprocess.Popen(
            [
                shutil.which("pebble") or "pebble",
                "-config",
                str(self.folder / "pebble.json"),
                "-dnsserver",
                self.dns_server,
                "-strict",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        _wait(
            lambda: httpx.get(self.directory_url, verify=self.ca_bundle, timeout=2).is_success,
            "pebble",
        )
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def restart(self) -> None:
        """Stop and start on the same ports: Pebble forgets every account and order."""
        self.stop()
        self.start()

    def certificate_status(self, serial_hex: str) -> dict[str, Any]:
        response = httpx.get(
            f"{self.management_url}/cert-status-by-serial/{serial_hex}",
            verify=self.ca_bundle,
            timeout=5,
        )
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result


# --- pytest fixtures (imported by the conftest of each folder that needs them) --------------

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def challtestsrv(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """pebble-challtestsrv for the session: mock DNS + management API on loopback."""
    server = ChallTestSrv(tmp_path_factory.mktemp("challtestsrv")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def pebble(tmp_path_factory: pytest.TempPathFactory, challtestsrv: ChallTestSrv) -> Any:
    """Pebble for the session, validating against challtestsrv's DNS."""
    server = Pebble(tmp_path_factory.mktemp("pebble"), challtestsrv.resolver).start()
    yield server
    server.stop()


@dataclass
class Knot:
    """Knot DNS authoritative for `zone` on a loopback port, accepting TSIG-signed updates."""

    folder: Path
    zone: str = "example.test"
    key_name: str = "acme-key"
    key_secret: str = ""
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def server(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Knot:
        import base64

        self.port = free_port(socket.SOCK_DGRAM)
        self.key_secret = base64.b64encode(os.urandom(32)).decode()
        folder = self.folder
        (folder / f"{self.zone}.zone").write_text(
            f"$ORIGIN {self.zone}.\n$TTL 60\n"
            f"@ IN SOA ns.{self.zone}. admin.{self.zone}. 1 60 60 600 60\n"
            f"@ IN NS ns.{self.zone}.\nns IN A 127.0.0.1\n"
        )
        (folder / "knot.conf").write_text(
            f"server:\n    listen: 127.0.0.1@{self.port}\n    rundir: {folder}\n"
            f"    user: {_user_and_group()}\n"
            f"database:\n    storage: {folder}\n"
            f"key:\n  - id: {self.key_name}\n    algorithm: hmac-sha256\n"
            f"    secret: {self.key_secret}\n"
            f"acl:\n  - id: update\n    key: {self.key_name}\n    action: update\n"
            f"zone:\n  - domain: {self.zone}\n    file: {folder}/{self.zone}.zone\n"
            "    acl: update\n    zonefile-sync: -1\n    journal-content: none\n"
            "log:\n  - target: stderr\n    any: warning\n"
        )
        log = (folder / "knot.log").open("ab")
        self.process = subprocess.Popen(
            [shutil.which("knotd") or "/usr/sbin/knotd", "-c", str(folder / "knot.conf")],
            stdout=log,
            stderr=subprocess.STDOUT,
        )

        def answers() -> bool:
            import dns.message
            import dns.query

            query = dns.message.make_query(f"ns.{self.zone}", "A")
            return dns.query.udp(query, "127.0.0.1", port=self.port, timeout=0.5).answer != []

        _wait(answers, "knotd")
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


def _user_and_group() -> str:
    import grp
    import pwd

    return f"{pwd.getpwuid(os.getuid()).pw_name}:{grp.getgrgid(os.getgid()).gr_name}"


def knot_available() -> bool:
    return shutil.which("knotd") is not None or Path("/usr/sbin/knotd").exists()


@pytest.fixture(scope="session")
def knot(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Knot DNS (Debian package `knot`) for the session."""
    server = Knot(tmp_path_factory.mktemp("knot")).start()
    yield server
    server.stop()
