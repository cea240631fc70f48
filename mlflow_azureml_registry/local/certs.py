"""A throwaway CA and a server certificate for the local workspace, plus a CA bundle to trust it.

The Azure SDKs refuse bearer tokens over plain HTTP and build blob URLs as ``https://<account>.blob.
<suffix>``, so both the control plane and Azurite need TLS. One leaf certificate serves both; its
SANs cover 127.0.0.1, localhost and the production-style Azurite host names. The bundle appends the
public roots from certifi, so a shell with ``REQUESTS_CA_BUNDLE`` set still reaches real services.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

SAN_DNS = ("localhost", "*.localhost", "*.blob.localhost", "*.blob.core.localhost")
SAN_IPS = ("127.0.0.1", "::1")


@dataclass(frozen=True)
class CertFiles:
    ca_cert: Path
    server_cert: Path
    server_key: Path
    bundle: Path  # local CA + certifi's public roots


def generate(directory: Path) -> CertFiles:
    """Write ``ca.pem``, ``server.pem``, ``server-key.pem`` and ``ca-bundle.pem`` into ``directory``."""
    import certifi
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
    until = now + dt.timedelta(days=30)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mlflow-azureml-registry local CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(until)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    sans = [x509.DNSName(n) for n in SAN_DNS] + [x509.IPAddress(ipaddress.ip_address(i)) for i in SAN_IPS]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(until)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    pem = serialization.Encoding.PEM
    files = CertFiles(
        directory / "ca.pem",
        directory / "server.pem",
        directory / "server-key.pem",
        directory / "ca-bundle.pem",
    )
    ca_pem = ca_cert.public_bytes(pem)
    files.ca_cert.write_bytes(ca_pem)
    files.server_cert.write_bytes(cert.public_bytes(pem) + ca_pem)
    files.server_key.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    files.server_key.chmod(0o600)
    files.bundle.write_bytes(ca_pem + b"\n" + Path(certifi.where()).read_bytes())
    return files
