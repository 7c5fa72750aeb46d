"""The embedded S3's side doors, closed: weed's master, volume server and filer have HTTP and gRPC APIs of their own
that bypass S3's signatures (a plain GET on the filer returned any object). Each of them is made to require a client
certificate (mutual TLS on every internal HTTP and gRPC port) and a signed JWT for reads and writes, so the only
way to the bytes is a signed S3 request on the S3 port.

Written under ``data_dir/s3``: ``tls/`` (a private CA and one certificate that every weed component presents, as
server and as client; keys mode 0600, made once) and ``security.toml`` (mode 0600, read by weed from its working
directory; fresh JWT keys at every start).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import secrets
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALID_FOR = datetime.timedelta(days=3650)
_LOOPBACK = ipaddress.IPv4Address("127.0.0.1")
_JWT_SECTIONS = ("jwt.signing", "jwt.signing.read", "jwt.filer_signing", "jwt.filer_signing.read")
_GRPC_COMPONENTS = ("master", "volume", "filer", "s3", "client")
_HTTPS_SERVERS = ("master", "volume", "filer")


@dataclass(frozen=True)
class Tls:
    ca: Path
    cert: Path
    key: Path

    def client_context(self) -> ssl.SSLContext:
        """What our own start-up checks present to weed's internal HTTPS ports."""
        context = ssl.create_default_context(cafile=str(self.ca))
        context.load_cert_chain(str(self.cert), str(self.key))
        return context


def close_side_doors(root: Path) -> Tls:
    """Write the certificates (first time only) and a new security.toml; returns the TLS files."""
    tls = _certificates(root / "tls")
    _write_private(root / "security.toml", _security_toml(tls).encode())
    return tls


def _certificates(folder: Path) -> Tls:
    tls = Tls(folder / "ca.crt", folder / "node.crt", folder / "node.key")
    if all(path.exists() for path in (tls.ca, tls.cert, tls.key)):
        return tls
    folder.mkdir(mode=0o700, exist_ok=True)
    ca_key, node_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "scopix embedded S3 CA")])
    now = datetime.datetime.now(datetime.UTC)
    ca = (
        _builder(ca_name, ca_name, ca_key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    node_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "scopix-embedded-s3")])
    node = (
        _builder(node_name, ca_name, node_key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(_LOOPBACK), x509.DNSName("localhost")]), critical=False
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write_private(tls.key, node_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ))  # fmt: skip
    _write_private(tls.cert, node.public_bytes(serialization.Encoding.PEM))
    _write_private(tls.ca, ca.public_bytes(serialization.Encoding.PEM))  # last: its presence says all are there
    return tls


def _builder(subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePublicKey, now: datetime.datetime):  # type: ignore[no-untyped-def]
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALID_FOR)
    )


def _security_toml(tls: Tls) -> str:
    cert, key, ca = (f'"{path}"' for path in (tls.cert, tls.key, tls.ca))
    lines = ["[access]", "ui = false", "[filer.expose_directory_metadata]", "enabled = false"]
    for section in _JWT_SECTIONS:
        lines += [f"[{section}]", f'key = "{secrets.token_urlsafe(32)}"', "expires_after_seconds = 10"]
    lines += ["[grpc]", f"ca = {ca}"]
    for component in _GRPC_COMPONENTS:
        lines += [f"[grpc.{component}]", f"cert = {cert}", f"key = {key}"]
    lines += ["[https.client]", "enabled = true", f"cert = {cert}", f"key = {key}", f"ca = {ca}"]
    for server in _HTTPS_SERVERS:
        lines += [f"[https.{server}]", f"cert = {cert}", f"key = {key}", f"ca = {ca}"]
    return "\n".join(lines) + "\n"


def _write_private(path: Path, data: bytes) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
    path.chmod(0o600)
