"""Self-signed certificates for the lab's TLS listeners (eAPI, gNMI) and private key files.

Lab only: clients pin the certificate (pygnmi fetches it) or skip verification, as against a switch's factory
certificate. ECDSA P-256 keeps handshakes cheap for hundreds of emulated switches.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def write_private_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` readable by the owner only: the file is 0600 before its first byte lands."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def self_signed_certificate(common_name: str, addresses: Sequence[str] = (), days: int = 365) -> tuple[bytes, bytes]:
    """Return ``(certificate_pem, private_key_pem)``, valid for ``addresses`` (IPs or DNS names) when given.

    One certificate may carry every lab switch's address as a SAN, so a single (cert, key) pair serves the
    whole lab.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    sans: list[x509.GeneralName] = []
    for address in addresses:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(address)))
        except ValueError:
            sans.append(x509.DNSName(address))
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))  # tolerate clock skew between lab and client
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    )
    if sans:
        cert = cert.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = cert.sign(key, hashes.SHA256())
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert_pem, key_pem
