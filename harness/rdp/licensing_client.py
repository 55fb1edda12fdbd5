"""The client side of a server-started licence exchange (MS-RDPELE), sans-IO.

A server that does not answer the Client Info with STATUS_VALID_CLIENT sends a License Request
(server random, product, key exchange list, server certificate, scopes). A real client answers
with a New License Request (its random, a 48-byte premaster secret encrypted with the server's
RSA key, user and machine name); the server may then send a Platform Challenge, answered with an
RC4-encrypted Platform Challenge Response and hardware id under a MAC; the exchange ends with a
New License / Upgrade License or a License Error (STATUS_VALID_CLIENT, ST_NO_TRANSITION).

Keys (MS-RDPELE 5.1.3): MasterSecret = the 48-byte salted expansion of the premaster secret
with (client random, server random); SessionKeyBlob = the same of the master secret with the
randoms swapped; MACSaltKey its first 16 bytes; LicensingEncryptionKey = MD5(its second 16
bytes + client random + server random). The probe keeps no licence: each run is a new client.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass

from .errors import ProtocolFailure
from .licensing import (
    ERROR_ALERT,
    LICENSE_REQUEST,
    NEW_LICENSE,
    NEW_LICENSE_REQUEST,
    PLATFORM_CHALLENGE,
    PLATFORM_CHALLENGE_RESPONSE,
    PREAMBLE_VERSION_3_0,
    UPGRADE_LICENSE,
    LicenseErrorMessage,
)
from .proprietary_cert import RsaPublicKey, decode_server_certificate
from .rdpsec import PAD1, PAD2, hash_48, rc4, rsa_public_encrypt
from .wire import Reader, Writer

KEY_EXCHANGE_ALG_RSA = 0x00000001
# PlatformId: CLIENT_OS_ID_WINNT_POST_52 | CLIENT_IMAGE_ID_MICROSOFT (MS-RDPELE 2.2.2.2)
PLATFORM_ID = 0x04000000 | 0x00010000
BB_RANDOM_BLOB = 0x0002
BB_ENCRYPTED_DATA_BLOB = 0x0009
BB_CLIENT_USER_NAME_BLOB = 0x000F
BB_CLIENT_MACHINE_NAME_BLOB = 0x0010
OTHER_PLATFORM_CHALLENGE_TYPE = 0x0100
LICENSE_DETAIL_DETAIL = 0x0003
PLATFORM_CHALLENGE_RESPONSE_VERSION = 0x0100
MAX_BLOB = 16 * 1024  # a certificate chain is the largest blob a License Request carries
MAX_SCOPES = 64
RANDOM_LENGTH = 32
PREMASTER_LENGTH = 48


def license_mac(mac_salt_key: bytes, data: bytes) -> bytes:
    """The 16-byte MAC of MS-RDPELE (MS-RDPBCGR 5.3.6.1 without truncation)."""
    sha = hashlib.sha1(mac_salt_key + PAD1 + len(data).to_bytes(4, "little") + data).digest()
    return hashlib.md5(mac_salt_key + PAD2 + sha).digest()


def _read_blob(r: Reader, what: str) -> tuple[int, bytes]:
    blob_type, length = r.u16le(), r.u16le()
    if length > MAX_BLOB:
        raise r.fail(f"{what} of {length} bytes, over {MAX_BLOB}")
    return blob_type, r.bytes(length)


def _blob(w: Writer, blob_type: int, data: bytes) -> None:
    w.u16le(blob_type).u16le(len(data)).bytes(data)


@dataclass(frozen=True)
class LicenseRequest:
    """SERVER_LICENSE_REQUEST (MS-RDPELE 2.2.2.1), the fields a client uses."""

    server_random: bytes
    company: str
    product_id: str
    certificate: bytes
    scopes: tuple[bytes, ...]

    @classmethod
    def decode(cls, body: bytes) -> LicenseRequest:
        r = Reader(body, "License Request")
        server_random = r.bytes(RANDOM_LENGTH)
        r.u32le()  # dwVersion of the product
        company = r.bytes(_bounded(r, "pbCompanyName"))
        product = r.bytes(_bounded(r, "pbProductId"))
        _read_blob(r, "KeyExchangeList")
        _, certificate = _read_blob(r, "ServerCertificate")
        count = r.u32le()
        if count > MAX_SCOPES:
            raise r.fail(f"{count} scopes, over {MAX_SCOPES}")
        scopes = tuple(_read_blob(r, "Scope")[1] for _ in range(count))
        return cls(server_random, _utf16(company), _utf16(product), certificate, scopes)


def _bounded(r: Reader, what: str) -> int:
    n = r.u32le()
    if n > MAX_BLOB:
        raise r.fail(f"{what} of {n} bytes, over {MAX_BLOB}")
    return n


def _utf16(raw: bytes) -> str:
    return raw.decode("utf-16-le", "replace").rstrip("\0")


@dataclass(frozen=True)
class LicensingKeys:
    mac_salt_key: bytes
    encryption_key: bytes

    @classmethod
    def derive(cls, premaster: bytes, client_random: bytes, server_random: bytes
               ) -> LicensingKeys:
        master = hash_48(premaster, client_random, server_random, ord("A"))
        session_blob = hash_48(master, server_random, client_random, ord("A"))
        key = hashlib.md5(session_blob[16:32] + client_random + server_random).digest()
        return cls(session_blob[:16], key)


@dataclass(frozen=True)
class LicensingStep:
    """What the client does after one server licensing message: send `reply` (preamble and
    message, to wrap in the security header), and whether licensing is over."""

    reply: tuple[int, bytes] | None = None  # (bMsgType, message)
    done: bool = False
    detail: str = ""


class LicensingClient:
    """One exchange. `fallback_certificate` is the GCC Server Security Data certificate, used
    when the License Request carries none (Standard RDP Security)."""

    def __init__(self, user: str, machine: str, *, fallback_certificate: bytes | None = None,
                 random: Callable[[int], bytes] = os.urandom) -> None:
        self.user, self.machine = user, machine
        self._fallback = fallback_certificate
        self._random = random
        self.keys: LicensingKeys | None = None
        self.messages: list[str] = []  # what the server sent, in order (for the trace)
        self.challenge_mac_ok: bool | None = None

    def receive(self, msg_type: int, message: bytes | LicenseErrorMessage) -> LicensingStep:
        if msg_type == ERROR_ALERT:
            assert isinstance(message, LicenseErrorMessage)
            self.messages.append(f"error {message.error_code:#x}")
            if message.is_valid_client:
                return LicensingStep(done=True, detail="STATUS_VALID_CLIENT")
            raise ProtocolFailure("licensing", "server ended licensing with error "
                                  f"{message.error_code:#x} (state transition "
                                  f"{message.state_transition})", event="license_error",
                                  detail={"error_code": f"{message.error_code:#x}"})
        assert isinstance(message, bytes)
        if msg_type == LICENSE_REQUEST:
            self.messages.append("License Request")
            return LicensingStep(reply=(NEW_LICENSE_REQUEST, self._new_license_request(message)))
        if msg_type == PLATFORM_CHALLENGE:
            self.messages.append("Platform Challenge")
            return LicensingStep(reply=(PLATFORM_CHALLENGE_RESPONSE,
                                        self._challenge_response(message)))
        if msg_type in (NEW_LICENSE, UPGRADE_LICENSE):
            self.messages.append("New License" if msg_type == NEW_LICENSE else "Upgrade License")
            return LicensingStep(done=True, detail="licence issued (not kept)")
        raise ProtocolFailure("licensing", f"unexpected licensing message {msg_type:#x}",
                              event="protocol_error")

    def _new_license_request(self, body: bytes) -> bytes:
        request = LicenseRequest.decode(body)
        raw = request.certificate or self._fallback
        if not raw:
            raise ProtocolFailure("licensing", "License Request without a server certificate",
                                  event="protocol_error")
        key: RsaPublicKey = decode_server_certificate(raw).public_key
        client_random = self._random(RANDOM_LENGTH)
        premaster = self._random(PREMASTER_LENGTH)
        self.keys = LicensingKeys.derive(premaster, client_random, request.server_random)
        encrypted = rsa_public_encrypt(premaster, key.modulus, key.exponent, key.size) + \
            b"\x00" * 8
        w = Writer().u32le(KEY_EXCHANGE_ALG_RSA).u32le(PLATFORM_ID).bytes(client_random)
        _blob(w, BB_RANDOM_BLOB, encrypted)
        _blob(w, BB_CLIENT_USER_NAME_BLOB, self.user.encode("ascii", "replace") + b"\0")
        _blob(w, BB_CLIENT_MACHINE_NAME_BLOB, self.machine.encode("ascii", "replace") + b"\0")
        return w.value()

    def _challenge_response(self, body: bytes) -> bytes:
        if self.keys is None:
            raise ProtocolFailure("licensing", "Platform Challenge before any License Request",
                                  event="protocol_error")
        r = Reader(body, "Platform Challenge")
        r.u32le()  # ConnectFlags
        _, encrypted = _read_blob(r, "EncryptedPlatformChallenge")
        mac = r.bytes(16)
        challenge = rc4(self.keys.encryption_key, encrypted)
        self.challenge_mac_ok = license_mac(self.keys.mac_salt_key, challenge) == mac
        response = Writer().u16le(PLATFORM_CHALLENGE_RESPONSE_VERSION)
        response.u16le(OTHER_PLATFORM_CHALLENGE_TYPE).u16le(LICENSE_DETAIL_DETAIL)
        response.u16le(len(challenge)).bytes(challenge)
        data = response.value()
        hwid = PLATFORM_ID.to_bytes(4, "little") + hashlib.md5(
            self.machine.encode("utf-8")).digest()
        w = Writer()
        _blob(w, BB_ENCRYPTED_DATA_BLOB, rc4(self.keys.encryption_key, data))
        _blob(w, BB_ENCRYPTED_DATA_BLOB, rc4(self.keys.encryption_key, hwid))
        w.bytes(license_mac(self.keys.mac_salt_key, data + hwid))
        return w.value()


def preamble(msg_type: int, message: bytes) -> bytes:
    """The licensing preamble (version 3) and the message: what goes after the security
    header."""
    return Writer().u8(msg_type).u8(PREAMBLE_VERSION_3_0).u16le(4 + len(message)) \
        .bytes(message).value()
