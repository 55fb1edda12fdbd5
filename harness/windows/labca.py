"""The lab CA that signs every host's RDP certificate.

Model choice: Windows serves a *self-signed* certificate from the Remote Desktop store, and a
client connects without warnings only once that certificate is trusted (accepted, or deployed by
policy). The lab stands in for that trust with one CA per lab directory: TermService's
certificate, including every renewal, is signed by it, so a client that trusts the lab CA
trusts each host's current certificate, and an expired, mismatched or missing one still fails
for the same reasons it would on Windows.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from harness.pki import load_private_key_cached, rsa_key

RSA_BITS = 2048
RDP_CERT_DAYS = 180  # Windows' self-signed RDP certificate is valid for six months


def new_key() -> rsa.RSAPrivateKey:
    """A fresh RSA-2048 key (from the matrix run's KeyPool when one is active)."""
    return rsa_key()


def key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + f".{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


@dataclass(frozen=True)
class LabCA:
    cert: x509.Certificate
    key: rsa.RSAPrivateKey

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @classmethod
    def load_or_create(cls, lab_dir: Path) -> LabCA:
        """The lab's CA from lab_dir/lab-ca, created on first use."""
        folder = lab_dir / "lab-ca"
        cert_file, key_file = folder / "ca.crt", folder / "ca.key"
        if cert_file.exists() and key_file.exists():
            key = load_private_key_cached(key_file.read_bytes())
            assert isinstance(key, rsa.RSAPrivateKey)
            return cls(x509.load_pem_x509_certificate(cert_file.read_bytes()), key)
        folder.mkdir(parents=True, exist_ok=True)
        key = new_key()
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rdplab Lab CA")])
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=3650))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                         False), critical=True)
            .sign(key, hashes.SHA256())
        )
        _write_atomic(key_file, key_pem(key))
        _write_atomic(cert_file, cert.public_bytes(serialization.Encoding.PEM))
        return cls(cert, key)

    def issue(self, public_key: rsa.RSAPublicKey, fqdn: str, names: list[str],
              not_before: dt.datetime, not_after: dt.datetime) -> x509.Certificate:
        """A server-authentication certificate: subject CN=fqdn, the names as SAN."""
        sans: list[x509.GeneralName] = []
        for n in names:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(n)))
            except ValueError:
                sans.append(x509.DNSName(n))
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, fqdn)]))
            .issuer_name(self.cert.subject).public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before.replace(microsecond=0))
            .not_valid_after(not_after.replace(microsecond=0))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.KeyUsage(True, False, True, False, False, False, False, False,
                                         False), critical=False)
            .sign(self.key, hashes.SHA256())
        )


def self_signed(key: rsa.RSAPrivateKey, fqdn: str, names: list[str], not_before: dt.datetime,
                not_after: dt.datetime) -> x509.Certificate:
    """A truly self-signed server certificate (issuer = subject), as New-SelfSignedCertificate
    makes: no client trusts it until it is deployed to that client's Trusted Root store."""
    sans: list[x509.GeneralName] = []
    for n in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            sans.append(x509.DNSName(n))
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, fqdn)])
    return (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(not_before.replace(microsecond=0))
        .not_valid_after(not_after.replace(microsecond=0))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                              ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.KeyUsage(True, False, True, False, False, False, False, False,
                                     False), critical=False)
        .sign(key, hashes.SHA256())
    )


def termservice_self_signed(key: rsa.RSAPrivateKey, fqdn: str, not_before: dt.datetime,
                            not_after: dt.datetime) -> x509.Certificate:
    """The certificate TermService makes for itself when it has none: subject and issuer
    CN=<the machine's FQDN>, no subjectAltName, Server Authentication only, six months
    (event 1056 names it by the FQDN; rdp-facts §10.1)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, fqdn)])
    return (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(not_before.replace(microsecond=0))
        .not_valid_after(not_after.replace(microsecond=0))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.KeyUsage(False, False, True, True, False, False, False, False,
                                     False), critical=False)
        .sign(key, hashes.SHA256())
    )
