"""A real rsyslogd for the syslog sink's end-to-end tests: a throwaway PKI (CA, server, client), the receiver
config verified in reference §4.1 on free loopback ports (plus imrelp for RELP, plain and TLS), start and
stop by pid (SIGKILL too, for the chaos tests), and the parsed JSON lines.

rsyslog writes every parsed RFC 5424 field of each message as one JSON line (``received.jsonl``), so tests
assert on what a real syslog server understood, not on our own parser.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

#: Debian packages the tests need (``.ci/run`` / ``make install`` must install them).
PACKAGES = "rsyslog rsyslog-gnutls rsyslog-openssl rsyslog-relp"

CONFIG = """
global(
  workDirectory="@DIR@/work"
  maxMessageSize="64k"
  parser.escapeControlCharactersOnReceive="off"
  defaultNetstreamDriverCAFile="@DIR@/tls/ca.pem"
  defaultNetstreamDriverCertFile="@DIR@/tls/server.pem"
  defaultNetstreamDriverKeyFile="@DIR@/tls/server.key"
)
module(load="imudp")
module(load="imtcp" maxSessions="200")
module(load="mmpstrucdata")
module(load="imrelp")
input(type="imudp" address="127.0.0.1" port="@UDP@" ruleset="capture" name="udp")
input(type="imtcp" address="127.0.0.1" port="@TCP@" ruleset="capture" name="tcp")
input(type="imtcp" address="127.0.0.1" port="@TLS_GTLS@" ruleset="capture" name="tls-gtls"
      streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")
input(type="imtcp" address="127.0.0.1" port="@TLS_OSSL@" ruleset="capture" name="tls-ossl"
      streamDriver.name="ossl" streamDriver.mode="1" streamDriver.authMode="anon")
input(type="imtcp" address="127.0.0.1" port="@MTLS@" ruleset="capture" name="mtls-ossl"
      streamDriver.name="ossl" streamDriver.mode="1" streamDriver.authMode="x509/certvalid")
input(type="imrelp" address="127.0.0.1" port="@RELP@" ruleset="relp_capture" name="relp")
# imrelp's TLS always authenticates the client too (librelp's default authMode is fingerprint); certvalid
# checks the client certificate against the CA (rsyslog imrelp tls.authMode).
input(type="imrelp" address="127.0.0.1" port="@RELP_TLS@" ruleset="relp_capture" name="relp-tls" tls="on"
      tls.cacert="@DIR@/tls/ca.pem" tls.mycert="@DIR@/tls/server.pem" tls.myprivkey="@DIR@/tls/server.key"
      tls.authmode="certvalid")
template(name="jsonl" type="string" string="%$!all-json-plain%\\n")
template(name="ts3339" type="string" string="%timestamp:::date-rfc3339%")
ruleset(name="capture") {
  action(type="mmpstrucdata" sd_name.lowercase="off")
  set $!input = $inputname;
  set $!pri = cnum($pri);
  set $!facility = cnum($syslogfacility);
  set $!severity = cnum($syslogseverity);
  set $!version = $protocol-version;
  set $!timestamp = exec_template("ts3339");
  set $!hostname = $hostname;
  set $!app_name = $app-name;
  set $!procid = $procid;
  set $!msgid = $msgid;
  set $!structured_data = $structured-data;
  set $!msg = $msg;
  set $!raw = $rawmsg;
  action(type="omfile" file="@DIR@/received.jsonl" template="jsonl" flushOnTXEnd="on" asyncWriting="off")
}
# RELP input: a Direct queue runs the ruleset inside imrelp's callback, and librelp answers "200 OK" only
# after the callback returned (librelp scsyslog.c), so an acknowledged message is already in the file. With
# the default in-memory main queue a SIGKILL could lose acknowledged messages inside rsyslog.
ruleset(name="relp_capture" queue.type="Direct") {
  call capture
}
"""


#: The inputs listening on TCP ports (UDP aside), by their placeholder in CONFIG.
STREAM_INPUTS = ("TCP", "TLS_GTLS", "TLS_OSSL", "MTLS", "RELP", "RELP_TLS")


@dataclass(frozen=True)
class Pki:
    """PEM files of a test CA, a server certificate (localhost, 127.0.0.1) and a client certificate."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path  # a CA that signed nothing here: for "untrusted server" tests


def make_pki(directory: Path) -> Pki:
    """Write the CA, server and client certificates (EC P-256, valid for a day) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = _ca("sf-forwarder test CA")
    _, other_ca = _ca("another CA")
    paths = {}
    for name in ("server", "client"):
        key, cert = _leaf(name, ca_key, ca_cert)
        paths[name] = (
            _write_cert(directory / f"{name}.pem", cert),
            _write_key(directory / f"{name}.key", key),
        )
    _write_key(directory / "ca.key", ca_key)
    return Pki(
        ca=_write_cert(directory / "ca.pem", ca_cert),
        server_cert=paths["server"][0],
        server_key=paths["server"][1],
        client_cert=paths["client"][0],
        client_key=paths["client"][1],
        other_ca=_write_cert(directory / "other-ca.pem", other_ca),
    )


def _ca(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        _builder(name, name, key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _leaf(
    common_name: str, ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    san = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    usage = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    cert = (
        _builder(subject, ca_cert.subject, key.public_key())
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.ExtendedKeyUsage(usage), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def _builder(subject: x509.Name, issuer: x509.Name, public_key: Any) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
    )


def _write_cert(path: Path, cert: x509.Certificate) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return path


def parse_line(line: str | bytes) -> dict[str, Any] | None:
    """One output line as JSON; None for a line a SIGKILL cut short (rsyslog appends after it on restart).
    Such a message was never acknowledged over RELP: the chaos tests expect it again, whole."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def listening_ports() -> set[int]:
    """TCP ports in LISTEN state on this host (/proc/net/tcp and tcp6: state 0A, hex local port)."""
    ports = set()
    for table in (Path("/proc/net/tcp"), Path("/proc/net/tcp6")):
        if table.exists():
            for line in table.read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A":
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def rsyslogd_binary() -> str:
    """The rsyslogd path; a missing binary fails the test loudly (CI installs it), never skips it."""
    found = shutil.which("rsyslogd", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"]))
    if found is None:
        pytest.fail(f"rsyslogd not found: the syslog end-to-end tests need `apt-get install {PACKAGES}`")
    return found


def free_port(kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    """A port free on 127.0.0.1 right now (rsyslog binds it a moment later)."""
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Rsyslog:
    """One rsyslogd in the foreground with its own directory, ports and PKI."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.pki = make_pki(directory / "tls")
        (directory / "work").mkdir(exist_ok=True)
        self.ports = {
            "UDP": free_port(socket.SOCK_DGRAM),
            **{k: free_port() for k in STREAM_INPUTS},
        }
        self.output = directory / "received.jsonl"
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr = directory / "stderr.log"

    def address(self, port: str, scheme: str) -> str:
        """``scheme://127.0.0.1:<port>`` for one of UDP, TCP, TLS_GTLS, TLS_OSSL, MTLS, RELP, RELP_TLS."""
        return f"{scheme}://127.0.0.1:{self.ports[port]}"

    def start(self) -> None:
        """Write the config, start rsyslogd and return once every input accepts messages."""
        config = CONFIG.replace("@DIR@", str(self.dir))
        for key, port in self.ports.items():
            config = config.replace(f"@{key}@", str(port))
        (self.dir / "rsyslog.conf").write_text(config)
        command = [rsyslogd_binary(), "-n", "-f", str(self.dir / "rsyslog.conf"), "-i", str(self.dir / "pid")]
        with self._stderr.open("wb") as err:
            self._proc = subprocess.Popen(command, stdout=err, stderr=err)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        pending = set(STREAM_INPUTS)
        while pending and time.monotonic() < deadline:
            self._check_alive()
            # A listening socket is ready: the kernel queues connections from then on. Seen in the kernel's
            # table, not by connecting: librelp 1.11 sometimes loses its epoll registrations (EBADF on
            # EPOLL_CTL_ADD, and then other inputs went deaf) after a connect-and-close probe.
            pending -= {key for key in pending if self.ports[key] in listening_ports()}
            if pending:
                time.sleep(0.02)  # polling a process we do not control; bounded by the deadline
        if pending:
            self.fail(f"inputs {sorted(pending)} did not open within {timeout}s")
        self._wait_udp_ready(deadline)

    def _wait_udp_ready(self, deadline: float) -> None:
        # imudp gives no sign of life but a received message: ping until one is written.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            while time.monotonic() < deadline:
                udp.sendto(b"<14>1 - - probe - READY - ready", ("127.0.0.1", self.ports["UDP"]))
                time.sleep(0.05)
                if any(r.get("msgid") == "READY" for r in self.records()):
                    return
        self.fail("UDP input did not deliver a probe message")

    def _check_alive(self) -> None:
        if self._proc is not None and self._proc.poll() is not None:
            self.fail(f"rsyslogd exited with {self._proc.returncode}")

    def fail(self, why: str) -> None:
        """Fail the test with rsyslogd's own error output."""
        stderr = self._stderr.read_text(errors="replace") if self._stderr.exists() else ""
        pytest.fail(f"rsyslog fixture: {why}; packages needed: {PACKAGES}\nrsyslogd stderr:\n{stderr}")

    def records(self) -> list[dict[str, Any]]:
        """Every message rsyslog has written so far, as parsed JSON."""
        if not self.output.exists():
            return []
        lines = self.output.read_text(encoding="utf-8", errors="replace").splitlines()
        return [record for line in lines if (record := parse_line(line)) is not None]

    def wait_for_ids(self, ids: set[str], timeout: float = 5.0) -> dict[str, dict[str, Any]]:
        """Records by our SD ``id`` once all ``ids`` arrived; fails the test naming the missing ones."""
        deadline = time.monotonic() + timeout
        while True:
            found = {}
            for record in self.records():
                for params in record.get("rfc5424-sd", {}).values():
                    if params.get("id") in ids:
                        found[params["id"]] = record
            if set(found) >= ids or time.monotonic() > deadline:
                break
            time.sleep(0.05)  # rsyslog's output file offers no event to wait on; bounded by the deadline
        if not set(found) >= ids:
            self.fail(f"messages {sorted(ids - set(found))} never reached rsyslog")
        return found

    def stderr(self) -> str:
        """rsyslogd's diagnostics so far."""
        return self._stderr.read_text(errors="replace") if self._stderr.exists() else ""

    def kill(self) -> None:
        """SIGKILL and wait: rsyslog dies mid-session without a word (no serverclose, no FIN from RELP)."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)

    def stop(self) -> None:
        """SIGTERM and wait; idempotent."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
