"""NTLM (MS-NLMP): message parsing, our own acceptor and initiator, NTLMv2 session security.

Written from MS-NLMP and checked against winpr's NTLM (FreeRDP 2.11) for the details FreeRDP is
strict about: the CHALLENGE carries the 8-byte Version whenever NTLMSSP_NEGOTIATE_VERSION is set
and nothing follows TargetInfo (winpr's MIC covers the CHALLENGE as it re-measures it); the NTLMv2
proof is checked over the client's blob exactly as received (winpr pads it with 8 zero bytes,
Windows with 4). Only NTLMv2 with extended session security is accepted, as Windows does at
LmCompatibilityLevel 5.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import IntEnum, IntFlag

from cryptography.hazmat.decrepit.ciphers.algorithms import ARC4
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext

from .errors import ParseError, ProtocolFailure, StateError
from .md4 import md4
from .wire import Reader, Writer

SIGNATURE = b"NTLMSSP\x00"
NEGOTIATE_MESSAGE = 1
CHALLENGE_MESSAGE = 2
AUTHENTICATE_MESSAGE = 3

STATUS_LOGON_FAILURE = 0xC000006D
STATUS_NOT_SUPPORTED = 0xC00000BB
SEC_E_MESSAGE_ALTERED = 0x8009030F  # an SSPI status, not an NTSTATUS

# Version fields: major, minor, build (LE), 3 reserved bytes, NTLMSSP_REVISION_W2K3 (15).
WINDOWS_SERVER_2022_VERSION = bytes([10, 0]) + struct.pack("<H", 20348) + b"\x00\x00\x00\x0f"
WINDOWS_10_VERSION = bytes([10, 0]) + struct.pack("<H", 19045) + b"\x00\x00\x00\x0f"

_FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)
_UNIX_TO_FILETIME = 116444736000000000  # 100 ns intervals from 1601 to 1970


class NegotiateFlags(IntFlag):
    UNICODE = 0x00000001
    OEM = 0x00000002
    REQUEST_TARGET = 0x00000004
    SIGN = 0x00000010
    SEAL = 0x00000020
    DATAGRAM = 0x00000040
    LM_KEY = 0x00000080
    NTLM = 0x00000200
    ANONYMOUS = 0x00000800
    OEM_DOMAIN_SUPPLIED = 0x00001000
    OEM_WORKSTATION_SUPPLIED = 0x00002000
    ALWAYS_SIGN = 0x00008000
    TARGET_TYPE_DOMAIN = 0x00010000
    TARGET_TYPE_SERVER = 0x00020000
    EXTENDED_SESSION_SECURITY = 0x00080000
    IDENTIFY = 0x00100000
    REQUEST_NON_NT_SESSION_KEY = 0x00400000
    TARGET_INFO = 0x00800000
    VERSION = 0x02000000
    KEY_128 = 0x20000000
    KEY_EXCH = 0x40000000
    KEY_56 = 0x80000000


NF = NegotiateFlags

# What Windows 10 mstsc sends in its CredSSP NEGOTIATE (0xE20882B7).
CLIENT_FLAGS = (
    NF.KEY_56
    | NF.KEY_EXCH
    | NF.KEY_128
    | NF.VERSION
    | NF.EXTENDED_SESSION_SECURITY
    | NF.ALWAYS_SIGN
    | NF.NTLM
    | NF.LM_KEY
    | NF.SEAL
    | NF.SIGN
    | NF.REQUEST_TARGET
    | NF.OEM
    | NF.UNICODE
)
# Flags an acceptor echoes from the NEGOTIATE when the client asked for them.
_ECHOED = (
    NF.REQUEST_TARGET
    | NF.SIGN
    | NF.SEAL
    | NF.ALWAYS_SIGN
    | NF.EXTENDED_SESSION_SECURITY
    | NF.VERSION
    | NF.KEY_128
    | NF.KEY_EXCH
    | NF.KEY_56
    | NF.IDENTIFY
)


class AvId(IntEnum):
    EOL = 0
    NB_COMPUTER = 1
    NB_DOMAIN = 2
    DNS_COMPUTER = 3
    DNS_DOMAIN = 4
    DNS_TREE = 5
    FLAGS = 6
    TIMESTAMP = 7
    SINGLE_HOST = 8
    TARGET_NAME = 9
    CHANNEL_BINDINGS = 10


AV_FLAG_MIC = 0x2


class NtlmAuthError(ProtocolFailure):
    """Authentication refused; `status` is the NTSTATUS Windows would report (or an SSPI code)."""

    def __init__(self, reason: str, status: int = STATUS_LOGON_FAILURE) -> None:
        super().__init__("credssp", reason, status)
        self.status = status


# --- primitives -----------------------------------------------------------------------------


def hmac_md5(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.md5).digest()


def rc4(key: bytes, data: bytes) -> bytes:
    """One-shot RC4 (MS-NLMP's RC4K)."""
    return Cipher(ARC4(key), mode=None).encryptor().update(data)


def _utf16(s: str) -> bytes:
    return s.encode("utf-16-le", "surrogatepass")


def nt_hash(password: str) -> bytes:
    """NTOWFv1: MD4 of the UTF-16LE password."""
    return md4(_utf16(password))


def ntowfv2(password: str, user: str, domain: str) -> bytes:
    """NTOWFv2 = ResponseKeyNT: HMAC-MD5(NT hash, UTF-16LE(Uppercase(user) + domain))."""
    return hmac_md5(nt_hash(password), _utf16(user.upper() + domain))


def filetime(unix_seconds: float) -> int:
    """Windows FILETIME (100 ns since 1601) for a Unix time."""
    return _UNIX_TO_FILETIME + round(unix_seconds * 10_000_000)


def datetime_from_filetime(ft: int, what: str = "FILETIME") -> datetime:
    try:
        return _FILETIME_EPOCH + timedelta(microseconds=ft // 10)
    except OverflowError as exc:
        raise ParseError(what, f"timestamp {ft} out of range") from exc


# MS-NLMP 2.2.2.1: the AV pairs whose value has a fixed size (a flags word, a FILETIME)
_AV_FIXED_SIZES = {AvId.FLAGS: 4, AvId.TIMESTAMP: 8}
_AV_NAMES = {AvId.FLAGS: "MsvAvFlags", AvId.TIMESTAMP: "MsvAvTimestamp"}


def parse_av_pairs(data: bytes, what: str = "AV_PAIR list") -> list[tuple[int, bytes]]:
    """AV pairs up to MsvAvEOL (required); anything after EOL is padding and ignored."""
    r = Reader(data, what)
    pairs: list[tuple[int, bytes]] = []
    while True:
        av_id, length = r.u16le(), r.u16le()
        value = r.bytes(length)
        if av_id == AvId.EOL:
            return pairs
        size = _AV_FIXED_SIZES.get(av_id)
        if size is not None and length != size:
            raise ParseError(what, f"{_AV_NAMES[av_id]} of {length} bytes, expected {size}")
        pairs.append((av_id, value))


def encode_av_pairs(pairs: list[tuple[int, bytes]]) -> bytes:
    w = Writer()
    for av_id, value in pairs:
        w.u16le(av_id).u16le(len(value)).bytes(value)
    return w.u32le(0).value()


def _av_get(pairs: list[tuple[int, bytes]], av_id: int) -> bytes | None:
    return next((v for i, v in pairs if i == av_id), None)


def _decode_text(data: bytes, unicode: bool, what: str) -> str:
    if not unicode:
        return data.decode("latin-1")
    if len(data) % 2:
        raise ParseError(what, "odd-length UTF-16 string")
    return data.decode("utf-16-le", "surrogatepass")


def _header(token: bytes, msg_type: int, what: str) -> Reader:
    r = Reader(token, what)
    if r.bytes(8) != SIGNATURE:
        raise r.fail("not an NTLMSSP message")
    got = r.u32le()
    if got != msg_type:
        raise r.fail(f"message type {got}, expected {msg_type}")
    return r


def _fields(r: Reader) -> tuple[int, int]:
    length, _max_length, offset = r.u16le(), r.u16le(), r.u32le()
    return length, offset


def _payload(token: bytes, fld: tuple[int, int], what: str) -> bytes:
    length, offset = fld
    if not length:
        return b""
    if offset + length > len(token):
        raise ParseError(
            what, f"field at {offset}+{length} runs past the {len(token)}-byte message"
        )
    return token[offset : offset + length]


def _min_offset(fields: list[tuple[int, int]], default: int) -> int:
    return min((off for length, off in fields if length), default=default)


# --- CHALLENGE ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChallengeInfo:
    """What a server's CHALLENGE discloses: NTLM target names, server clock, OS version."""

    flags: int
    server_challenge: bytes
    target_name: str
    nb_domain: str | None
    nb_computer: str | None
    dns_domain: str | None
    dns_computer: str | None
    dns_tree: str | None
    timestamp: datetime | None
    version: bytes | None
    target_info: bytes = field(repr=False)
    raw: bytes = field(repr=False)

    @property
    def filetime(self) -> bytes | None:
        """The raw MsvAvTimestamp value (8 bytes), as an initiator echoes it."""
        pairs = parse_av_pairs(self.target_info) if self.target_info else []
        return _av_get(pairs, AvId.TIMESTAMP)

    @property
    def os_version(self) -> str | None:
        """'major.minor.build' from the Version field, e.g. '10.0.20348'."""
        if self.version is None:
            return None
        major, minor, build = (
            self.version[0],
            self.version[1],
            struct.unpack("<H", self.version[2:4])[0],
        )
        return f"{major}.{minor}.{build}"


def parse_challenge(token: bytes) -> ChallengeInfo:
    """Parse a CHALLENGE_MESSAGE; raises ParseError on anything malformed."""
    what = "NTLM CHALLENGE"
    r = _header(token, CHALLENGE_MESSAGE, what)
    name_f = _fields(r)
    flags = r.u32le()
    server_challenge = r.bytes(8)
    r.skip(8)
    info_f = _fields(r)
    version = None
    # Tolerate servers that set the VERSION flag without the field (pyspnego before its fix).
    if flags & NF.VERSION and _min_offset([name_f, info_f], len(token)) >= r.pos + 8:
        version = r.bytes(8)
    unicode = bool(flags & NF.UNICODE)
    target_name = _decode_text(_payload(token, name_f, what), unicode, what)
    target_info = _payload(token, info_f, what)
    pairs = parse_av_pairs(target_info, what) if target_info else []

    def text(av: AvId) -> str | None:
        v = _av_get(pairs, av)
        return None if v is None else _decode_text(v, True, what)

    ts = _av_get(pairs, AvId.TIMESTAMP)
    if ts is not None and len(ts) != 8:
        raise ParseError(what, f"MsvAvTimestamp of {len(ts)} bytes")
    return ChallengeInfo(
        flags=flags,
        server_challenge=server_challenge,
        target_name=target_name,
        nb_domain=text(AvId.NB_DOMAIN),
        nb_computer=text(AvId.NB_COMPUTER),
        dns_domain=text(AvId.DNS_DOMAIN),
        dns_computer=text(AvId.DNS_COMPUTER),
        dns_tree=text(AvId.DNS_TREE),
        timestamp=None if ts is None else datetime_from_filetime(struct.unpack("<Q", ts)[0], what),
        version=version,
        target_info=target_info,
        raw=bytes(token),
    )


# --- session security -----------------------------------------------------------------------

_CLIENT_SIGN = b"session key to client-to-server signing key magic constant\x00"
_SERVER_SIGN = b"session key to server-to-client signing key magic constant\x00"
_CLIENT_SEAL = b"session key to client-to-server sealing key magic constant\x00"
_SERVER_SEAL = b"session key to server-to-client sealing key magic constant\x00"


class SessionSecurity:
    """NTLMv2 extended session security (MS-NLMP 3.4): sign+seal outgoing, check+unseal incoming.

    wrap() output is what SSPI EncryptMessage gives CredSSP: the 16-byte signature, then the
    sealed data. Each direction keeps its own RC4 handle and sequence number.
    """

    def __init__(self, exported_session_key: bytes, flags: int, *, initiator: bool) -> None:
        if not flags & NF.EXTENDED_SESSION_SECURITY:
            raise NtlmAuthError("session security without NTLMv2 ESS", STATUS_NOT_SUPPORTED)
        key = exported_session_key
        seal_base = key if flags & NF.KEY_128 else key[:7] if flags & NF.KEY_56 else key[:5]
        c_sign = hashlib.md5(key + _CLIENT_SIGN).digest()
        s_sign = hashlib.md5(key + _SERVER_SIGN).digest()
        c_seal = hashlib.md5(seal_base + _CLIENT_SEAL).digest()
        s_seal = hashlib.md5(seal_base + _SERVER_SEAL).digest()
        out_sign, in_sign, out_seal, in_seal = (
            (c_sign, s_sign, c_seal, s_seal) if initiator else (s_sign, c_sign, s_seal, c_seal)
        )
        self._out_sign, self._in_sign = out_sign, in_sign
        self._out_seal, self._in_seal = out_seal, in_seal
        self._out = Cipher(ARC4(out_seal), mode=None).encryptor()
        self._in = Cipher(ARC4(in_seal), mode=None).decryptor()
        self._seal = bool(flags & NF.SEAL)
        self._key_exch = bool(flags & NF.KEY_EXCH)
        self.seq_out = 0
        self.seq_in = 0

    def _checksum(self, sign_key: bytes, seq: int, data: bytes, handle: CipherContext) -> bytes:
        mac = hmac_md5(sign_key, struct.pack("<I", seq) + data)[:8]
        return handle.update(mac) if self._key_exch else mac

    def wrap(self, data: bytes) -> bytes:
        sealed = self._out.update(data) if self._seal else bytes(data)
        checksum = self._checksum(self._out_sign, self.seq_out, data, self._out)
        signature = struct.pack("<I", 1) + checksum + struct.pack("<I", self.seq_out)
        self.seq_out += 1
        return signature + sealed

    def sign(self, data: bytes) -> bytes:
        """GSS_GetMIC (MS-NLMP 3.4.4.2): the 16-byte signature of `data`, nothing sealed."""
        checksum = self._checksum(self._out_sign, self.seq_out, data, self._out)
        signature = struct.pack("<I", 1) + checksum + struct.pack("<I", self.seq_out)
        self.seq_out += 1
        return signature

    def verify(self, data: bytes, signature: bytes) -> None:
        """GSS_VerifyMIC: raise NtlmAuthError unless `signature` signs `data`."""
        checksum = self._checksum(self._in_sign, self.seq_in, data, self._in)
        expected = struct.pack("<I", 1) + checksum + struct.pack("<I", self.seq_in)
        self.seq_in += 1
        if not hmac.compare_digest(signature, expected):
            raise NtlmAuthError("NTLM signature does not verify", SEC_E_MESSAGE_ALTERED)

    def reset_rc4(self, *, outgoing: bool) -> None:
        """Restart one direction's RC4 stream (MS-SPNG 3.3.5.1: the SPNEGO mechListMIC must not
        advance the key state the first signed message uses); sequence numbers go on."""
        if outgoing:
            self._out = Cipher(ARC4(self._out_seal), mode=None).encryptor()
        else:
            self._in = Cipher(ARC4(self._in_seal), mode=None).decryptor()

    def unwrap(self, data: bytes) -> bytes:
        if len(data) < 16:
            raise ParseError("NTLM sealed message", f"{len(data)} bytes, shorter than a signature")
        signature, body = data[:16], data[16:]
        plain = self._in.update(body) if self._seal else bytes(body)
        checksum = self._checksum(self._in_sign, self.seq_in, plain, self._in)
        expected = struct.pack("<I", 1) + checksum + struct.pack("<I", self.seq_in)
        self.seq_in += 1
        if not hmac.compare_digest(signature, expected):
            raise NtlmAuthError("NTLM message signature does not verify", SEC_E_MESSAGE_ALTERED)
        return plain


def _mic(
    key: bytes, negotiate: bytes, challenge: bytes, authenticate: bytes, mic_off: int
) -> bytes:
    zeroed = authenticate[:mic_off] + b"\x00" * 16 + authenticate[mic_off + 16 :]
    return hmac_md5(key, negotiate + challenge + zeroed)


# --- initiator ------------------------------------------------------------------------------


class NtlmInitiator:
    """The client side: step(None) -> NEGOTIATE, step(CHALLENGE) -> AUTHENTICATE, then wrap/unwrap.

    Builds messages as Windows does: version in every message, MIC whenever the server sent a
    timestamp (LmChallengeResponse then Z(24)), the blob padded with Z(4), a random exported
    session key under KEY_EXCH. `blob_padding=8` gives winpr's padding instead.
    """

    def __init__(
        self,
        username: str,
        password: str,
        domain: str,
        workstation: str = "",
        *,
        spn: str | None = None,
        version: bytes = WINDOWS_10_VERSION,
        flags: int = CLIENT_FLAGS,
        blob_padding: int = 4,
        clock: Callable[[], float] = time.time,
        random: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.username, self.password, self.domain = username, password, domain
        self._blob_padding = blob_padding
        self.workstation, self.spn = workstation, spn
        self._version, self._requested = version, int(flags)
        self._clock, self._random = clock, random
        self._negotiate: bytes | None = None
        self._security: SessionSecurity | None = None
        self.challenge: ChallengeInfo | None = None
        self.flags = 0
        self.session_key: bytes | None = None
        self.mic_present = False  # AUTHENTICATE carried a MIC (SPNEGO then needs mechListMIC)

    @property
    def complete(self) -> bool:
        return self._security is not None

    def step(self, token: bytes | None = None) -> bytes:
        if self._negotiate is None:
            if token:
                raise StateError("initial", "the initiator speaks first")
            self._negotiate = self._build_negotiate()
            return self._negotiate
        if self.complete:
            raise StateError("complete", "NTLM exchange already finished")
        if token is None:
            raise StateError("negotiate_sent", "expected the CHALLENGE")
        return self._build_authenticate(token)

    def _build_negotiate(self) -> bytes:
        w = Writer().bytes(SIGNATURE).u32le(NEGOTIATE_MESSAGE).u32le(self._requested)
        w.zeros(16)  # DomainNameFields and WorkstationFields, empty
        if self._requested & NF.VERSION:
            w.bytes(self._version)
        return w.value()

    def _build_authenticate(self, token: bytes) -> bytes:
        chal = parse_challenge(token)
        if not chal.flags & NF.UNICODE:
            raise NtlmAuthError("server did not select UNICODE", STATUS_NOT_SUPPORTED)
        flags = chal.flags & (self._requested | NF.TARGET_INFO)
        if flags & NF.EXTENDED_SESSION_SECURITY:
            flags &= ~NF.LM_KEY
        flags &= ~NF.OEM
        server_pairs = parse_av_pairs(chal.target_info) if chal.target_info else []
        ts = _av_get(server_pairs, AvId.TIMESTAMP)
        use_mic = ts is not None
        if ts is None:
            ts = struct.pack("<Q", filetime(self._clock()))
        pairs = [(i, v) for i, v in server_pairs if i != AvId.FLAGS]
        if use_mic:
            av_flags = int.from_bytes(_av_get(server_pairs, AvId.FLAGS) or b"\0\0\0\0", "little")
            pairs.append((AvId.FLAGS, struct.pack("<I", av_flags | AV_FLAG_MIC)))
        pairs.append((AvId.CHANNEL_BINDINGS, b"\x00" * 16))
        if self.spn:
            pairs.append((AvId.TARGET_NAME, _utf16(self.spn)))
        client_challenge = self._random(8)
        temp = (
            b"\x01\x01"
            + b"\x00" * 6
            + ts
            + client_challenge
            + b"\x00" * 4
            + encode_av_pairs(pairs)
            + b"\x00" * self._blob_padding
        )
        key = ntowfv2(self.password, self.username, self.domain)
        proof = hmac_md5(key, chal.server_challenge + temp)
        nt_response = proof + temp
        lm_response = (
            b"\x00" * 24
            if use_mic
            else hmac_md5(key, chal.server_challenge + client_challenge) + client_challenge
        )
        key_exchange_key = hmac_md5(key, proof)
        if flags & NF.KEY_EXCH:
            exported = self._random(16)
            encrypted_key = rc4(key_exchange_key, exported)
        else:
            exported, encrypted_key = key_exchange_key, b""

        payloads = [
            _utf16(self.domain),
            _utf16(self.username),
            _utf16(self.workstation),
            lm_response,
            nt_response,
            encrypted_key,
        ]
        mic_off = 64 + (8 if flags & NF.VERSION else 0)
        offset = mic_off + (16 if use_mic else 0)
        fields = {}
        for idx, data in enumerate(payloads):
            fields[idx] = (len(data), offset)
            offset += len(data)
        w = Writer().bytes(SIGNATURE).u32le(AUTHENTICATE_MESSAGE)
        for idx in (3, 4, 0, 1, 2, 5):  # Lm, Nt, Domain, User, Workstation, EncryptedKey
            length, off = fields[idx]
            w.u16le(length).u16le(length).u32le(off)
        w.u32le(flags)
        if flags & NF.VERSION:
            w.bytes(self._version)
        if use_mic:
            w.zeros(16)
        for data in payloads:
            w.bytes(data)
        auth = w.value()
        if use_mic:
            mic = _mic(exported, self._negotiate or b"", token, auth, mic_off)
            auth = auth[:mic_off] + mic + auth[mic_off + 16 :]
        self.challenge, self.flags, self.session_key = chal, flags, exported
        self.mic_present = use_mic
        self._security = SessionSecurity(exported, flags, initiator=True)
        return auth

    def wrap(self, data: bytes) -> bytes:
        if self._security is None:
            raise StateError("incomplete", "wrap before the NTLM exchange finished")
        return self._security.wrap(data)

    def unwrap(self, data: bytes) -> bytes:
        if self._security is None:
            raise StateError("incomplete", "unwrap before the NTLM exchange finished")
        return self._security.unwrap(data)

    def sign(self, data: bytes) -> bytes:
        return self._session().sign(data)

    def verify(self, data: bytes, signature: bytes) -> None:
        self._session().verify(data, signature)

    def reset_rc4(self, *, outgoing: bool) -> None:
        self._session().reset_rc4(outgoing=outgoing)

    def _session(self) -> SessionSecurity:
        if self._security is None:
            raise StateError("incomplete", "signing before the NTLM exchange finished")
        return self._security


# --- acceptor -------------------------------------------------------------------------------


class NtlmAcceptor:
    """Our NTLM server: NEGOTIATE -> CHALLENGE, AUTHENTICATE -> None when the NTLMv2 proof holds.

    Users match case-insensitively; any domain the client names is accepted (a standalone host's
    view). A wrong user or password raises NtlmAuthError(STATUS_LOGON_FAILURE).
    """

    def __init__(
        self,
        users: Mapping[str, str],
        *,
        nb_domain: str,
        nb_computer: str,
        dns_domain: str,
        dns_computer: str,
        dns_tree: str | None = None,
        version: bytes = WINDOWS_SERVER_2022_VERSION,
        clock: Callable[[], float] = time.time,
        random: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self._users = {name.casefold(): (name, pw) for name, pw in users.items()}
        self.nb_domain, self.nb_computer = nb_domain, nb_computer
        self.dns_domain, self.dns_computer, self.dns_tree = dns_domain, dns_computer, dns_tree
        self._version, self._clock, self._random = version, clock, random
        self._state = "negotiate"
        self._negotiate = b""
        self._challenge = b""
        self._server_challenge = b""
        self._security: SessionSecurity | None = None
        self.flags = 0
        self.user: str | None = None  # as the client sent it
        self.account: str | None = None  # the matching key of `users`
        self.domain: str | None = None
        self.workstation: str | None = None
        self.session_key: bytes | None = None
        self.mic_present = False  # whether AUTHENTICATE carried a verified MIC

    @property
    def complete(self) -> bool:
        return self._security is not None

    def step(self, token: bytes) -> bytes | None:
        if self._state == "negotiate":
            return self._on_negotiate(token)
        if self._state == "authenticate":
            self._state = "failed"  # until proven otherwise
            self._on_authenticate(token)
            self._state = "complete"
            return None
        raise StateError(self._state, "no more NTLM messages expected")

    def _on_negotiate(self, token: bytes) -> bytes:
        r = _header(token, NEGOTIATE_MESSAGE, "NTLM NEGOTIATE")
        requested = r.u32le()
        if not requested & NF.UNICODE:
            self._state = "failed"
            raise NtlmAuthError("client did not offer UNICODE", STATUS_NOT_SUPPORTED)
        domain_joined = self.nb_domain.casefold() != self.nb_computer.casefold()
        flags = (requested & _ECHOED) | NF.UNICODE | NF.NTLM | NF.TARGET_INFO | NF.REQUEST_TARGET
        flags |= NF.TARGET_TYPE_DOMAIN if domain_joined else NF.TARGET_TYPE_SERVER
        self._server_challenge = self._random(8)
        pairs = [
            (AvId.NB_DOMAIN, _utf16(self.nb_domain)),
            (AvId.NB_COMPUTER, _utf16(self.nb_computer)),
            (AvId.DNS_DOMAIN, _utf16(self.dns_domain)),
            (AvId.DNS_COMPUTER, _utf16(self.dns_computer)),
        ]
        if self.dns_tree:
            pairs.append((AvId.DNS_TREE, _utf16(self.dns_tree)))
        pairs.append((AvId.TIMESTAMP, struct.pack("<Q", filetime(self._clock()))))
        target_name = _utf16(self.nb_domain if domain_joined else self.nb_computer)
        target_info = encode_av_pairs(pairs)
        payload_at = 48 + (8 if flags & NF.VERSION else 0)
        w = Writer().bytes(SIGNATURE).u32le(CHALLENGE_MESSAGE)
        w.u16le(len(target_name)).u16le(len(target_name)).u32le(payload_at)
        w.u32le(flags).bytes(self._server_challenge).zeros(8)
        w.u16le(len(target_info)).u16le(len(target_info)).u32le(payload_at + len(target_name))
        if flags & NF.VERSION:
            w.bytes(self._version)
        w.bytes(target_name).bytes(target_info)
        self._negotiate, self._challenge = bytes(token), w.value()
        self._state = "authenticate"
        return self._challenge

    def _on_authenticate(self, token: bytes) -> None:
        what = "NTLM AUTHENTICATE"
        r = _header(token, AUTHENTICATE_MESSAGE, what)
        lm_f, nt_f, dom_f, user_f, ws_f, key_f = (_fields(r) for _ in range(6))
        flags = r.u32le()
        unicode = bool(flags & NF.UNICODE)
        nt = _payload(token, nt_f, what)
        user = _decode_text(_payload(token, user_f, what), unicode, what)
        domain = _decode_text(_payload(token, dom_f, what), unicode, what)
        workstation = _decode_text(_payload(token, ws_f, what), unicode, what)
        encrypted_key = _payload(token, key_f, what)
        _payload(token, lm_f, what)
        if not nt and not user:
            raise NtlmAuthError("anonymous logon refused")
        if len(nt) <= 24:
            raise NtlmAuthError("NTLMv1 response refused (NTLMv2 only)")
        if len(nt) < 16 + 28 + 4:
            raise ParseError(what, f"NTLMv2 response of {len(nt)} bytes")
        proof, blob = nt[:16], nt[16:]
        client_pairs = parse_av_pairs(blob[28:], what)

        entry = self._users.get(user.casefold())
        if entry is None:
            raise NtlmAuthError(f"unknown user {user!r}")
        account, password = entry
        key = ntowfv2(password, user, domain)
        if not hmac.compare_digest(hmac_md5(key, self._server_challenge + blob), proof):
            raise NtlmAuthError(f"wrong password for {user!r}")
        key_exchange_key = hmac_md5(key, proof)
        if flags & NF.KEY_EXCH:
            if len(encrypted_key) != 16:
                raise ParseError(what, f"EncryptedRandomSessionKey of {len(encrypted_key)} bytes")
            exported = rc4(key_exchange_key, encrypted_key)
        else:
            exported = key_exchange_key

        av_flags = _av_get(client_pairs, AvId.FLAGS)
        if (
            av_flags is not None
            and len(av_flags) == 4
            and struct.unpack("<I", av_flags)[0] & AV_FLAG_MIC
        ):
            mic_off = 64 + (8 if flags & NF.VERSION else 0)
            fields = [lm_f, nt_f, dom_f, user_f, ws_f, key_f]
            if _min_offset(fields, len(token)) < mic_off + 16 or len(token) < mic_off + 16:
                raise ParseError(what, "no room for the MIC before the payload")
            mic = token[mic_off : mic_off + 16]
            expected = _mic(exported, self._negotiate, self._challenge, token, mic_off)
            if not hmac.compare_digest(mic, expected):
                raise NtlmAuthError("AUTHENTICATE MIC does not verify")
            self.mic_present = True

        self._security = SessionSecurity(exported, flags, initiator=False)
        self.flags, self.session_key = flags, exported
        self.user, self.account, self.domain, self.workstation = user, account, domain, workstation

    @property
    def challenge_message(self) -> bytes:
        """The CHALLENGE we sent (empty before the NEGOTIATE)."""
        return self._challenge

    def wrap(self, data: bytes) -> bytes:
        """Seal server-to-client."""
        if self._security is None:
            raise StateError(self._state, "wrap before the NTLM exchange finished")
        return self._security.wrap(data)

    def unwrap(self, data: bytes) -> bytes:
        """Check and unseal client-to-server."""
        if self._security is None:
            raise StateError(self._state, "unwrap before the NTLM exchange finished")
        return self._security.unwrap(data)

    def sign(self, data: bytes) -> bytes:
        return self._session().sign(data)

    def verify(self, data: bytes, signature: bytes) -> None:
        self._session().verify(data, signature)

    def reset_rc4(self, *, outgoing: bool) -> None:
        self._session().reset_rc4(outgoing=outgoing)

    def _session(self) -> SessionSecurity:
        if self._security is None:
            raise StateError("incomplete", "signing before the NTLM exchange finished")
        return self._security

def host_acceptor(users: Mapping[str, str], *, domain: str, computer_name: str,
                  dns_domain: str, clock_offset: float = 0.0) -> NtlmAcceptor:
    """The NTLM acceptor of a standalone Windows machine (an RDP host or an RD Gateway): its
    accounts, its NetBIOS and DNS names (`<computer>.<dns domain>`), and its own clock."""
    return NtlmAcceptor(
        users,
        nb_domain=domain,
        nb_computer=computer_name,
        dns_domain=dns_domain,
        dns_computer=f"{computer_name.lower()}.{dns_domain}",
        clock=(lambda: time.time() + clock_offset) if clock_offset else time.time,
    )
