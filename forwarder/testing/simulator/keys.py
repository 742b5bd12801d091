"""Key material made at start: the JWT bearer key pair and a self-signed certificate (also for TLS)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class KeyFiles:
    private_key_path: Path  # PEM, PKCS#8, unencrypted: what a client signs JWT assertions with
    public_key_path: Path  # PEM public key the simulator trusts
    cert_path: Path  # self-signed certificate (the connected app's "digital certificate"; also TLS)
    public_key_pem: bytes


def generate(directory: Path, host: str = "127.0.0.1") -> KeyFiles:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    cert = _self_signed(key, host)
    paths = (directory / "server.key", directory / "server.pub", directory / "server.crt")
    paths[0].write_bytes(private_pem)
    paths[0].chmod(0o600)
    paths[1].write_bytes(public_pem)
    paths[2].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return KeyFiles(*paths, public_key_pem=public_pem)


def _self_signed(key: rsa.RSAPrivateKey, host: str) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sf-forwarder simulator")])
    now = datetime.now(UTC)
    alt: list[x509.GeneralName] = [x509.DNSName("localhost")]
    try:
        alt.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        alt.append(x509.DNSName(host))
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
