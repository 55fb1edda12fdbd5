"""Standard RDP Security (MS-RDPBCGR 5.3): session keys, RC4, MACs, key updates, and the
non-FIPS security header that carries them. Sans-IO: bytes in, bytes out.

- 5.3.5.1 session key generation from the client and server randoms (40, 56 and 128 bits);
- 5.3.6.1 MAC (and 5.3.6.1.1 the salted MAC, SEC_SECURE_CHECKSUM);
- 5.3.7 key update after 4096 packets encrypted or decrypted with one key;
- 5.3.4.1 the client random, RSA-encrypted with the server's public key (raw RSA, little-endian).

RC4, MD5 and SHA-1 come from `cryptography` / hashlib. Raw (unpadded) RSA on a little-endian
integer is not something `cryptography` offers (it pads every operation), so the modular
exponentiation of 5.3.4.1 is Python's `pow`, on the key numbers `cryptography` holds.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher

from .errors import ParseError, RdpError
from .gcc import (
    ENCRYPTION_METHOD_40BIT,
    ENCRYPTION_METHOD_56BIT,
    ENCRYPTION_METHOD_128BIT,
    ENCRYPTION_METHOD_FIPS,
    ENCRYPTION_METHOD_NONE,
)
from .share import SEC_ENCRYPT, SEC_EXCHANGE_PKT, SEC_SECURE_CHECKSUM
from .wire import Reader, Writer

try:  # cryptography >= 43 keeps RC4 among the "decrepit" algorithms
    from cryptography.hazmat.decrepit.ciphers.algorithms import ARC4
except ImportError:  # pragma: no cover - older cryptography
    from cryptography.hazmat.primitives.ciphers.algorithms import ARC4  # type: ignore[no-redef]



class RdpSecurityError(RdpError):
    """Standard RDP Security cannot go on: a MAC that does not match, a value the keys cannot
    take. The connection reports it at its current stage as a protocol error."""


RANDOM_LEN = 32
KEY_UPDATE_INTERVAL = 4096  # 5.3.7: a key is updated after 4096 uses
MAX_ENCRYPTED_RANDOM = 8 + 4096 // 8 + 8  # a 4096-bit modulus plus padding, well above Windows'
PAD1 = b"\x36" * 40
PAD2 = b"\x5c" * 48
SALT_40 = b"\xd1\x26\x9e"
SALT_56 = b"\xd1"
METHOD_NAMES = {ENCRYPTION_METHOD_NONE: "none", ENCRYPTION_METHOD_40BIT: "40-bit RC4",
                ENCRYPTION_METHOD_56BIT: "56-bit RC4", ENCRYPTION_METHOD_128BIT: "128-bit RC4",
                ENCRYPTION_METHOD_FIPS: "FIPS 3DES"}


def _sha1(*parts: bytes) -> bytes:
    return hashlib.sha1(b"".join(parts)).digest()


def _md5(*parts: bytes) -> bytes:
    return hashlib.md5(b"".join(parts)).digest()


def salted_hash(secret: bytes, label: bytes, random1: bytes, random2: bytes) -> bytes:
    """SaltedHash(S, I) = MD5(S + SHA(I + S + R1 + R2)) (5.3.5.1; MS-RDPELE 5.1.2 swaps R1/R2)."""
    return _md5(secret, _sha1(label, secret, random1, random2))


def hash_48(secret: bytes, random1: bytes, random2: bytes, first: int) -> bytes:
    """H(first) + H(first+1 twice) + H(first+2 three times): the 384-bit expansions."""
    return b"".join(salted_hash(secret, bytes([first + i]) * (i + 1), random1, random2)
                    for i in range(3))


def key_length(method: int) -> int:
    """Bytes of RC4 key and MAC key for an encryption method (8 for 40/56-bit, 16 for 128)."""
    if method in (ENCRYPTION_METHOD_40BIT, ENCRYPTION_METHOD_56BIT):
        return 8
    if method == ENCRYPTION_METHOD_128BIT:
        return 16
    raise RdpSecurityError(f"encryption method {method:#x} "
                          f"({METHOD_NAMES.get(method, 'unknown')}) has no RC4 key")


def reduce_key(key: bytes, method: int) -> bytes:
    """The 40- and 56-bit keys: the first 64 bits with their first bytes salted (5.3.5.1)."""
    if method == ENCRYPTION_METHOD_40BIT:
        return SALT_40 + key[3:8]
    if method == ENCRYPTION_METHOD_56BIT:
        return SALT_56 + key[1:8]
    return key[:16]


@dataclass(frozen=True)
class SessionKeys:
    """The MAC key and the initial RC4 keys of one side (5.3.5.1)."""

    mac_key: bytes
    encrypt_key: bytes
    decrypt_key: bytes
    method: int

    @classmethod
    def derive(cls, client_random: bytes, server_random: bytes, method: int,
               *, server: bool) -> SessionKeys:
        if len(client_random) != RANDOM_LEN or len(server_random) != RANDOM_LEN:
            raise RdpSecurityError("client and server randoms must be 32 bytes")
        key_length(method)  # rejects NONE and FIPS
        pre_master = client_random[:24] + server_random[:24]
        master = hash_48(pre_master, client_random, server_random, ord("A"))
        blob = hash_48(master, client_random, server_random, ord("X"))
        server_encrypt = _md5(blob[16:32], client_random, server_random)
        server_decrypt = _md5(blob[32:48], client_random, server_random)
        encrypt, decrypt = ((server_encrypt, server_decrypt) if server
                            else (server_decrypt, server_encrypt))
        return cls(reduce_key(blob[:16], method), reduce_key(encrypt, method),
                   reduce_key(decrypt, method), method)


def update_key(initial: bytes, current: bytes, method: int) -> bytes:
    """5.3.7: the next key from the initial and the current one."""
    n = len(initial)
    temp = _md5(initial, PAD2, _sha1(initial, PAD1, current))[:n]
    new = rc4(temp, temp)
    return reduce_key(new, method) if n == 8 else new


def rc4(key: bytes, data: bytes) -> bytes:
    """One-shot RC4 with a fresh key schedule."""
    return Cipher(ARC4(key), mode=None).encryptor().update(data)


def mac_signature(mac_key: bytes, data: bytes, count: int | None = None) -> bytes:
    """5.3.6.1 MACSignature (8 bytes); with `count`, the salted MAC of 5.3.6.1.1."""
    salt = b"" if count is None else count.to_bytes(4, "little")
    sha = _sha1(mac_key, PAD1, len(data).to_bytes(4, "little"), data, salt)
    return _md5(mac_key, PAD2, sha)[:8]


class Rc4Stream:
    """One direction's RC4 state: the key is updated after every 4096 uses (5.3.7)."""

    def __init__(self, key: bytes, method: int) -> None:
        self.initial = key
        self.key = key
        self.method = method
        self.uses = 0
        self.total = 0  # every packet processed: the salted MAC's encryption count
        self._cipher = Cipher(ARC4(key), mode=None).encryptor()

    def process(self, data: bytes) -> bytes:
        if self.uses == KEY_UPDATE_INTERVAL:
            self.key = update_key(self.initial, self.key, self.method)
            self._cipher = Cipher(ARC4(self.key), mode=None).encryptor()
            self.uses = 0
        self.uses += 1
        self.total += 1
        return self._cipher.update(data)


class RdpSecurity:
    """Both directions of one side of a Standard RDP Security session: wraps and unwraps the
    security header (basic or non-FIPS) of each slow-path PDU."""

    def __init__(self, keys: SessionKeys) -> None:
        self.keys = keys
        self._encryptor = Rc4Stream(keys.encrypt_key, keys.method)
        self._decryptor = Rc4Stream(keys.decrypt_key, keys.method)
        self.salted = False  # send salted MACs (both sides advertised ENC_SALTED_CHECKSUM)

    @classmethod
    def create(cls, client_random: bytes, server_random: bytes, method: int,
               *, server: bool) -> RdpSecurity:
        return cls(SessionKeys.derive(client_random, server_random, method, server=server))

    @property
    def packets_encrypted(self) -> int:
        return self._encryptor.total

    @property
    def packets_decrypted(self) -> int:
        return self._decryptor.total

    def encrypt(self, flags: int, payload: bytes, flags_hi: int = 0) -> bytes:
        """Security header with SEC_ENCRYPT, MAC over the plaintext, RC4 ciphertext."""
        flags |= SEC_ENCRYPT
        count = self._encryptor.total if self.salted else None
        if self.salted:
            flags |= SEC_SECURE_CHECKSUM
        signature = mac_signature(self.keys.mac_key, payload, count)
        body = self._encryptor.process(payload)
        return Writer().u16le(flags).u16le(flags_hi).bytes(signature).bytes(body).value()

    def decrypt(self, data: bytes) -> tuple[int, bytes]:
        """(flags, plaintext) of a PDU with a security header; checks the MAC when encrypted."""
        r = Reader(data, "security header")
        flags, _flags_hi = r.u16le(), r.u16le()
        if not flags & SEC_ENCRYPT:
            return flags, r.rest()
        signature = r.bytes(8)
        return flags, self.decrypt_body(signature, r.rest(),
                                        salted=bool(flags & SEC_SECURE_CHECKSUM))

    def decrypt_body(self, signature: bytes, body: bytes, *, salted: bool) -> bytes:
        """Decrypt with this side's one RC4 stream (slow- and fast-path share it), check the
        MAC (salted with the decryption count when the sender says so)."""
        count = self._decryptor.total if salted else None
        plain = self._decryptor.process(body)
        if mac_signature(self.keys.mac_key, plain, count) != signature:
            raise RdpSecurityError("MAC signature mismatch: wrong session keys or "
                                  "a corrupted PDU")
        return plain


# -- RSA with the server's public key (5.3.4.1) ------------------------------------------------

def rsa_public_encrypt(data_le: bytes, modulus: int, exponent: int, length: int) -> bytes:
    """Raw RSA of a little-endian value, result little-endian on `length` bytes."""
    value = int.from_bytes(data_le, "little")
    if value >= modulus:
        raise RdpSecurityError("value too large for the server's RSA modulus")
    return pow(value, exponent, modulus).to_bytes(length, "little")


def rsa_private_decrypt(data_le: bytes, modulus: int, private_exponent: int) -> bytes:
    """Raw RSA decryption of a little-endian value; the result little-endian on the modulus
    length (the client random is its first 32 bytes)."""
    value = int.from_bytes(data_le, "little")
    if value >= modulus:
        raise RdpSecurityError("encrypted client random is not below the modulus")
    size = (modulus.bit_length() + 7) // 8
    return pow(value, private_exponent, modulus).to_bytes(size, "little")


@dataclass(frozen=True)
class SecurityExchangePdu:
    """TS_SECURITY_PACKET: the client random encrypted with the server's public key; its
    length counts the 8 bytes of zero padding after the modulus-sized value."""

    encrypted_random: bytes
    flags: int = SEC_EXCHANGE_PKT
    flags_hi: int = 0

    def encode(self) -> bytes:
        w = Writer().u16le(self.flags | SEC_EXCHANGE_PKT).u16le(self.flags_hi)
        return w.u32le(len(self.encrypted_random)).bytes(self.encrypted_random).value()

    @classmethod
    def decode(cls, data: bytes) -> SecurityExchangePdu:
        r = Reader(data, "Security Exchange PDU")
        flags, flags_hi = r.u16le(), r.u16le()
        if not flags & SEC_EXCHANGE_PKT:
            raise r.fail(f"security flags {flags:#06x} lack SEC_EXCHANGE_PKT")
        length = r.u32le()
        if not 8 < length <= MAX_ENCRYPTED_RANDOM:
            raise r.fail(f"encrypted client random of {length} bytes (allowed 9.."
                         f"{MAX_ENCRYPTED_RANDOM})")
        value = r.bytes(length)
        r.expect_end()
        return cls(value, flags, flags_hi)

    @classmethod
    def for_random(cls, client_random: bytes, modulus: int, exponent: int,
                   *, license_encrypt: bool = False) -> SecurityExchangePdu:
        from .share import SEC_LICENSE_ENCRYPT_CS

        size = (modulus.bit_length() + 7) // 8
        value = rsa_public_encrypt(client_random, modulus, exponent, size) + b"\x00" * 8
        flags = SEC_EXCHANGE_PKT | (SEC_LICENSE_ENCRYPT_CS if license_encrypt else 0)
        return cls(value, flags)

    def client_random(self, modulus: int, private_exponent: int) -> bytes:
        size = (modulus.bit_length() + 7) // 8
        value = self.encrypted_random
        if len(value) < size:
            raise ParseError("Security Exchange PDU", f"encrypted random of {len(value)} bytes "
                             f"for a {size}-byte modulus")
        return rsa_private_decrypt(value[:size], modulus, private_exponent)[:RANDOM_LEN]


def choose_method(client_methods: int, client_ext_methods: int, level: int) -> int | None:
    """The method a Windows server selects from the client's list at its encryption level
    (5.3.2): High wants 128-bit; Low and Client Compatible take the client's strongest RC4.
    None when nothing fits (the server then ends the connection)."""
    from .gcc import ENCRYPTION_LEVEL_FIPS, ENCRYPTION_LEVEL_HIGH

    offered = client_methods or client_ext_methods  # French-locale clients use the ext field
    if level == ENCRYPTION_LEVEL_FIPS:
        return ENCRYPTION_METHOD_FIPS if offered & ENCRYPTION_METHOD_FIPS else None
    if level == ENCRYPTION_LEVEL_HIGH:
        return ENCRYPTION_METHOD_128BIT if offered & ENCRYPTION_METHOD_128BIT else None
    for method in (ENCRYPTION_METHOD_128BIT, ENCRYPTION_METHOD_56BIT, ENCRYPTION_METHOD_40BIT):
        if offered & method:
            return method
    return None
