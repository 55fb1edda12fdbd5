"""CredSSP (MS-CSSP): TSRequest v2-6, TSCredentials, public-key binding, encryption-oracle policy.

Both roles are sans-IO: they take and return whole DER TSRequests (the TLS layer and
`tsrequest_length` frame them). negoTokens carry raw NTLM (as FreeRDP sends it) or SPNEGO with
NTLM or Kerberos inside (as Windows' Negotiate package does, `spnego.py`); the server tells
them apart by the first token.

Version rules, as Windows and FreeRDP apply them: each side always sends its own version; the
protocol in use is min(client, server); from 5 the client sends a 32-byte clientNonce and both
pubKeyAuth values become SHA-256 binding hashes, before 5 the client seals the server's
SubjectPublicKey and the server answers with it plus one (little-endian, so the first byte + 1).
errorCode is only sent when the version in use is 3, 4 or 6 (MS-CSSP 2.2.1; pyspnego and
FreeRDP agree), so a refusal at version 2 or 5 is a bare close.

"Patched" (the CVE-2018-0886 update) means version >= 5. Who refuses, per Microsoft's
encryption-oracle remediation article (rdp-facts section 4): a patched server refuses an
unpatched client only at Force Updated Clients (0); a patched client refuses an unpatched server
at Force Updated Clients (0) and Mitigated (1).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Literal, Protocol

from . import ber
from .errors import ParseError, ProtocolFailure, StateError
from .limits import MAX_NEGO_TOKENS, MAX_TSREQUEST, check_claim
from .ntlm import (
    SEC_E_MESSAGE_ALTERED,
    STATUS_LOGON_FAILURE,
    ChallengeInfo,
    NtlmAcceptor,
    NtlmAuthError,
    NtlmInitiator,
)
from .spnego import (
    KERBEROS_OIDS,
    KRB5_OID,
    NTLM_OID,
    SEC_E_INVALID_TOKEN,
    Mechanism,
    NtlmMechanism,
    SpnegoAcceptor,
    token_kind,
)
from .wire import Reader

PATCHED_VERSION = 5
MAX_VERSION = 6
NONCE_LENGTH = 32

CLIENT_BINDING_MAGIC = b"CredSSP Client-To-Server Binding Hash\x00"
SERVER_BINDING_MAGIC = b"CredSSP Server-To-Client Binding Hash\x00"

# Statuses this module reports; harness/data/ntstatus.yaml says where each comes from.
STATUS_NOT_SUPPORTED = 0xC00000BB  # our server's oracle refusal: a plausible pick, [open]
STATUS_ACCESS_DENIED = 0xC0000022  # our server on a bad pubKeyAuth: a plausible pick, [open]
SEC_E_UNSUPPORTED_FUNCTION = 0x80090302  # what mstsc shows for the client-side oracle refusal
WRONG_CREDENTIALS_STATUS = STATUS_LOGON_FAILURE  # what Windows sends for a bad user or password
# Our client's status when the server's pubKeyAuth does not verify (FreeRDP's nla.c uses it too).
PUBKEY_MISMATCH_STATUS = SEC_E_MESSAGE_ALTERED

CRED_TYPE_PASSWORD = 1

Side = Literal["client", "server"]


class OraclePolicy(IntEnum):
    """HKLM\\...\\CredSSP\\Parameters\\AllowEncryptionOracle."""

    FORCE_UPDATED_CLIENTS = 0
    MITIGATED = 1
    VULNERABLE = 2


# errorCode values a client names (MS-ERREF 2.3; the ones FreeRDP's nla.c tells apart).
_STATUS_EVENTS = {
    STATUS_LOGON_FAILURE: "logon_failure",
    0xC000006A: "logon_failure",  # STATUS_WRONG_PASSWORD
    STATUS_NOT_SUPPORTED: "oracle_refused_by_server",  # the lab server's own pick, see above
    STATUS_ACCESS_DENIED: "access_denied",
    0xC0000071: "password_expired",
    0xC0000072: "account_disabled",
    0xC0000193: "account_expired",
    0xC0000224: "password_must_change",
    0xC0000234: "account_locked_out",
    0xC000006E: "account_restriction",
    0xC000015B: "logon_type_not_granted",
}


class CredSspFailure(ProtocolFailure):
    """CredSSP ended without delegating credentials; `refused_by` says which side stopped it.

    `event` names the failure for client profiles: logon_failure, oracle_refused_by_client,
    oracle_refused_by_server, pubkey_mismatch, access_denied, ... or "failed".
    """

    def __init__(
        self, reason: str, status: int | None, refused_by: Side, event: str | None = None
    ) -> None:
        super().__init__("credssp", reason, status)
        self.status = status
        self.refused_by = refused_by
        self.event = event or _STATUS_EVENTS.get(status or 0, "failed")


def is_patched(version: int) -> bool:
    return version >= PATCHED_VERSION


def server_refuses(server_version: int, client_version: int, policy: int) -> bool:
    """A patched server refuses an unpatched client only under Force Updated Clients."""
    return (
        is_patched(server_version)
        and not is_patched(client_version)
        and policy == OraclePolicy.FORCE_UPDATED_CLIENTS
    )


def client_refuses(client_version: int, server_version: int, policy: int) -> bool:
    """A patched client refuses an unpatched server unless its policy is Vulnerable."""
    return (
        is_patched(client_version)
        and not is_patched(server_version)
        and policy != OraclePolicy.VULNERABLE
    )


def error_code_allowed(version_in_use: int) -> bool:
    """errorCode exists in versions 3, 4 and 6 only (5 is 2 plus the nonce)."""
    return version_in_use in (3, 4) or version_in_use >= 6


# --- structures -----------------------------------------------------------------------------


def _single(content: bytes, expected: bytes, what: str) -> bytes:
    """Content of the one element (tag `expected`) that must fill `content`."""
    r = Reader(content, what)
    out = ber.expect(r, expected)
    r.expect_end()
    return out


def _int_field(content: bytes, what: str) -> int:
    return ber.decode_integer(_single(content, ber.TAG_INTEGER, what), what)


def _octets_field(content: bytes, what: str) -> bytes:
    return _single(content, ber.TAG_OCTET_STRING, what)


def _context_children(data: bytes, what: str, allowed: range) -> dict[int, bytes]:
    """Children of a SEQUENCE of explicitly tagged [n] fields, in strictly ascending order."""
    seq = ber.decode_tlv(data, what)
    if seq.tag != ber.TAG_SEQUENCE:
        raise ParseError(what, f"expected SEQUENCE, got tag {seq.tag.hex()}")
    out: dict[int, bytes] = {}
    last = -1
    for child in seq.iter_children(what):
        if child.cls != ber.CONTEXT or not child.constructed or child.number not in allowed:
            raise ParseError(what, f"unexpected field with tag {child.tag.hex()}")
        if child.number <= last:
            raise ParseError(what, f"field [{child.number}] out of order or repeated")
        last = child.number
        out[child.number] = child.content
    return out


@dataclass
class TSRequest:
    """MS-CSSP 2.2.1. error_code is an NTSTATUS as an unsigned 32-bit value."""

    version: int
    nego_tokens: list[bytes] = field(default_factory=list)
    auth_info: bytes | None = None
    pub_key_auth: bytes | None = None
    error_code: int | None = None
    client_nonce: bytes | None = None

    def encode(self) -> bytes:
        parts = [ber.encode_context(0, ber.encode_integer(self.version))]
        if self.nego_tokens:
            items = [
                ber.encode_sequence(ber.encode_context(0, ber.encode_octet_string(t)))
                for t in self.nego_tokens
            ]
            parts.append(ber.encode_context(1, ber.encode_sequence(*items)))
        if self.auth_info is not None:
            parts.append(ber.encode_context(2, ber.encode_octet_string(self.auth_info)))
        if self.pub_key_auth is not None:
            parts.append(ber.encode_context(3, ber.encode_octet_string(self.pub_key_auth)))
        if self.error_code is not None:
            # Windows writes an NTSTATUS as a signed 32-bit INTEGER (C000006D -> 02 04 C0 00 00 6D),
            # and FreeRDP 2.11 cannot read the 5-byte unsigned form.
            code = self.error_code - (1 << 32) if self.error_code >= 1 << 31 else self.error_code
            parts.append(ber.encode_context(4, ber.encode_integer(code)))
        if self.client_nonce is not None:
            parts.append(ber.encode_context(5, ber.encode_octet_string(self.client_nonce)))
        return ber.encode_sequence(*parts)

    @classmethod
    def decode(cls, data: bytes) -> TSRequest:
        what = "TSRequest"
        fields = _context_children(data, what, range(6))
        if 0 not in fields:
            raise ParseError(what, "no version field")
        version = _int_field(fields[0], what)
        if version < 0:
            raise ParseError(what, f"negative version {version}")
        req = cls(version)
        if 1 in fields:
            seq = ber.decode_tlv(fields[1], what)
            if seq.tag != ber.TAG_SEQUENCE:
                raise ParseError(what, "negoTokens is not a SEQUENCE OF")
            for item in seq.iter_children(what):
                if len(req.nego_tokens) >= MAX_NEGO_TOKENS:
                    raise ParseError(what, f"more than {MAX_NEGO_TOKENS} negoTokens")
                if item.tag != ber.TAG_SEQUENCE:
                    raise ParseError(what, "NegoDataItem is not a SEQUENCE")
                inner = _context_children(ber.encode_tlv(item.tag, item.content), what, range(1))
                if 0 not in inner:
                    raise ParseError(what, "NegoDataItem without negoToken")
                req.nego_tokens.append(_octets_field(inner[0], what))
        if 2 in fields:
            req.auth_info = _octets_field(fields[2], what)
        if 3 in fields:
            req.pub_key_auth = _octets_field(fields[3], what)
        if 4 in fields:
            code = _int_field(fields[4], what)
            if not -(1 << 31) <= code < 1 << 32:
                raise ParseError(what, f"errorCode {code} is not a 32-bit value")
            req.error_code = code & 0xFFFFFFFF
        if 5 in fields:
            req.client_nonce = _octets_field(fields[5], what)
        return req


@dataclass(frozen=True)
class TSPasswordCreds:
    """MS-CSSP 2.2.1.2.1; strings travel as UTF-16LE OCTET STRINGs."""

    domain: str
    user: str
    password: str

    def encode(self) -> bytes:
        return ber.encode_sequence(
            *(
                ber.encode_context(
                    i, ber.encode_octet_string(s.encode("utf-16-le", "surrogatepass"))
                )
                for i, s in enumerate((self.domain, self.user, self.password))
            )
        )

    @classmethod
    def decode(cls, data: bytes) -> TSPasswordCreds:
        what = "TSPasswordCreds"
        fields = _context_children(data, what, range(3))
        if set(fields) != {0, 1, 2}:
            raise ParseError(what, "needs domainName, userName and password")
        values = []
        for i in range(3):
            raw = _octets_field(fields[i], what)
            if len(raw) % 2:
                raise ParseError(what, "odd-length UTF-16 string")
            values.append(raw.decode("utf-16-le", "surrogatepass"))
        return cls(*values)


@dataclass(frozen=True)
class TSCredentials:
    """MS-CSSP 2.2.1.2: credType (1 = password) and the encoded credentials."""

    cred_type: int
    credentials: bytes

    @classmethod
    def for_password(cls, creds: TSPasswordCreds) -> TSCredentials:
        return cls(CRED_TYPE_PASSWORD, creds.encode())

    def encode(self) -> bytes:
        return ber.encode_sequence(
            ber.encode_context(0, ber.encode_integer(self.cred_type)),
            ber.encode_context(1, ber.encode_octet_string(self.credentials)),
        )

    @classmethod
    def decode(cls, data: bytes) -> TSCredentials:
        what = "TSCredentials"
        fields = _context_children(data, what, range(2))
        if set(fields) != {0, 1}:
            raise ParseError(what, "needs credType and credentials")
        return cls(_int_field(fields[0], what), _octets_field(fields[1], what))

    def password_creds(self) -> TSPasswordCreds | None:
        if self.cred_type != CRED_TYPE_PASSWORD:
            return None
        return TSPasswordCreds.decode(self.credentials)


def tsrequest_length(buf: bytes) -> int | None:
    """Size of the TSRequest starting `buf`, None until its header is complete.

    Only the header is read (pass the first TSREQUEST_HEADER_MAX bytes); a claim above
    MAX_TSREQUEST is a ParseError at once, before any of it is buffered.
    """
    if buf and buf[0] != ber.TAG_SEQUENCE[0]:
        raise ParseError("TSRequest", f"starts with {buf[0]:#04x}, not a SEQUENCE")
    length = ber.der_message_length(buf)
    if length is not None:
        check_claim("TSRequest", length, MAX_TSREQUEST)
    return length


TSREQUEST_HEADER_MAX = 6  # SEQUENCE tag and a length of up to 4 octets


# --- public-key binding ---------------------------------------------------------------------


def subject_public_key(cert_der: bytes) -> bytes:
    """The certificate's SubjectPublicKey: the BIT STRING contents of its SubjectPublicKeyInfo
    without the unused-bits byte (for RSA, the PKCS#1 RSAPublicKey DER). This is what FreeRDP's
    i2d_PublicKey and Windows put in pubKeyAuth."""
    what = "X.509 certificate"
    cert = ber.decode_tlv(cert_der, what)
    if cert.tag != ber.TAG_SEQUENCE:
        raise ParseError(what, "not a SEQUENCE")
    parts = cert.children(what)
    if not parts or parts[0].tag != ber.TAG_SEQUENCE:
        raise ParseError(what, "no tbsCertificate")
    tbs = parts[0].children(what)
    if tbs and tbs[0].tag == ber.context_tag(0):
        tbs = tbs[1:]  # explicit version
    if len(tbs) < 6 or tbs[5].tag != ber.TAG_SEQUENCE:
        raise ParseError(what, "no subjectPublicKeyInfo")
    spki = tbs[5].children(what)
    if len(spki) != 2 or spki[1].tag != ber.TAG_BIT_STRING or not spki[1].content:
        raise ParseError(what, "subjectPublicKey is not a BIT STRING")
    if spki[1].content[0] != 0:
        raise ParseError(what, "subjectPublicKey has unused bits")
    return spki[1].content[1:]


def client_binding(nonce: bytes, public_key: bytes) -> bytes:
    return hashlib.sha256(CLIENT_BINDING_MAGIC + nonce + public_key).digest()


def server_binding(nonce: bytes, public_key: bytes) -> bytes:
    return hashlib.sha256(SERVER_BINDING_MAGIC + nonce + public_key).digest()


def echo_increment(public_key: bytes) -> bytes:
    """The pre-v5 server echo: the key as a little-endian integer plus one (first byte + 1)."""
    out = bytearray(public_key)
    for i, b in enumerate(out):
        if b < 0xFF:
            out[i] = b + 1
            break
        out[i] = 0
    return bytes(out)


# --- security contexts ---------------------------------------------------------------------


class Initiator(Protocol):
    """What CredSspClient needs from an NTLM initiator (NtlmInitiator, or a test adapter)."""

    challenge: ChallengeInfo | None

    def step(self, token: bytes | None = None) -> bytes: ...
    def wrap(self, data: bytes) -> bytes: ...
    def unwrap(self, data: bytes) -> bytes: ...


class SecurityContext(Protocol):
    """One side of the negoTokens exchange: raw NTLM (as FreeRDP) or SPNEGO (as Windows).

    `mech_complete`: the mechanism can wrap (then pubKeyAuth goes with the next message);
    `complete`: nothing more is expected in negoTokens."""

    @property
    def mech_complete(self) -> bool: ...
    @property
    def complete(self) -> bool: ...
    def step(self, token: bytes | None) -> bytes | None: ...
    def wrap(self, data: bytes) -> bytes: ...
    def unwrap(self, data: bytes) -> bytes: ...


class RawNtlm:
    """NTLM straight in negoTokens, no SPNEGO (FreeRDP 2.x, and any raw-NTLM client)."""

    kind = "ntlm"
    mech_oid = NTLM_OID

    def __init__(self, ntlm: Initiator | NtlmAcceptor) -> None:
        self.ntlm = ntlm

    @property
    def mech_complete(self) -> bool:
        return self.complete

    @property
    def complete(self) -> bool:
        done = getattr(self.ntlm, "complete", None)
        if done is None:  # a test adapter without `complete`: done once it wraps
            return getattr(self.ntlm, "challenge", None) is not None
        return bool(done)

    def step(self, token: bytes | None) -> bytes | None:
        return self.ntlm.step(token)  # type: ignore[arg-type]

    def wrap(self, data: bytes) -> bytes:
        return self.ntlm.wrap(data)

    def unwrap(self, data: bytes) -> bytes:
        return self.ntlm.unwrap(data)


class RawKerberos:
    """A Kerberos token straight in negoTokens, no SPNEGO (rdesktop 1.9's GSS-API CredSSP);
    Windows' Negotiate acceptor takes it as it takes raw NTLM."""

    kind = "kerberos"
    mech_oid = KRB5_OID

    def __init__(self, mech: Mechanism) -> None:
        self.mech = mech

    @property
    def mech_complete(self) -> bool:
        return self.mech.complete

    @property
    def complete(self) -> bool:
        return self.mech.complete

    def step(self, token: bytes | None) -> bytes | None:
        return self.mech.step(token)

    def wrap(self, data: bytes) -> bytes:
        return self.mech.wrap(data)

    def unwrap(self, data: bytes) -> bytes:
        return self.mech.unwrap(data)


def _failure_from(exc: ProtocolFailure, side: Side) -> CredSspFailure:
    """An NTLM, SPNEGO or Kerberos failure as the CredSspFailure the roles raise."""
    status = getattr(exc, "status", None)
    if status is None:
        status = exc.code
    event = getattr(exc, "event", None)
    if isinstance(exc, NtlmAuthError):
        event = "logon_failure" if exc.status == STATUS_LOGON_FAILURE else "failed"
    return CredSspFailure(exc.reason, status, side, event)


# --- client ---------------------------------------------------------------------------------


class CredSspClient:
    """CredSSP initiator: first_message(), then receive() each server TSRequest.

    receive() returns the next TSRequest to send; the last one carries authInfo and sets
    `done`. pubKeyAuth goes with the first message after the mechanism completes (with its last
    token, if any); the server's last SPNEGO token comes with its pubKeyAuth. Refusals and
    failures raise CredSspFailure.
    """

    def __init__(
        self,
        username: str | Initiator,
        password: str | None = None,
        domain: str | None = None,
        *,
        version: int = MAX_VERSION,
        oracle_policy: int = OraclePolicy.MITIGATED,
        server_public_key: bytes,
        initiator: Initiator | None = None,
        initiator_factory: Callable[[], Initiator] | None = None,
        context: SecurityContext | None = None,
        random: Callable[[int], bytes] = os.urandom,
    ) -> None:
        if not 2 <= version <= MAX_VERSION:
            raise ValueError(f"CredSSP version {version} outside 2..{MAX_VERSION}")
        self.version = version
        self.oracle_policy = OraclePolicy(oracle_policy)
        if not isinstance(username, str):  # CredSspClient(initiator, ...): credentials from it
            initiator, username = username, getattr(username, "username", "")
            password = getattr(initiator, "password", "") if password is None else password
            domain = getattr(initiator, "domain", "") if domain is None else domain
        password, domain = password or "", domain or ""
        self._creds = TSPasswordCreds(domain, username, password)
        self._public_key = server_public_key
        if context is None:
            if initiator is None:
                initiator = (
                    initiator_factory()
                    if initiator_factory
                    else NtlmInitiator(username, password, domain)
                )
            context = RawNtlm(initiator)
        self.context: SecurityContext = context
        self._random = random
        self._state = "start"
        self._nonce: bytes | None = None
        self.server_version: int | None = None
        self.negotiated_version: int | None = None
        self.challenge: ChallengeInfo | None = None
        self.done = False

    def first_message(self) -> bytes:
        if self._state != "start":
            raise StateError(self._state, "first_message() already called")
        self._state = "wait_first"
        token = self._step(None)
        return TSRequest(self.version, nego_tokens=[token or b""]).encode()

    def _fail(
        self, reason: str, status: int | None, side: Side, event: str | None = None
    ) -> CredSspFailure:
        self._state = "failed"
        return CredSspFailure(reason, status, side, event)

    def _step(self, token: bytes | None) -> bytes | None:
        try:
            out = self.context.step(token)
        except CredSspFailure:
            self._state = "failed"
            raise
        except ProtocolFailure as exc:
            self._state = "failed"
            raise _failure_from(exc, "client") from exc
        self.challenge = _challenge_of(self.context) or self.challenge
        return out

    def receive(self, data: bytes) -> bytes | None:
        if self._state not in ("wait_first", "negotiating", "wait_pubkey"):
            raise StateError(self._state, "no server TSRequest expected")
        try:
            req = TSRequest.decode(data)
            if req.error_code:
                raise self._fail(
                    f"server sent errorCode {req.error_code:#010x}", req.error_code, "server"
                )
            if self._state == "wait_first":
                self._on_first_answer(req)
            if self._state == "negotiating":
                return self._on_negotiate(req)
            return self._on_pubkey(req)
        except ParseError:
            self._state = "failed"
            raise

    def _on_first_answer(self, req: TSRequest) -> None:
        self.server_version = req.version
        self.negotiated_version = min(self.version, req.version)
        if client_refuses(self.version, req.version, self.oracle_policy):
            raise self._fail(
                f"server speaks CredSSP {req.version} (unpatched) and the client's "
                f"AllowEncryptionOracle is {self.oracle_policy.name}",
                SEC_E_UNSUPPORTED_FUNCTION,
                "client",
                "oracle_refused_by_client",
            )
        self._state = "negotiating"

    def _on_negotiate(self, req: TSRequest) -> bytes:
        if not req.nego_tokens:
            raise ParseError("TSRequest", "server answer carries no negoToken")
        out = self._step(req.nego_tokens[0])
        if not self.context.mech_complete:
            if out is None:
                raise ParseError("TSRequest", "the exchange stalled: nothing to answer")
            return TSRequest(self.version, nego_tokens=[out]).encode()
        assert self.negotiated_version is not None
        if is_patched(self.negotiated_version):
            self._nonce = self._random(NONCE_LENGTH)
            binding = client_binding(self._nonce, self._public_key)
        else:
            binding = self._public_key
        self._state = "wait_pubkey"
        return TSRequest(
            self.version,
            nego_tokens=[out] if out else [],
            pub_key_auth=self.context.wrap(binding),
            client_nonce=self._nonce,
        ).encode()

    def _on_pubkey(self, req: TSRequest) -> bytes:
        if req.nego_tokens:  # the acceptor's last SPNEGO token (accept-completed, mechListMIC)
            if self.context.complete:
                raise ParseError("TSRequest", "negoToken after the exchange finished")
            if self._step(req.nego_tokens[0]) is not None:
                raise ParseError("TSRequest", "the server's last token asks for more")
        if req.pub_key_auth is None:
            raise ParseError("TSRequest", "server answer carries no pubKeyAuth")
        if not self.context.complete:
            raise self._fail(
                "pubKeyAuth before the server completed the negotiation",
                SEC_E_INVALID_TOKEN,
                "client",
                "failed",
            )
        try:
            echoed = self.context.unwrap(req.pub_key_auth)
        except ProtocolFailure as exc:
            raise self._fail(
                exc.reason, PUBKEY_MISMATCH_STATUS, "client", "pubkey_mismatch"
            ) from exc
        expected = (
            server_binding(self._nonce, self._public_key)
            if self._nonce is not None
            else echo_increment(self._public_key)
        )
        if not hmac.compare_digest(echoed, expected):
            raise self._fail(
                "server pubKeyAuth does not match the TLS public key",
                PUBKEY_MISMATCH_STATUS,
                "client",
                "pubkey_mismatch",
            )
        self._state = "done"
        self.done = True
        auth_info = self.context.wrap(TSCredentials.for_password(self._creds).encode())
        return TSRequest(self.version, auth_info=auth_info).encode()

    @property
    def mechanism(self) -> str:
        """"ntlm" or "kerberos": what authenticated (or is authenticating)."""
        return _mechanism_name(self.context)


def _challenge_of(context: object) -> ChallengeInfo | None:
    mech = getattr(context, "mech", None)
    ntlm = getattr(mech, "ntlm", None) or getattr(context, "ntlm", None)
    return getattr(ntlm, "challenge", None)


def _mechanism_name(context: object) -> str:
    oid = getattr(context, "mech_oid", None)
    if oid in KERBEROS_OIDS:
        return "kerberos"
    return "ntlm" if oid == NTLM_OID else "none"


# --- server ---------------------------------------------------------------------------------


class CredSspServer:
    """CredSSP acceptor: receive() each client TSRequest.

    The first negoToken decides how the client speaks: raw NTLM (FreeRDP) goes to our
    NtlmAcceptor directly; SPNEGO (Windows, aardwolf) goes through SpnegoAcceptor offering
    Kerberos (when `kerberos` makes acceptor contexts: a domain host with its keytab) and NTLM.
    On a refusal it sets `pending_error_reply` (the errorCode TSRequest to send before closing,
    None where the version in use has no errorCode) and raises CredSspFailure.
    """

    def __init__(
        self,
        acceptor: NtlmAcceptor,
        *,
        version: int = MAX_VERSION,
        oracle_policy: int = OraclePolicy.MITIGATED,
        public_key: bytes,
        kerberos: Callable[[], Mechanism] | None = None,
    ) -> None:
        if not 2 <= version <= MAX_VERSION:
            raise ValueError(f"CredSSP version {version} outside 2..{MAX_VERSION}")
        self.acceptor = acceptor
        self.version = version
        self.oracle_policy = OraclePolicy(oracle_policy)
        self._public_key = public_key
        self._kerberos = kerberos
        self.context: RawNtlm | RawKerberos | SpnegoAcceptor | None = None
        self._state = "wait_first"
        self.client_version: int | None = None
        self.negotiated_version: int | None = None
        self.pending_error_reply: bytes | None = None
        self.ts_credentials: TSCredentials | None = None
        self.credentials: TSPasswordCreds | None = None
        self.done = False

    def _fail(self, reason: str, status: int, event: str) -> CredSspFailure:
        self._state = "failed"
        if self.negotiated_version is not None and error_code_allowed(self.negotiated_version):
            self.pending_error_reply = TSRequest(self.version, error_code=status).encode()
        return CredSspFailure(reason, status, "server", event)

    def receive(self, data: bytes) -> bytes | None:
        handlers = {
            "wait_first": self._on_first,
            "negotiating": self._on_negotiate,
            "wait_auth_info": self._on_auth_info,
        }
        handler = handlers.get(self._state)
        if handler is None:
            raise StateError(self._state, "no client TSRequest expected")
        try:
            return handler(TSRequest.decode(data))
        except ParseError:
            self._state = "failed"
            raise

    def _on_first(self, req: TSRequest) -> bytes | None:
        self.client_version = req.version
        self.negotiated_version = min(self.version, req.version)
        if server_refuses(self.version, req.version, self.oracle_policy):
            raise self._fail(
                f"client speaks CredSSP {req.version} (unpatched) and AllowEncryptionOracle "
                f"is {self.oracle_policy.name}",
                STATUS_NOT_SUPPORTED,
                "oracle_refused_by_server",
            )
        if not req.nego_tokens:
            raise ParseError("TSRequest", "client request carries no negoToken")
        kind = token_kind(req.nego_tokens[0])
        if kind == "ntlm":
            self.context = RawNtlm(self.acceptor)
        elif kind == "kerberos":
            if self._kerberos is None:  # not a domain member: no key for the ticket
                raise self._fail("a Kerberos token, and this host has no TERMSRV key",
                                 SEC_E_INVALID_TOKEN, "failed")
            self.context = RawKerberos(self._kerberos())
        else:
            mechs: list[tuple[str, Callable[[], Mechanism]]] = []
            if self._kerberos is not None:
                mechs += [(oid, self._kerberos) for oid in KERBEROS_OIDS]
            mechs.append((NTLM_OID, lambda: NtlmMechanism(self.acceptor)))
            self.context = SpnegoAcceptor(mechs)
        self._state = "negotiating"
        return self._on_negotiate(req)

    def _on_negotiate(self, req: TSRequest) -> bytes:
        ctx = self.context
        assert ctx is not None
        out: bytes | None = None
        if req.nego_tokens:
            if ctx.complete:
                raise ParseError("TSRequest", "negoToken after the exchange finished")
            try:
                out = ctx.step(req.nego_tokens[0])
            except CredSspFailure:
                raise
            except ProtocolFailure as exc:
                f = _failure_from(exc, "server")
                raise self._fail(exc.reason, f.status or STATUS_LOGON_FAILURE, f.event) from exc
        elif req.pub_key_auth is None:
            raise ParseError("TSRequest", "client request carries no negoToken")
        if not ctx.mech_complete:
            return TSRequest(self.version, nego_tokens=[out or b""]).encode()
        if req.pub_key_auth is None:
            if isinstance(ctx, RawNtlm) or out is None:
                raise self._fail(
                    "AUTHENTICATE without pubKeyAuth", STATUS_ACCESS_DENIED, "pubkey_mismatch"
                )
            return TSRequest(self.version, nego_tokens=[out]).encode()
        if not ctx.complete:
            raise self._fail(
                "pubKeyAuth before the negotiation completed",
                STATUS_ACCESS_DENIED,
                "pubkey_mismatch",
            )
        answer = self._check_pubkey(req)
        self._state = "wait_auth_info"
        return TSRequest(
            self.version, nego_tokens=[out] if out else [], pub_key_auth=ctx.wrap(answer)
        ).encode()

    def _check_pubkey(self, req: TSRequest) -> bytes:
        assert self.negotiated_version is not None and self.context is not None
        patched = is_patched(self.negotiated_version)
        nonce = req.client_nonce
        assert req.pub_key_auth is not None
        if patched and nonce is None:
            raise self._fail(
                f"CredSSP {self.negotiated_version} pubKeyAuth without clientNonce",
                STATUS_ACCESS_DENIED,
                "pubkey_mismatch",
            )
        try:
            got = self.context.unwrap(req.pub_key_auth)
        except ProtocolFailure as exc:
            raise self._fail(exc.reason, STATUS_ACCESS_DENIED, "pubkey_mismatch") from exc
        expected = client_binding(nonce or b"", self._public_key) if patched else self._public_key
        if not hmac.compare_digest(got, expected):
            raise self._fail(
                "client pubKeyAuth does not match our public key",
                STATUS_ACCESS_DENIED,
                "pubkey_mismatch",
            )
        if patched:
            return server_binding(nonce or b"", self._public_key)
        return echo_increment(self._public_key)

    def _on_auth_info(self, req: TSRequest) -> None:
        if req.auth_info is None:
            raise ParseError("TSRequest", "client request carries no authInfo")
        assert self.context is not None
        try:
            plain = self.context.unwrap(req.auth_info)
        except ProtocolFailure as exc:
            raise self._fail(exc.reason, STATUS_ACCESS_DENIED, "pubkey_mismatch") from exc
        self.ts_credentials = TSCredentials.decode(plain)
        self.credentials = self.ts_credentials.password_creds()
        self._state = "done"
        self.done = True
        return None

    @property
    def mechanism(self) -> str:
        """"ntlm" or "kerberos" once chosen, else "none"."""
        if isinstance(self.context, RawNtlm):
            return "ntlm"
        if isinstance(self.context, RawKerberos):
            return "kerberos"
        return _mechanism_name(self.context)

    @property
    def spnego(self) -> bool:
        return isinstance(self.context, SpnegoAcceptor)

    @property
    def user(self) -> str | None:
        """The authenticated user name: NTLM's as the client sent it, Kerberos' client principal."""
        mech = getattr(self.context, "mech", None)
        principal = getattr(mech, "client_principal", None)
        if principal:
            return str(principal)
        return self.acceptor.user
