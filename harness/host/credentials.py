"""Reading the served certificate and key from files, as TermService does at each connection."""

from __future__ import annotations

import functools
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from .policy import CredentialUnavailable, TlsCredential


def check_pair(cert_pem: bytes, key_pem: bytes) -> TlsCredential:
    """Parse both and check that the key belongs to the certificate.

    The outcome depends only on the bytes, so a good pair is remembered: loading an RSA private
    key (with its consistency check) costs ~40 ms, more than the whole rest of a connection.
    Changed bytes (a renewed or corrupted file) are checked afresh; failures are never cached.
    """
    return _check_pair(cert_pem, key_pem)


@functools.lru_cache(maxsize=64)
def _check_pair(cert_pem: bytes, key_pem: bytes) -> TlsCredential:
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError as exc:
        raise CredentialUnavailable(f"certificate unreadable: {exc}", 36870) from exc
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise CredentialUnavailable(f"private key unreadable: {exc}", 36870) from exc
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    ours = key.public_key().public_bytes(serialization.Encoding.DER, spki)
    theirs = cert.public_key().public_bytes(serialization.Encoding.DER, spki)
    if ours != theirs:
        raise CredentialUnavailable("private key does not match the certificate", 36870)
    return TlsCredential(cert_pem, key_pem)


def file_credential(cert_file: Path, key_file: Path) -> TlsCredential:
    """Read and check the pair now; CredentialUnavailable when either file cannot be used."""
    try:
        cert_pem = cert_file.read_bytes()
    except OSError as exc:
        raise CredentialUnavailable(f"{cert_file}: {exc.strerror or exc}", 36870) from exc
    try:
        key_pem = key_file.read_bytes()
    except OSError as exc:
        raise CredentialUnavailable(f"{key_file}: {exc.strerror or exc}", 36870) from exc
    return check_pair(cert_pem, key_pem)
