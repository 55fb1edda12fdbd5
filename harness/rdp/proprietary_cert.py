"""The server certificate of Standard RDP Security (MS-RDPBCGR 2.2.1.4.3.1): the proprietary
certificate (an RSA public key signed with the published Terminal Services signing key,
5.3.3.1) and the X.509 certificate chain (MS-RDPELE 2.2.1.4.2) a licensed server sends.

Every length-prefixed field has a maximum; decoding is linear; malformed input is a ParseError.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import rsa

from . import ber
from .errors import ParseError
from .wire import Reader, Writer

CERT_CHAIN_VERSION_1 = 0x00000001  # proprietary
CERT_CHAIN_VERSION_2 = 0x00000002  # X.509 chain
CERT_TEMPORARY = 0x80000000  # the "t" bit: a certificate the server made itself
SIGNATURE_ALG_RSA = 0x00000001
KEY_EXCHANGE_ALG_RSA = 0x00000001
BB_RSA_KEY_BLOB = 0x0006
BB_RSA_SIGNATURE_BLOB = 0x0008
RSA1_MAGIC = 0x31415352  # "RSA1"

MAX_MODULUS_BYTES = 512  # 4096 bits; Windows' proprietary keys are 512 or 2048 bits
MAX_KEY_BLOB = 20 + MAX_MODULUS_BYTES + 8
MAX_SIGNATURE_BLOB = 72
MAX_CHAIN_CERTS = 8
MAX_CHAIN_CERT_BYTES = 16384
MAX_SERVER_CERTIFICATE = MAX_CHAIN_CERTS * (MAX_CHAIN_CERT_BYTES + 4) + 64  # = gcc's bound

# The Terminal Services signing key, published in MS-RDPBCGR 5.3.3.1.1 (little-endian bytes).
TSSK_MODULUS = int.from_bytes(bytes([
    0x3D, 0x3A, 0x5E, 0xBD, 0x72, 0x43, 0x3E, 0xC9, 0x4D, 0xBB, 0xC1, 0x1E, 0x4A, 0xBA, 0x5F,
    0xCB, 0x3E, 0x88, 0x20, 0x87, 0xEF, 0xF5, 0xC1, 0xE2, 0xD7, 0xB7, 0x6B, 0x9A, 0xF2, 0x52,
    0x45, 0x95, 0xCE, 0x63, 0x65, 0x6B, 0x58, 0x3A, 0xFE, 0xEF, 0x7C, 0xE7, 0xBF, 0xFE, 0x3D,
    0xF6, 0x5C, 0x7D, 0x6C, 0x5E, 0x06, 0x09, 0x1A, 0xF5, 0x61, 0xBB, 0x20, 0x93, 0x09, 0x5F,
    0x05, 0x6D, 0xEA, 0x87]), "little")
TSSK_PRIVATE_EXPONENT = int.from_bytes(bytes([
    0x87, 0xA7, 0x19, 0x32, 0xDA, 0x11, 0x87, 0x55, 0x58, 0x00, 0x16, 0x16, 0x25, 0x65, 0x68,
    0xF8, 0x24, 0x3E, 0xE6, 0xFA, 0xE9, 0x67, 0x49, 0x94, 0xCF, 0x92, 0xCC, 0x33, 0x99, 0xE8,
    0x08, 0x60, 0x17, 0x9A, 0x12, 0x9F, 0x24, 0xDD, 0xB1, 0x24, 0x99, 0xC7, 0x3A, 0xB8, 0x0A,
    0x7B, 0x0D, 0xDD, 0x35, 0x07, 0x79, 0x17, 0x0B, 0x51, 0x9B, 0xB3, 0xC7, 0x10, 0x01, 0x13,
    0xE7, 0x3F, 0xF3, 0x5F]), "little")
TSSK_PUBLIC_EXPONENT = int.from_bytes(bytes([0x5B, 0x7B, 0x88, 0xC0]), "little")


@dataclass(frozen=True)
class RsaPublicKey:
    """RSA_PUBLIC_KEY: magic "RSA1", keylen (modulus bytes + 8 of padding), bitlen, datalen,
    public exponent, modulus (little-endian)."""

    modulus: int
    exponent: int
    bit_length: int

    @property
    def size(self) -> int:
        """Bytes of the modulus (what an encrypted value occupies before its padding)."""
        return (self.bit_length + 7) // 8

    def encode(self) -> bytes:
        keylen = self.size + 8
        w = Writer().u32le(RSA1_MAGIC).u32le(keylen).u32le(self.bit_length)
        w.u32le(self.size - 1).u32le(self.exponent)
        return w.bytes(self.modulus.to_bytes(keylen, "little")).value()

    @classmethod
    def decode(cls, r: Reader) -> RsaPublicKey:
        magic = r.u32le()
        if magic != RSA1_MAGIC:
            raise r.fail(f"RSA public key magic {magic:#010x}, expected RSA1")
        keylen, bitlen, _datalen, exponent = r.u32le(), r.u32le(), r.u32le(), r.u32le()
        if not 8 < keylen <= MAX_MODULUS_BYTES + 8 or bitlen > (keylen - 8) * 8 or bitlen < 64:
            raise r.fail(f"RSA key length {keylen} / {bitlen} bits out of range")
        modulus = int.from_bytes(r.bytes(keylen), "little")
        if modulus.bit_length() > bitlen or modulus < 3 or exponent < 3:
            raise r.fail("RSA modulus or exponent invalid")
        return cls(modulus, exponent, bitlen)

    @classmethod
    def from_key(cls, key: rsa.RSAPublicKey) -> RsaPublicKey:
        numbers = key.public_numbers()
        return cls(numbers.n, numbers.e, key.key_size)


def _signature_input(key_blob: bytes) -> bytes:
    head = Writer().u32le(CERT_CHAIN_VERSION_1).u32le(SIGNATURE_ALG_RSA)
    head.u32le(KEY_EXCHANGE_ALG_RSA).u16le(BB_RSA_KEY_BLOB).u16le(len(key_blob))
    return head.value() + key_blob


def _padded_hash(data: bytes) -> bytes:
    """The 63-byte value 5.3.3.1.2 signs: MD5, 0x00, 0xFF padding, 0x01 (little-endian)."""
    return hashlib.md5(data).digest() + b"\x00" + b"\xff" * 45 + b"\x01"


def sign_proprietary(key_blob: bytes) -> bytes:
    """The 72-byte signature blob: the padded hash raised to the TS private exponent."""
    value = int.from_bytes(_padded_hash(_signature_input(key_blob)), "little")
    return pow(value, TSSK_PRIVATE_EXPONENT, TSSK_MODULUS).to_bytes(64, "little") + b"\x00" * 8


def verify_proprietary(key_blob: bytes, signature: bytes) -> bool:
    """True when the signature is the TS signing key's over this key blob (5.3.3.1.3)."""
    if len(signature) < 64:
        return False
    value = int.from_bytes(signature[:64], "little")
    if value >= TSSK_MODULUS:
        return False
    clear = pow(value, TSSK_PUBLIC_EXPONENT, TSSK_MODULUS).to_bytes(64, "little")
    return clear[:63] == _padded_hash(_signature_input(key_blob))


@dataclass(frozen=True)
class ProprietaryCertificate:
    """PROPRIETARYSERVERCERTIFICATE inside SERVER_CERTIFICATE (dwVersion 1, t bit optional)."""

    public_key: RsaPublicKey
    signature: bytes
    temporary: bool = False

    @classmethod
    def create(cls, public_key: RsaPublicKey, *, temporary: bool = False) -> ProprietaryCertificate:
        return cls(public_key, sign_proprietary(public_key.encode()), temporary)

    @property
    def signature_valid(self) -> bool:
        return verify_proprietary(self.public_key.encode(), self.signature)

    def encode(self) -> bytes:
        blob = self.public_key.encode()
        version = CERT_CHAIN_VERSION_1 | (CERT_TEMPORARY if self.temporary else 0)
        w = Writer().u32le(version).u32le(SIGNATURE_ALG_RSA).u32le(KEY_EXCHANGE_ALG_RSA)
        w.u16le(BB_RSA_KEY_BLOB).u16le(len(blob)).bytes(blob)
        w.u16le(BB_RSA_SIGNATURE_BLOB).u16le(len(self.signature))
        return w.bytes(self.signature).value()

    @classmethod
    def decode_body(cls, r: Reader, temporary: bool) -> ProprietaryCertificate:
        sig_alg, key_alg = r.u32le(), r.u32le()
        if sig_alg != SIGNATURE_ALG_RSA or key_alg != KEY_EXCHANGE_ALG_RSA:
            raise r.fail(f"signature/key algorithm {sig_alg}/{key_alg}, expected RSA (1/1)")
        blob_type, blob_len = r.u16le(), r.u16le()
        if blob_type != BB_RSA_KEY_BLOB or blob_len > MAX_KEY_BLOB:
            raise r.fail(f"public key blob type {blob_type:#x} of {blob_len} bytes")
        key = RsaPublicKey.decode(r.sub(blob_len, "RSA public key"))
        sig_type, sig_len = r.u16le(), r.u16le()
        if sig_type != BB_RSA_SIGNATURE_BLOB or sig_len > MAX_SIGNATURE_BLOB:
            raise r.fail(f"signature blob type {sig_type:#x} of {sig_len} bytes")
        return cls(key, r.bytes(sig_len), temporary)


@dataclass(frozen=True)
class X509CertificateChain:
    """SERVER_CERTIFICATE dwVersion 2: DER certificates, root first, the server's last; the
    client encrypts with the last one's key (MS-RDPELE 2.2.1.4.2, 3.1.5.3.3)."""

    certificates: tuple[bytes, ...]
    temporary: bool = False

    @property
    def public_key(self) -> RsaPublicKey:
        """The last certificate's RSA key. Licence-server certificates label their key with
        md5WithRSAEncryption (1.2.840.113549.1.1.4), which X.509 libraries refuse, so the
        SubjectPublicKeyInfo is read here whatever its algorithm says."""
        return x509_rsa_key(self.certificates[-1])

    def encode(self) -> bytes:
        version = CERT_CHAIN_VERSION_2 | (CERT_TEMPORARY if self.temporary else 0)
        w = Writer().u32le(version).u32le(len(self.certificates))
        for der in self.certificates:
            w.u32le(len(der)).bytes(der)
        return w.zeros(8 + 4 * len(self.certificates)).value()

    @classmethod
    def decode_body(cls, r: Reader, temporary: bool) -> X509CertificateChain:
        count = r.u32le()
        if not 1 <= count <= MAX_CHAIN_CERTS:
            raise r.fail(f"{count} certificates in the chain (allowed 1..{MAX_CHAIN_CERTS})")
        certs = []
        for _ in range(count):
            size = r.u32le()
            if size > MAX_CHAIN_CERT_BYTES:
                raise r.fail(f"certificate of {size} bytes (allowed {MAX_CHAIN_CERT_BYTES})")
            certs.append(r.bytes(size))
        return cls(tuple(certs), temporary)  # the padding that follows is ignored


def x509_rsa_key(der: bytes) -> RsaPublicKey:
    """The RSAPublicKey inside a certificate's SubjectPublicKeyInfo (ParseError if none)."""
    cert = ber.decode_tlv(der, "X.509 certificate").children("X.509 certificate")
    tbs = cert[0].children("tbsCertificate") if cert else []
    fields = tbs[1:] if tbs and tbs[0].tag == ber.context_tag(0) else tbs
    if len(fields) < 6:
        raise ParseError("X.509 certificate", "tbsCertificate too short")
    spki = fields[5].children("SubjectPublicKeyInfo")
    if len(spki) != 2 or not spki[1].content.startswith(b"\x00"):
        raise ParseError("X.509 certificate", "SubjectPublicKeyInfo without a key")
    key = ber.decode_tlv(spki[1].content[1:], "RSAPublicKey").children("RSAPublicKey")
    if len(key) != 2:
        raise ParseError("X.509 certificate", "the subject key is not an RSA key")
    modulus = ber.decode_integer(key[0].content, "modulus")
    exponent = ber.decode_integer(key[1].content, "publicExponent")
    if modulus.bit_length() > MAX_MODULUS_BYTES * 8 or modulus < 3 or exponent < 3:
        raise ParseError("X.509 certificate", "RSA modulus or exponent out of range")
    return RsaPublicKey(modulus, exponent, modulus.bit_length())


ServerCertificate = ProprietaryCertificate | X509CertificateChain


def decode_server_certificate(data: bytes) -> ServerCertificate:
    """SERVER_CERTIFICATE from the Server Security Data or a licensing BLOB."""
    if len(data) > MAX_SERVER_CERTIFICATE:
        raise Reader(b"", "server certificate").fail(f"{len(data)} bytes (allowed "
                                                     f"{MAX_SERVER_CERTIFICATE})")
    r = Reader(data, "server certificate")
    version = r.u32le()
    temporary = bool(version & CERT_TEMPORARY)
    chain_version = version & 0x7FFFFFFF
    if chain_version == CERT_CHAIN_VERSION_1:
        return ProprietaryCertificate.decode_body(r, temporary)
    if chain_version == CERT_CHAIN_VERSION_2:
        return X509CertificateChain.decode_body(r, temporary)
    raise r.fail(f"certificate chain version {chain_version}")


def generate_server_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    """A server key pair for the proprietary certificate: 2048 bits for clients that announce
    RNS_UD_CS_STRONG_ASYMMETRIC_KEYS, else 512 bits as Windows sends (zeek's
    rdp-proprietary-encryption trace). `cryptography` refuses to generate keys under 1024 bits,
    so the two 256-bit primes of a 512-bit key are found here (Miller-Rabin) and the key is
    assembled by `cryptography` from its numbers."""
    if bits >= 1024:
        return rsa.generate_private_key(public_exponent=65537, key_size=bits)
    e = 65537
    while True:
        p, q = _prime(bits // 2), _prime(bits // 2)
        n = p * q
        if p != q and n.bit_length() == bits and math.gcd(e, (p - 1) * (q - 1)) == 1:
            break
    d = pow(e, -1, (p - 1) * (q - 1))
    numbers = rsa.RSAPrivateNumbers(p, q, d, rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q),
                                    rsa.rsa_crt_iqmp(p, q), rsa.RSAPublicNumbers(e, n))
    return numbers.private_key(unsafe_skip_rsa_key_validation=True)


def _probably_prime(n: int, rounds: int = 40) -> bool:
    if n < 4 or n % 2 == 0:
        return n in (2, 3)
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for _ in range(rounds):
        x = pow(secrets.randbelow(n - 3) + 2, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _prime(bits: int) -> int:
    while True:
        candidate = secrets.randbits(bits) | (3 << (bits - 2)) | 1
        if _probably_prime(candidate):
            return candidate
