"""Real X.509 material for the lab: a lab CA and RSA-2048 server certificates, as PEM bytes."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

RSA_BITS = 2048


@dataclass(frozen=True)
class KeyPair:
    cert_pem: bytes
    key_pem: bytes

    @property
    def cert(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)


def _pem_key(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def make_ca(common_name: str = "rdplab Lab CA", days: int = 3650) -> KeyPair:
    """A self-signed CA certificate and key."""
    key = _key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _pem_key(key))


def issue_server_cert(
    ca: KeyPair | None,
    common_name: str,
    *,
    names: list[str] | None = None,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    days: int = 180,
) -> KeyPair:
    """A server-authentication certificate for common_name (self-signed when ca is None).

    `names` become subjectAltName entries (DNS names or IP addresses). Windows' own RDP
    certificate is valid for six months, hence the default.
    """
    key = _key()
    now = _now()
    start = not_before or now - dt.timedelta(hours=1)
    end = not_after or start + dt.timedelta(days=days)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    sans: list[x509.GeneralName] = []
    for n in names or [common_name]:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            sans.append(x509.DNSName(n))
    issuer_cert = ca.cert if ca else None
    signer = serialization.load_pem_private_key(ca.key_pem, None) if ca else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_cert.subject if issuer_cert else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    )
    cert = builder.sign(signer, hashes.SHA256())  # type: ignore[arg-type]
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _pem_key(key))


def expired_window(days_ago: int = 30, lifetime_days: int = 180) -> tuple[dt.datetime, dt.datetime]:
    """not_before / not_after of a certificate that expired `days_ago` days ago."""
    end = _now() - dt.timedelta(days=days_ago)
    return end - dt.timedelta(days=lifetime_days), end


class KeyPool:
    """RSA keys made ahead of time and handed out in turn, for runs that build many labs.

    Within one matrix run every cell is a fresh lab; like VMs cloned from one snapshot they may
    share key material, so the pool makes `size` keys once and cycles through them. Each lab
    still writes, reads, parses and serves its keys and certificates for real.
    """

    _active: KeyPool | None = None

    def __init__(self, size: int = 8) -> None:
        self._keys = [_key() for _ in range(size)]
        self._next = 0
        import threading

        self._lock = threading.Lock()

    def take(self) -> rsa.RSAPrivateKey:
        with self._lock:
            key = self._keys[self._next % len(self._keys)]
            self._next += 1
            return key

    def __enter__(self) -> KeyPool:
        KeyPool._active = self
        return self

    def __exit__(self, *exc: object) -> None:
        KeyPool._active = None


def rsa_key() -> rsa.RSAPrivateKey:
    """A new RSA-2048 key, or the next one of the active KeyPool."""
    pool = KeyPool._active
    return pool.take() if pool is not None else _key()


_parsed: dict[bytes, object] = {}


def load_private_key_cached(data: bytes) -> object:
    """load_pem_private_key with the (slow) RSA consistency check done once per distinct bytes.

    Changed or damaged bytes are a different key to this cache, so they are parsed (and fail)
    for real; only an unchanged file is not validated twice.
    """
    digest = __import__("hashlib").sha256(data).digest()
    key = _parsed.get(digest)
    if key is None:
        key = serialization.load_pem_private_key(data, password=None)
        if len(_parsed) > 256:
            _parsed.clear()
        _parsed[digest] = key
    return key
