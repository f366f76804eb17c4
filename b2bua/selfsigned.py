"""Self-signed certificates for the lab's TLS listeners and for tests (loopback only).

A real deployment brings its own certificate; the lab makes one on first start so that
`make lab` works on a fresh machine without shipping a private key in the repository.
"""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def make_self_signed(cert_file: str | Path, key_file: str | Path, *, names: tuple[str, ...] = ("localhost",),
                     addresses: tuple[str, ...] = ("127.0.0.1", "::1"), days: int = 365) -> None:
    """Write a P-256 key and a self-signed certificate valid for `names` and `addresses`."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0] if names else addresses[0])])
    now = datetime.datetime.now(datetime.timezone.utc)
    alt_names: list[x509.GeneralName] = [x509.DNSName(name) for name in names]
    alt_names += [x509.IPAddress(ipaddress.ip_address(address)) for address in addresses]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = Path(cert_file), Path(key_file)
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    key_path.parent.mkdir(parents=True, exist_ok=True)
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


def ensure_self_signed(cert_file: str | Path, key_file: str | Path) -> bool:
    """Create the pair when either file is missing; True when it was created."""
    if Path(cert_file).exists() and Path(key_file).exists():
        return False
    make_self_signed(cert_file, key_file)
    return True
