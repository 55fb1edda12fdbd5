"""The client's side of a licence exchange a server starts (MS-RDPELE 1.3.3, 2.2.2), sans-IO:
License Request -> New License Request; Platform Challenge -> Platform Challenge Response;
then New License / Upgrade License / STATUS_VALID_CLIENT end it. This is what real clients do
against servers that license (xrdp 0.9, a licensed RDS host); keys per MS-RDPELE 5.1.

Every BLOB length has a maximum; malformed input is a ParseError, a refused exchange a
ProtocolFailure at the licensing stage.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .errors import ProtocolFailure
from .licensing import (
    ERROR_ALERT,
    LICENSE_REQUEST,
    NEW_LICENSE,
    NEW_LICENSE_REQUEST,
    PLATFORM_CHALLENGE,
    PLATFORM_CHALLENGE_RESPONSE,
    PREAMBLE_LEN,
    PREAMBLE_VERSION_3_0,
    UPGRADE_LICENSE,
    LicenseErrorMessage,
)
from .proprietary_cert import RsaPublicKey, decode_server_certificate
from .rdpsec import PAD1, PAD2, _md5, _sha1, hash_48, rc4, rsa_public_encrypt
from .wire import Reader, Writer

KEY_EXCHANGE_ALG_RSA = 0x00000001
CLIENT_OS_ID_WINNT_POST_52 = 0x04000000
CLIENT_IMAGE_ID_MICROSOFT = 0x00010000
PLATFORM_ID = CLIENT_OS_ID_WINNT_POST_52 | CLIENT_IMAGE_ID_MICROSOFT
BB_RANDOM_BLOB = 0x0002
BB_ENCRYPTED_DATA_BLOB = 0x0009
BB_CLIENT_USER_NAME_BLOB = 0x000F
BB_CLIENT_MACHINE_NAME_BLOB = 0x0010
MAX_BLOB = 16384
MAX_SCOPES = 16
MAX_PRODUCT_FIELD = 1024


def _blob(r: Reader, what: str) -> tuple[int, bytes]:
    blob_type, size = r.u16le(), r.u16le()
    if size > MAX_BLOB:
        raise r.fail(f"{what} BLOB of {size} bytes (allowed {MAX_BLOB})")
    return blob_type, r.bytes(size)


def _write_blob(w: Writer, blob_type: int, data: bytes) -> None:
    w.u16le(blob_type).u16le(len(data)).bytes(data)


@dataclass(frozen=True)
class LicenseRequest:
    """SERVER_LICENSE_REQUEST: the server random and (maybe) its certificate."""

    server_random: bytes
    company: bytes
    product_id: bytes
    certificate: bytes
    scopes: tuple[bytes, ...]

    @classmethod
    def decode(cls, data: bytes) -> LicenseRequest:
        r = Reader(data, "License Request")
        server_random = r.bytes(32)
        r.u32le()  # ProductInfo.dwVersion
        fields = []
        for name in ("company name", "product id"):
            size = r.u32le()
            if size > MAX_PRODUCT_FIELD:
                raise r.fail(f"{name} of {size} bytes (allowed {MAX_PRODUCT_FIELD})")
            fields.append(r.bytes(size))
        _blob(r, "key exchange list")
        _cert_type, certificate = _blob(r, "server certificate")
        count = r.u32le()
        if count > MAX_SCOPES:
            raise r.fail(f"{count} scopes (allowed {MAX_SCOPES})")
        scopes = tuple(_blob(r, "scope")[1] for _ in range(count))
        return cls(server_random, fields[0], fields[1], certificate, scopes)


@dataclass(frozen=True)
class LicensingKeys:
    """MS-RDPELE 5.1.2: the MAC salt key and the licensing encryption key."""

    mac_salt_key: bytes
    encryption_key: bytes

    @classmethod
    def derive(cls, premaster: bytes, client_random: bytes, server_random: bytes
               ) -> LicensingKeys:
        master = hash_48(premaster, client_random, server_random, ord("A"))
        blob = hash_48(master, server_random, client_random, ord("A"))  # SaltedHash2
        return cls(blob[:16], _md5(blob[16:32], client_random, server_random))

    def mac(self, data: bytes) -> bytes:
        """MACData: the full 16-byte MD5 of MS-RDPELE 5.1.6 (not truncated as in 5.3.6)."""
        sha = _sha1(self.mac_salt_key, PAD1, len(data).to_bytes(4, "little"), data)
        return _md5(self.mac_salt_key, PAD2, sha)


def _message(msg_type: int, body: bytes) -> bytes:
    """Preamble (bMsgType, flags, wMsgSize) and message: what goes after the security header."""
    return Writer().u8(msg_type).u8(PREAMBLE_VERSION_3_0).u16le(PREAMBLE_LEN + len(body)) \
        .bytes(body).value()


class LicenseClient:
    """One licence exchange: feed each server licensing message, send what it returns."""

    def __init__(self, user: str, machine: str, fallback_key: RsaPublicKey | None) -> None:
        self.user = user
        self.machine = machine
        self.fallback_key = fallback_key  # the GCC server certificate's key (RDP security)
        self.keys: LicensingKeys | None = None
        self.done = False
        self.answer = ""
        self.challenge_mac_ok: bool | None = None

    def receive(self, msg_type: int, body: bytes) -> bytes | None:
        """The reply (preamble + message) to one server message, None when the exchange is
        over (`done`); ProtocolFailure when the server ends it with an error."""
        if msg_type == LICENSE_REQUEST:
            return self._new_license_request(LicenseRequest.decode(body))
        if msg_type == PLATFORM_CHALLENGE:
            return self._challenge_response(body)
        if msg_type in (NEW_LICENSE, UPGRADE_LICENSE):
            self.done, self.answer = True, "NEW_LICENSE" if msg_type == NEW_LICENSE \
                else "UPGRADE_LICENSE"
            return None
        if msg_type == ERROR_ALERT:
            error = LicenseErrorMessage.decode(Reader(body, "License Error"))
            if error.is_valid_client:
                self.done, self.answer = True, "STATUS_VALID_CLIENT"
                return None
            raise ProtocolFailure("licensing", f"server licensing error {error.error_code:#x} "
                                  f"(state transition {error.state_transition})",
                                  event=f"license_error:{error.error_code:#x}")
        raise ProtocolFailure("licensing", f"unexpected licensing message {msg_type:#x}",
                              event="protocol_error")

    def _new_license_request(self, request: LicenseRequest) -> bytes:
        if request.certificate:
            key = decode_server_certificate(request.certificate).public_key
        elif self.fallback_key is not None:
            key = self.fallback_key
        else:
            raise ProtocolFailure("licensing", "License Request without a server certificate, "
                                  "and none from the Server Security Data", event="protocol_error")
        client_random, premaster = os.urandom(32), os.urandom(48)
        self.keys = LicensingKeys.derive(premaster, client_random, request.server_random)
        encrypted = rsa_public_encrypt(premaster, key.modulus, key.exponent, key.size)
        w = Writer().u32le(KEY_EXCHANGE_ALG_RSA).u32le(PLATFORM_ID).bytes(client_random)
        _write_blob(w, BB_RANDOM_BLOB, encrypted + b"\x00" * 8)
        _write_blob(w, BB_CLIENT_USER_NAME_BLOB, self.user.encode("ascii", "replace") + b"\x00")
        _write_blob(w, BB_CLIENT_MACHINE_NAME_BLOB,
                    self.machine.encode("ascii", "replace") + b"\x00")
        return _message(NEW_LICENSE_REQUEST, w.value())

    def _challenge_response(self, body: bytes) -> bytes:
        if self.keys is None:
            raise ProtocolFailure("licensing", "Platform Challenge before a License Request",
                                  event="protocol_error")
        r = Reader(body, "Platform Challenge")
        r.u32le()  # ConnectFlags
        _kind, encrypted = _blob(r, "encrypted platform challenge")
        mac = r.bytes(16)
        challenge = rc4(self.keys.encryption_key, encrypted)
        # xrdp sends a fixed challenge whose MAC cannot match; real clients answer it anyway
        self.challenge_mac_ok = self.keys.mac(challenge) == mac
        response = Writer().u16le(0x0100).u16le(0x0100).u16le(0x0003).u16le(len(challenge)) \
            .bytes(challenge).value()
        hwid = Writer().u32le(PLATFORM_ID).bytes(os.urandom(16)).value()
        w = Writer()
        _write_blob(w, BB_ENCRYPTED_DATA_BLOB, rc4(self.keys.encryption_key, response))
        _write_blob(w, BB_ENCRYPTED_DATA_BLOB, rc4(self.keys.encryption_key, hwid))
        w.bytes(self.keys.mac(response + hwid))
        return _message(PLATFORM_CHALLENGE_RESPONSE, w.value())
