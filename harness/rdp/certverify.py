"""Verification of the server certificate as a client's certificate policy sees it.

The TLS handshake itself accepts any certificate; this decides afterwards, with the client's own
clock (a skewed client sees a valid certificate as not yet valid or expired), against the client's
trust anchors and the name it connected to. Error numbers are OpenSSL's X509_V_ERR_* values, the
ones FreeRDP reports.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtensionOID, NameOID

from .errors import ParseError

X509_V_ERR_CERT_SIGNATURE_FAILURE = 7
X509_V_ERR_CERT_NOT_YET_VALID = 9
X509_V_ERR_CERT_HAS_EXPIRED = 10
X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT = 18
X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY = 20
X509_V_ERR_HOSTNAME_MISMATCH = 62
X509_V_ERR_IP_ADDRESS_MISMATCH = 64

_MESSAGES = {
    X509_V_ERR_CERT_SIGNATURE_FAILURE: "certificate signature failure",
    X509_V_ERR_CERT_NOT_YET_VALID: "certificate is not yet valid",
    X509_V_ERR_CERT_HAS_EXPIRED: "certificate has expired",
    X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT: "self-signed certificate",
    X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "unable to get local issuer certificate",
    X509_V_ERR_HOSTNAME_MISMATCH: "hostname mismatch",
    X509_V_ERR_IP_ADDRESS_MISMATCH: "IP address mismatch",
}


@dataclass(frozen=True)
class CertProblem:
    code: int
    message: str


@dataclass
class CertReport:
    """What the client saw of the server certificate and what is wrong with it."""

    subject: str
    issuer: str
    not_before: str
    not_after: str
    sha256: str
    problems: list[CertProblem] = field(default_factory=list)
    public_key: bytes = b""  # SubjectPublicKey (BIT STRING contents), what CredSSP binds to

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, object]:
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "not_before": self.not_before,
            "not_after": self.not_after,
            "sha256": self.sha256,
            "verify_errors": [{"code": p.code, "message": p.message} for p in self.problems],
        }


def subject_public_key(cert: x509.Certificate) -> bytes:
    """The BIT STRING contents of SubjectPublicKeyInfo, the bytes CredSSP binds to.

    For RSA that is the PKCS#1 RSAPublicKey; for EC the uncompressed point; read from the DER
    whatever the key type (an Ed25519 or unknown key is bound the same way, not a crash).
    """
    from .credssp import subject_public_key as spki_bits  # credssp does not import this module

    return spki_bits(cert.public_bytes(serialization.Encoding.DER))


def _problem(code: int) -> CertProblem:
    return CertProblem(code, _MESSAGES[code])


def _name_matches(cert: x509.Certificate, target: str) -> tuple[bool, bool]:
    """(matches, target_is_ip)."""
    try:
        ip = ipaddress.ip_address(target)
    except ValueError:
        ip = None
    try:
        san = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
    except x509.ExtensionNotFound:
        san = None
    if ip is not None:
        ips = san.get_values_for_type(x509.IPAddress) if san else []
        return ip in ips, True
    names = [n.lower() for n in san.get_values_for_type(x509.DNSName)] if san else []
    if not names:
        names = [a.value.lower() for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    target = target.lower().rstrip(".")
    for name in names:
        if name == target:
            return True, False
        if name.startswith("*.") and "." in target and target.split(".", 1)[1] == name[2:]:
            return True, False
    return False, False


def verify_certificate(
    der: bytes,
    *,
    trust_anchors: list[x509.Certificate],
    target_name: str | None,
    now: dt.datetime,
) -> CertReport:
    """Check validity (by the client's clock), issuer trust and name.

    A certificate the library cannot read or check (malformed, an unsupported key or signature
    type) is a ParseError, never another exception.
    """
    try:
        return _verify(der, trust_anchors=trust_anchors, target_name=target_name, now=now)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ParseError("server certificate", f"cannot be checked: {exc}") from None


def _verify(
    der: bytes,
    *,
    trust_anchors: list[x509.Certificate],
    target_name: str | None,
    now: dt.datetime,
) -> CertReport:
    cert = x509.load_der_x509_certificate(der)
    report = CertReport(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        not_before=cert.not_valid_before_utc.isoformat(),
        not_after=cert.not_valid_after_utc.isoformat(),
        sha256=hashlib.sha256(der).hexdigest(),
        public_key=subject_public_key(cert),
    )
    if now < cert.not_valid_before_utc:
        report.problems.append(_problem(X509_V_ERR_CERT_NOT_YET_VALID))
    elif now > cert.not_valid_after_utc:
        report.problems.append(_problem(X509_V_ERR_CERT_HAS_EXPIRED))
    issuers = [ca for ca in trust_anchors if ca.subject == cert.issuer]
    if not any(_issued_by(cert, ca) for ca in issuers):
        if any(ca == cert for ca in trust_anchors):
            pass  # pinned: the certificate itself is trusted
        elif cert.issuer == cert.subject:
            report.problems.append(_problem(X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT))
        elif issuers:
            report.problems.append(_problem(X509_V_ERR_CERT_SIGNATURE_FAILURE))
        else:
            report.problems.append(_problem(X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY))
    if target_name:
        matches, is_ip = _name_matches(cert, target_name)
        if not matches:
            code = X509_V_ERR_IP_ADDRESS_MISMATCH if is_ip else X509_V_ERR_HOSTNAME_MISMATCH
            report.problems.append(_problem(code))
    return report


def _issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def load_trust_anchors(pem: bytes) -> list[x509.Certificate]:
    """Every certificate in a PEM bundle (a --cafile)."""
    return x509.load_pem_x509_certificates(pem) if pem.strip() else []
