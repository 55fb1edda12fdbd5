"""Licensing PDUs (MS-RDPBCGR 2.2.1.12, MS-RDPELE 2.2.2): the preamble and the error message.

Under TLS/CredSSP the usual exchange is a single server License Error PDU with
STATUS_VALID_CLIENT / ST_NO_TRANSITION and an empty BB_ERROR_BLOB ("no licensing needed").
Other licensing messages are kept raw: the lab reproduces connection failures, not CAL issuance.
"""

from __future__ import annotations

from dataclasses import dataclass

from .share import SEC_ENCRYPT, SEC_LICENSE_PKT, SecurityHeader
from .wire import Reader, Writer

# bMsgType
LICENSE_REQUEST = 0x01
PLATFORM_CHALLENGE = 0x02
NEW_LICENSE = 0x03
UPGRADE_LICENSE = 0x04
LICENSE_INFO = 0x12
NEW_LICENSE_REQUEST = 0x13
PLATFORM_CHALLENGE_RESPONSE = 0x15
ERROR_ALERT = 0xFF

# preamble flags
PREAMBLE_VERSION_2_0 = 0x02
PREAMBLE_VERSION_3_0 = 0x03
LICENSE_PROTOCOL_VERSION_MASK = 0x0F
EXTENDED_ERROR_MSG_SUPPORTED = 0x80

# dwErrorCode
ERR_INVALID_SERVER_CERTIFICATE = 0x01
ERR_NO_LICENSE = 0x02
ERR_INVALID_MAC = 0x03
ERR_INVALID_SCOPE = 0x04
ERR_NO_LICENSE_SERVER = 0x06
STATUS_VALID_CLIENT = 0x07
ERR_INVALID_CLIENT = 0x08
ERR_INVALID_PRODUCTID = 0x0B
ERR_INVALID_MESSAGE_LEN = 0x0C

# dwStateTransition
ST_TOTAL_ABORT = 0x01
ST_NO_TRANSITION = 0x02
ST_RESET_PHASE_TO_START = 0x03
ST_RESEND_LAST_MESSAGE = 0x04

# wBlobType
BB_ANY_BLOB = 0x0000
BB_DATA_BLOB = 0x0001
BB_RANDOM_BLOB = 0x0002
BB_CERTIFICATE_BLOB = 0x0003
BB_ERROR_BLOB = 0x0004

PREAMBLE_LEN = 4


@dataclass(frozen=True)
class LicenseErrorMessage:
    """LICENSE_ERROR_MESSAGE: error code, state transition and a BLOB (empty BB_ERROR_BLOB)."""

    error_code: int
    state_transition: int
    blob_type: int = BB_ERROR_BLOB
    blob_data: bytes = b""

    @property
    def is_valid_client(self) -> bool:
        """True when licensing is over and the session may go on (what FreeRDP accepts too)."""
        return self.error_code == STATUS_VALID_CLIENT or self.state_transition == ST_NO_TRANSITION

    def encode(self) -> bytes:
        w = Writer().u32le(self.error_code).u32le(self.state_transition)
        return w.u16le(self.blob_type).u16le(len(self.blob_data)).bytes(self.blob_data).value()

    @classmethod
    def decode(cls, r: Reader) -> LicenseErrorMessage:
        code, transition = r.u32le(), r.u32le()
        blob_type, blob_len = r.u16le(), r.u16le()
        return cls(code, transition, blob_type, r.bytes(blob_len))


@dataclass(frozen=True)
class LicensePdu:
    """A licensing PDU as carried in Send Data: basic security header (SEC_LICENSE_PKT),
    preamble (bMsgType, flags, wMsgSize) and the message (typed for ERROR_ALERT, else raw).

    Decoding accepts any preamble flags (version 2 or 3, with or without
    EXTENDED_ERROR_MSG_SUPPORTED, which FreeRDP clients set and Windows servers may set)."""

    msg_type: int
    message: LicenseErrorMessage | bytes
    flags: int = PREAMBLE_VERSION_3_0
    security_flags: int = SEC_LICENSE_PKT
    security_flags_hi: int = 0

    @classmethod
    def valid_client(cls, extended_error: bool = False) -> LicensePdu:
        """The server's "no licensing needed" answer (STATUS_VALID_CLIENT, ST_NO_TRANSITION)."""
        flags = PREAMBLE_VERSION_3_0 | (EXTENDED_ERROR_MSG_SUPPORTED if extended_error else 0)
        return cls(ERROR_ALERT, LicenseErrorMessage(STATUS_VALID_CLIENT, ST_NO_TRANSITION), flags)

    @property
    def preamble_version(self) -> int:
        return self.flags & LICENSE_PROTOCOL_VERSION_MASK

    @property
    def extended_error(self) -> bool:
        return bool(self.flags & EXTENDED_ERROR_MSG_SUPPORTED)

    @property
    def is_valid_client(self) -> bool:
        return isinstance(self.message, LicenseErrorMessage) and self.message.is_valid_client

    def encode(self) -> bytes:
        body = (
            self.message.encode() if isinstance(self.message, LicenseErrorMessage) else self.message
        )
        header = SecurityHeader(self.security_flags, self.security_flags_hi).encode()
        preamble = Writer().u8(self.msg_type).u8(self.flags).u16le(PREAMBLE_LEN + len(body))
        return header + preamble.value() + body

    @classmethod
    def decode(cls, data: bytes | Reader) -> LicensePdu:
        r = data if isinstance(data, Reader) else Reader(data, "licensing PDU")
        sec = SecurityHeader.decode(r)
        if not sec.flags & SEC_LICENSE_PKT:
            raise r.fail(f"security flags {sec.flags:#06x} lack SEC_LICENSE_PKT")
        if sec.flags & SEC_ENCRYPT:
            raise r.fail("encrypted licensing PDU (Standard RDP Security) is not supported")
        msg_type, flags, size = r.u8(), r.u8(), r.u16le()
        if size < PREAMBLE_LEN or size - PREAMBLE_LEN > r.remaining:
            raise r.fail(f"wMsgSize {size} does not fit the {r.remaining + 4} bytes present")
        body = r.sub(size - PREAMBLE_LEN, "licensing message")
        message: LicenseErrorMessage | bytes
        message = LicenseErrorMessage.decode(body) if msg_type == ERROR_ALERT else body.rest()
        return cls(msg_type, message, flags, sec.flags, sec.flags_hi)
