"""Standard RDP Security inside a session (MS-RDPBCGR 5.3.8): how each role wraps and unwraps
the PDUs of the I/O channel once the Security Exchange has given both sides their keys, and
what the server puts in its Server Security Data.

Which PDUs are encrypted follows the encryption level (5.3.1): the client encrypts everything
it sends; the server encrypts from Client Compatible up; at Low the server's PDUs carry a basic
security header without SEC_ENCRYPT (what rdesktop and FreeRDP read). Licensing PDUs are
encrypted when the client set SEC_LICENSE_ENCRYPT_CS in its Security Exchange PDU, as the
Windows server of zeek's rdp-proprietary-encryption trace does (frame 35, flags 0x0288).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import rsa

from .capabilities import ENC_SALTED_CHECKSUM, GeneralCapability
from .errors import ParseError, ProtocolFailure
from .gcc import (
    ENCRYPTION_LEVEL_CLIENT_COMPATIBLE,
    ENCRYPTION_LEVEL_LOW,
    ClientSecurityData,
    ServerSecurityData,
)
from .proprietary_cert import (
    ProprietaryCertificate,
    RsaPublicKey,
    decode_server_certificate,
    generate_server_key,
)
from .rdpsec import (
    METHOD_NAMES,
    RANDOM_LEN,
    RdpSecurity,
    SecurityExchangePdu,
    choose_method,
)
from .share import SEC_ENCRYPT, SEC_LICENSE_ENCRYPT_CS, SEC_LICENSE_PKT, SEC_SECURE_CHECKSUM
from .wire import Reader, Writer

FASTPATH_FLAG_SECURE_CHECKSUM = 0x40  # FASTPATH_*_SECURE_CHECKSUM << 6
FASTPATH_FLAG_ENCRYPTED = 0x80  # FASTPATH_*_ENCRYPTED << 6
WEAK_KEY_BITS = 512  # the proprietary certificate key Windows sent in zeek's trace


def salted_checksum(capabilities: object) -> bool:
    """True when the peer's General Capability Set advertises ENC_SALTED_CHECKSUM: from then
    on the MACs this side sends are salted (SEC_SECURE_CHECKSUM), as Windows does."""
    for cap in capabilities:  # type: ignore[attr-defined]
        if isinstance(cap, GeneralCapability):
            return bool(cap.extra_flags & ENC_SALTED_CHECKSUM)
    return False


@functools.lru_cache(maxsize=2)
def server_key(bits: int) -> rsa.RSAPrivateKey:
    """The host's proprietary-certificate key pair, made once per process as TermService keeps
    one in its LSA secrets across connections."""
    return generate_server_key(bits)


@dataclass
class ServerOffer:
    """What the server put in its Server Security Data, and the private key behind it."""

    data: ServerSecurityData
    private_key: rsa.RSAPrivateKey | None

    @classmethod
    def choose(cls, security: ClientSecurityData | None, level: int) -> ServerOffer:
        """Method from the client's list at the server's level (ProtocolFailure if none fits),
        a fresh server random and a proprietary certificate over the host's 512-bit key."""
        offered = security or ClientSecurityData(0, 0)
        method = choose_method(offered.encryption_methods, offered.ext_encryption_methods, level)
        if method is None:
            raise ProtocolFailure("mcs", f"no encryption method of the client's "
                                  f"({offered.encryption_methods:#x}) is allowed at level {level}",
                                  event="encryption_method")
        if method not in (1, 2, 8):
            raise ProtocolFailure("mcs", f"{METHOD_NAMES.get(method, method)} (FIPS) is "
                                  "not emulated", event="not_emulated")
        # 512 bits even when the client announces RNS_UD_CS_STRONG_ASYMMETRIC_KEYS: what the
        # Windows server of zeek's rdp-proprietary-encryption trace sent to mstsc, which set it
        # (frames 14/15); whether newer Windows sends 2048 bits then is open (rdp-facts §14).
        key = server_key(WEAK_KEY_BITS)
        cert = ProprietaryCertificate.create(RsaPublicKey.from_key(key.public_key()))
        data = ServerSecurityData(method, level, os.urandom(RANDOM_LEN), cert.encode())
        return cls(data, key)

    def accept_exchange(self, data: bytes) -> tuple[RdpSecurity, bool]:
        """The server's keys from the client's Security Exchange PDU, and whether the client
        asked for encrypted licensing PDUs."""
        assert self.private_key is not None and self.data.server_random is not None
        pdu = SecurityExchangePdu.decode(data)
        numbers = self.private_key.private_numbers()
        client_random = pdu.client_random(numbers.public_numbers.n, numbers.d)
        security = RdpSecurity.create(client_random, self.data.server_random,
                                      self.data.encryption_method, server=True)
        return security, bool(pdu.flags & SEC_LICENSE_ENCRYPT_CS)


def client_exchange(server: ServerSecurityData, *, require_signature: bool = True,
                    license_encrypt: bool = True) -> tuple[SecurityExchangePdu, RdpSecurity]:
    """The client's Security Exchange PDU and keys from the server's security data."""
    if server.server_random is None or len(server.server_random) != RANDOM_LEN:
        raise ProtocolFailure("mcs", "Server Security Data without a 32-byte server random")
    if not server.server_certificate:
        raise ProtocolFailure("mcs", "Server Security Data without a server certificate")
    cert = decode_server_certificate(server.server_certificate)
    if isinstance(cert, ProprietaryCertificate) and require_signature \
            and not cert.signature_valid:
        raise ProtocolFailure("mcs", "the server's proprietary certificate signature is not "
                              "the Terminal Services signing key's", event="bad_server_certificate")
    key = cert.public_key
    client_random = os.urandom(RANDOM_LEN)
    pdu = SecurityExchangePdu.for_random(client_random, key.modulus, key.exponent,
                                         license_encrypt=license_encrypt)
    security = RdpSecurity.create(client_random, server.server_random,
                                  server.encryption_method, server=False)
    return pdu, security


@dataclass
class SessionSecurity:
    """One role's wrapping of I/O-channel PDUs under Standard RDP Security."""

    security: RdpSecurity
    level: int
    server: bool
    license_encrypt: bool = False

    @property
    def encrypts_output(self) -> bool:
        return not self.server or self.level >= ENCRYPTION_LEVEL_CLIENT_COMPATIBLE

    def wrap(self, payload: bytes, flags: int = 0) -> bytes:
        """Security header (+ MAC and RC4 when this side encrypts) around a PDU."""
        if self.encrypts_output and self.level >= ENCRYPTION_LEVEL_LOW:
            return self.security.encrypt(flags, payload)
        return Writer().u16le(flags).u16le(0).bytes(payload).value()

    def wrap_license(self, body: bytes) -> bytes:
        """A licensing PDU (preamble and message) with SEC_LICENSE_PKT, encrypted when agreed."""
        if self.license_encrypt:
            return self.security.encrypt(SEC_LICENSE_PKT | SEC_LICENSE_ENCRYPT_CS, body)
        return Writer().u16le(SEC_LICENSE_PKT).u16le(0).bytes(body).value()

    def unwrap(self, data: bytes) -> tuple[int, bytes]:
        """(flags without SEC_ENCRYPT, plaintext) of a received PDU."""
        flags, plain = self.security.decrypt(data)
        if self.server is False and flags & SEC_LICENSE_PKT and flags & SEC_LICENSE_ENCRYPT_CS:
            self.license_encrypt = True  # the server encrypts licensing: so do we
        return flags & ~(SEC_ENCRYPT | SEC_SECURE_CHECKSUM), plain

    def fastpath(self, frame: bytes) -> bytes:
        """A fast-path frame with its body decrypted (MAC checked) and the flags cleared, so
        the fast-path parsers read it as under TLS."""
        first = frame[0]
        if not first & FASTPATH_FLAG_ENCRYPTED:
            return frame
        r = Reader(frame, "fast-path PDU")
        r.skip(1)
        r.skip(2 if r.peek_u8() & 0x80 else 1)
        signature = r.bytes(8)
        plain = self.security.decrypt_body(signature, r.rest(),
                                           salted=bool(first & FASTPATH_FLAG_SECURE_CHECKSUM))
        header = first & 0x3F
        total = len(plain) + 2
        if total > 0x7F:
            total = len(plain) + 3
            if total > 0x7FFF:
                raise ParseError("fast-path PDU", "too long")
            return bytes([header]) + (0x8000 | total).to_bytes(2, "big") + plain
        return bytes([header, total]) + plain
