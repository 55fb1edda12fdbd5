"""SPNEGO (RFC 4178, MS-SPNG) as CredSSP carries it: tokens, an initiator and an acceptor.

Sans-IO: each role's step() takes the peer's token and returns the next one. The mechanisms
(NTLM, Kerberos) are objects with the `Mechanism` interface. Parsing is ours (bounded, every
length checked, a typed ParseError for anything malformed); the encoders are pyspnego's.

mechListMIC, as Windows does it (MS-SPNG 3.1.5.1, 3.3.5.1): required when the acceptor picked a
mechanism other than the initiator's first, or when NTLM's AUTHENTICATE carries a MIC (Windows
always puts one there when the CHALLENGE has a timestamp); the MIC is the mechanism's GetMIC
over the DER MechTypeList the initiator sent; for NTLM the RC4 stream of each direction restarts
after the mechListMIC so the first wrapped message sees the same key state.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol

from spnego._spnego import NegState as _PyNegState
from spnego._spnego import NegTokenInit as _PyNegTokenInit
from spnego._spnego import NegTokenResp as _PyNegTokenResp
from spnego._spnego import pack_mech_type_list

from . import ber
from .errors import ParseError, ProtocolFailure, RdpError, StateError
from .ntlm import NtlmAcceptor, NtlmInitiator
from .wire import Reader

SPNEGO_OID = "1.3.6.1.5.5.2"
NTLM_OID = "1.3.6.1.4.1.311.2.2.10"
KRB5_OID = "1.2.840.113554.1.2.2"
MS_KRB5_OID = "1.2.840.48018.1.2.2"  # the OID Windows lists first for Kerberos
NEGOEX_OID = "1.3.6.1.4.1.311.2.2.30"
KERBEROS_OIDS = (MS_KRB5_OID, KRB5_OID)
NTLM_SIGNATURE = b"NTLMSSP\x00"

# Size limits (hostile peers): Windows' MaxTokenSize is 48000 bytes; a MIC is 16 (NTLM) or 28
# (Kerberos) bytes; nobody offers more than a handful of mechanisms.
MAX_TOKEN = 65535
MAX_MIC = 1024
MAX_MECHS = 16
MAX_OID = 64

SEC_E_INVALID_TOKEN = 0x80090308
SEC_E_MESSAGE_ALTERED = 0x8009030F
SEC_E_NO_CREDENTIALS = 0x8009030E
SEC_E_LOGON_DENIED = 0x8009030C


class NegState(IntEnum):
    ACCEPT_COMPLETED = 0
    ACCEPT_INCOMPLETE = 1
    REJECT = 2
    REQUEST_MIC = 3


class MechanismUnavailable(RdpError):
    """A mechanism cannot make its first token here (Kerberos: no KDC answers, no such SPN, a
    target given by address); Windows' Negotiate then leaves it out and offers the next."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SpnegoFailure(ProtocolFailure):
    """A well-formed SPNEGO exchange that failed (rejected, no common mechanism, bad MIC)."""

    def __init__(self, reason: str, status: int, event: str = "failed") -> None:
        super().__init__("credssp", reason, status)
        self.status = status
        self.event = event


# --- tokens ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class NegTokenInit:
    """RFC 4178 4.2.1 (and MS-SPNG's NegTokenInit2, whose negHints we read and ignore)."""

    mech_types: tuple[str, ...]
    mech_token: bytes | None = None
    mech_list_mic: bytes | None = None

    def encode(self) -> bytes:
        return _PyNegTokenInit(
            list(self.mech_types), mech_token=self.mech_token, mech_list_mic=self.mech_list_mic
        ).pack()


@dataclass(frozen=True)
class NegTokenResp:
    """RFC 4178 4.2.2."""

    neg_state: NegState | None = None
    supported_mech: str | None = None
    response_token: bytes | None = None
    mech_list_mic: bytes | None = None

    def encode(self) -> bytes:
        state = None if self.neg_state is None else _PyNegState(int(self.neg_state))
        return _PyNegTokenResp(
            neg_state=state,
            supported_mech=self.supported_mech,
            response_token=self.response_token,
            mech_list_mic=self.mech_list_mic,
        ).pack()


Token = NegTokenInit | NegTokenResp


def mech_type_list(mech_types: Sequence[str]) -> bytes:
    """The DER MechTypeList a mechListMIC signs."""
    return pack_mech_type_list(list(mech_types))


def decode_oid(content: bytes, what: str = "OID") -> str:
    if not content or len(content) > MAX_OID:
        raise ParseError(what, f"OID of {len(content)} bytes")
    if content[-1] & 0x80:
        raise ParseError(what, "OID ends inside a sub-identifier")
    arcs: list[int] = []
    value, width = 0, 0
    for b in content:
        if width == 0 and b == 0x80:
            raise ParseError(what, "non-minimal OID sub-identifier")
        value, width = (value << 7) | (b & 0x7F), width + 1
        if width > 5:
            raise ParseError(what, "OID sub-identifier too long")
        if not b & 0x80:
            arcs.append(value)
            value, width = 0, 0
    first = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in [first, arcs[0] - 40 * first, *arcs[1:]])


def _octets(tlv: ber.Tlv, what: str, limit: int) -> bytes:
    (inner,) = _only_children(tlv, what, 1)
    if inner.tag != ber.TAG_OCTET_STRING:
        raise ParseError(what, f"expected OCTET STRING, got tag {inner.tag.hex()}")
    if len(inner.content) > limit:
        raise ParseError(what, f"{len(inner.content)} bytes, more than {limit}")
    return inner.content


def _only_children(tlv: ber.Tlv, what: str, count: int) -> list[ber.Tlv]:
    children = tlv.children(what)
    if len(children) != count:
        raise ParseError(what, f"[{tlv.number}] holds {len(children)} elements, not {count}")
    return children


def _fields(seq: ber.Tlv, what: str, allowed: range) -> dict[int, ber.Tlv]:
    if seq.tag != ber.TAG_SEQUENCE:
        raise ParseError(what, f"expected SEQUENCE, got tag {seq.tag.hex()}")
    out: dict[int, ber.Tlv] = {}
    last = -1
    for child in seq.children(what):
        if child.cls != ber.CONTEXT or not child.constructed or child.number not in allowed:
            raise ParseError(what, f"unexpected field with tag {child.tag.hex()}")
        if child.number <= last:
            raise ParseError(what, f"field [{child.number}] out of order or repeated")
        last = child.number
        out[child.number] = child
    return out


def _decode_init(tlv: ber.Tlv) -> NegTokenInit:
    what = "SPNEGO NegTokenInit"
    fields = _fields(_only_children(tlv, what, 1)[0], what, range(5))
    if 0 not in fields:
        raise ParseError(what, "no mechTypes")
    (types,) = _only_children(fields[0], what, 1)
    if types.tag != ber.TAG_SEQUENCE:
        raise ParseError(what, "mechTypes is not a SEQUENCE OF")
    oids = types.children(what)
    if not oids or len(oids) > MAX_MECHS:
        raise ParseError(what, f"{len(oids)} mechTypes")
    mech_types = []
    for oid in oids:
        if oid.tag != ber.TAG_OID:
            raise ParseError(what, f"mechType with tag {oid.tag.hex()}")
        mech_types.append(decode_oid(oid.content, what))
    token = _octets(fields[2], what, MAX_TOKEN) if 2 in fields else None
    mic = None
    if 3 in fields:  # mechListMIC (RFC 4178) or negHints (NegTokenInit2)
        (inner,) = _only_children(fields[3], what, 1)
        if inner.tag == ber.TAG_OCTET_STRING:
            mic = _octets(fields[3], what, MAX_MIC)
        elif inner.tag != ber.TAG_SEQUENCE:
            raise ParseError(what, f"[3] with tag {inner.tag.hex()}")
    if 4 in fields:
        if mic is not None:
            raise ParseError(what, "two mechListMICs")
        mic = _octets(fields[4], what, MAX_MIC)
    return NegTokenInit(tuple(mech_types), token, mic)


def _decode_resp(tlv: ber.Tlv) -> NegTokenResp:
    what = "SPNEGO NegTokenResp"
    fields = _fields(_only_children(tlv, what, 1)[0], what, range(4))
    state = None
    if 0 in fields:
        (enum,) = _only_children(fields[0], what, 1)
        if enum.tag != ber.TAG_ENUMERATED or len(enum.content) != 1:
            raise ParseError(what, "negState is not a one-byte ENUMERATED")
        if enum.content[0] > NegState.REQUEST_MIC:
            raise ParseError(what, f"negState {enum.content[0]}")
        state = NegState(enum.content[0])
    mech = None
    if 1 in fields:
        (oid,) = _only_children(fields[1], what, 1)
        if oid.tag != ber.TAG_OID:
            raise ParseError(what, "supportedMech is not an OID")
        mech = decode_oid(oid.content, what)
    token = _octets(fields[2], what, MAX_TOKEN) if 2 in fields else None
    mic = _octets(fields[3], what, MAX_MIC) if 3 in fields else None
    return NegTokenResp(state, mech, token, mic)


def decode_token(data: bytes) -> Token:
    """A SPNEGO token: NegTokenInit inside the GSS InitialContextToken, or a bare NegTokenResp."""
    what = "SPNEGO token"
    if len(data) > MAX_TOKEN + 4 * MAX_MIC:
        raise ParseError(what, f"{len(data)} bytes")
    tlv = ber.decode_tlv(data, what)
    if tlv.tag == ber.context_tag(1):
        return _decode_resp(tlv)
    if tlv.tag != ber.application_tag(0):
        raise ParseError(what, f"starts with tag {tlv.tag.hex()}")
    r = Reader(tlv.content, what)
    oid = decode_oid(ber.expect(r, ber.TAG_OID), what)
    if oid != SPNEGO_OID:
        raise ParseError(what, f"mechanism {oid}, not SPNEGO")
    inner = ber.read_tlv(r)
    r.expect_end()
    if inner.tag == ber.context_tag(0):
        return _decode_init(inner)
    if inner.tag == ber.context_tag(1):
        return _decode_resp(inner)
    raise ParseError(what, f"NegotiationToken with tag {inner.tag.hex()}")


def token_kind(data: bytes) -> str:
    """What a CredSSP negoToken holds: "ntlm" (raw, as FreeRDP sends), "spnego" or "kerberos"."""
    if data.startswith(NTLM_SIGNATURE):
        return "ntlm"
    if data[:1] == b"\xa1":
        return "spnego"
    if data[:1] == b"\x60":
        r = Reader(data, "GSS token")
        try:
            inner = ber.read_tlv(r)
            oid = decode_oid(ber.expect(Reader(inner.content, "GSS token"), ber.TAG_OID))
        except ParseError:
            return "spnego"  # let the SPNEGO decoder name the fault
        if oid in KERBEROS_OIDS:
            return "kerberos"
        return "spnego"
    raise ParseError("CredSSP negoToken", f"neither NTLM nor a GSS token (starts {data[:8].hex()})")


# --- mechanisms -----------------------------------------------------------------------------


class Mechanism(Protocol):
    """One side of NTLM or Kerberos as SPNEGO drives it."""

    @property
    def complete(self) -> bool: ...
    def step(self, token: bytes | None) -> bytes | None: ...
    def wrap(self, data: bytes) -> bytes: ...
    def unwrap(self, data: bytes) -> bytes: ...
    def sign(self, data: bytes) -> bytes: ...
    def verify(self, data: bytes, mic: bytes) -> None: ...
    def needs_mech_list_mic(self) -> bool: ...
    def after_mech_list_mic(self, *, outgoing: bool) -> None: ...


def same_mech(a: str, b: str) -> bool:
    return a == b or (a in KERBEROS_OIDS and b in KERBEROS_OIDS)


class _Spnego:
    """What both roles share: the chosen mechanism and the mechListMIC bookkeeping."""

    def __init__(self) -> None:
        self.mech: Mechanism | None = None
        self.mech_oid: str | None = None
        self.mech_types: tuple[str, ...] = ()
        self.mic_required = False
        self.mic_sent = False
        self.mic_received = False
        self.done = False

    @property
    def mech_complete(self) -> bool:
        """The chosen mechanism's context is established: wrap()/unwrap() work."""
        return self.mech is not None and self.mech.complete

    @property
    def complete(self) -> bool:
        return self.done

    def _m(self) -> Mechanism:
        if self.mech is None:
            raise StateError("negotiating", "no mechanism chosen yet")
        return self.mech

    def wrap(self, data: bytes) -> bytes:
        return self._m().wrap(data)

    def unwrap(self, data: bytes) -> bytes:
        return self._m().unwrap(data)

    def _check_mic(self, mic: bytes | None) -> None:
        if mic is None:
            return
        mech = self._m()
        if not mech.complete:
            raise SpnegoFailure("mechListMIC before the mechanism finished", SEC_E_INVALID_TOKEN)
        try:
            mech.verify(mech_type_list(self.mech_types), mic)
        except ProtocolFailure as exc:
            raise SpnegoFailure(
                f"mechListMIC does not verify: {exc.reason}", SEC_E_MESSAGE_ALTERED
            ) from exc
        mech.after_mech_list_mic(outgoing=False)
        self.mic_required = True  # a MIC received is answered with one
        self.mic_received = True

    def _make_mic(self) -> bytes | None:
        mech = self._m()
        if not mech.complete:
            return None
        if mech.needs_mech_list_mic():
            self.mic_required = True
        if not self.mic_required or self.mic_sent:
            return None
        mic = mech.sign(mech_type_list(self.mech_types))
        mech.after_mech_list_mic(outgoing=True)
        self.mic_sent = True
        return mic


class SpnegoInitiator(_Spnego):
    """The client: step(None) -> NegTokenInit with an optimistic token for the first mechanism;
    step(NegTokenResp) -> the next NegTokenResp, or None when nothing is left to send."""

    def __init__(self, mechs: Sequence[tuple[str, Callable[[], Mechanism]]]) -> None:
        super().__init__()
        if not mechs:
            raise ValueError("SPNEGO needs at least one mechanism")
        self._factories = list(mechs)
        self.mech_types = tuple(oid for oid, _ in mechs)
        self._started = False
        self._answered = False
        self.fallback: str | None = None  # why a preferred mechanism was left out

    def step(self, token: bytes | None = None) -> bytes | None:
        if not self._started:
            if token is not None:
                raise StateError("initial", "the initiator speaks first")
            self._started = True
            return self._offer()
        if token is None or self.done:
            raise StateError("negotiating" if not self.done else "complete", "unexpected step")
        return self._answer(token)

    def _offer(self) -> bytes:
        """NegTokenInit with the first usable mechanism's optimistic token; a mechanism that is
        unavailable here is dropped from the list (with its aliases), as Negotiate does."""
        while self._factories:
            oid, factory = self._factories[0]
            try:
                mech = factory()
                first = mech.step(None)
            except MechanismUnavailable as exc:
                self.fallback = f"{oid}: {exc.reason}"
                self._factories = [(o, f) for o, f in self._factories if not same_mech(o, oid)]
                continue
            self.mech_oid, self.mech = oid, mech
            self.mech_types = tuple(o for o, _ in self._factories)
            return NegTokenInit(self.mech_types, first).encode()
        raise SpnegoFailure(f"no usable mechanism ({self.fallback})", SEC_E_NO_CREDENTIALS,
                            "no_common_mech")

    def _answer(self, token: bytes) -> bytes | None:
        resp = decode_token(token)
        if not isinstance(resp, NegTokenResp):
            raise ParseError("SPNEGO token", "the acceptor answered with a NegTokenInit")
        out = self._first_answer(resp) if not self._answered else None
        mech = self._m()
        if resp.neg_state == NegState.REJECT:
            if resp.response_token and not mech.complete:
                mech.step(resp.response_token)  # a Kerberos KRB-ERROR raises its own failure
            raise SpnegoFailure("the server rejected the negotiation", SEC_E_LOGON_DENIED)
        if resp.neg_state == NegState.REQUEST_MIC:
            self.mic_required = True
        if resp.response_token is not None:
            if mech.complete:
                raise ParseError("SPNEGO token", "mechanism token after the context finished")
            out = mech.step(resp.response_token)
        self._check_mic(resp.mech_list_mic)
        mic = self._make_mic()
        if resp.neg_state == NegState.ACCEPT_COMPLETED:
            if not mech.complete:
                raise SpnegoFailure("accept-completed before our context", SEC_E_INVALID_TOKEN)
            if self.mic_required and not self.mic_received:
                raise SpnegoFailure("accept-completed without the mechListMIC", SEC_E_INVALID_TOKEN)
            self.done = True
        if out is None and mic is None:
            return None
        return NegTokenResp(response_token=out, mech_list_mic=mic).encode()

    def _first_answer(self, resp: NegTokenResp) -> bytes | None:
        self._answered = True
        chosen = resp.supported_mech
        if chosen is None or same_mech(chosen, self.mech_types[0]):
            return None
        for oid, factory in self._factories[1:]:
            if same_mech(chosen, oid):  # the acceptor picked a later mechanism: start it now
                self.mech_oid, self.mech = oid, factory()
                self.mic_required = True
                return self.mech.step(None)
        raise SpnegoFailure(f"the server chose {chosen}, which we did not offer",
                            SEC_E_INVALID_TOKEN)


class SpnegoAcceptor(_Spnego):
    """The server: the first mechanism of the initiator's list that we support wins (its optimistic
    token is used when it is that first one); raw tokens are not this class's job."""

    def __init__(self, mechs: Sequence[tuple[str, Callable[[], Mechanism]]]) -> None:
        super().__init__()
        self._factories = list(mechs)
        self._first = True

    def step(self, token: bytes) -> bytes | None:
        if self.done:
            raise StateError("complete", "SPNEGO already finished")
        tok = decode_token(token)
        out: bytes | None = None
        supported: str | None = None
        state = NegState.ACCEPT_INCOMPLETE
        if self._first:
            if not isinstance(tok, NegTokenInit):
                raise ParseError("SPNEGO token", "the first token is not a NegTokenInit")
            self._first = False
            self.mech_types = tok.mech_types
            supported = self._choose(tok.mech_types)
            if supported != tok.mech_types[0]:
                self.mic_required = True
                state = NegState.REQUEST_MIC
            elif tok.mech_token is not None:
                out = self._m().step(tok.mech_token)
            mic_in = tok.mech_list_mic
        else:
            if not isinstance(tok, NegTokenResp):
                raise ParseError("SPNEGO token", "a second NegTokenInit")
            if tok.neg_state == NegState.REJECT:
                raise SpnegoFailure("the client gave up the negotiation", SEC_E_LOGON_DENIED)
            if tok.response_token is not None:
                if self._m().complete:
                    raise ParseError("SPNEGO token", "mechanism token after the context finished")
                out = self._m().step(tok.response_token)
            mic_in = tok.mech_list_mic
        mech = self._m()
        if mech.complete and mech.needs_mech_list_mic():
            self.mic_required = True
        if mech.complete and self.mic_required and mic_in is None and not self.mic_received:
            raise SpnegoFailure("the client sent no mechListMIC", SEC_E_INVALID_TOKEN)
        self._check_mic(mic_in)
        mic_out = self._make_mic()
        if mech.complete and (not self.mic_required or (self.mic_sent and self.mic_received)):
            state = NegState.ACCEPT_COMPLETED
            self.done = True
        return NegTokenResp(state, supported, out, mic_out).encode()

    def _choose(self, offered: Sequence[str]) -> str:
        for oid in offered:
            for ours, factory in self._factories:
                if same_mech(oid, ours):
                    self.mech_oid, self.mech = oid, factory()
                    return oid  # echo the initiator's OID (Windows rejects an alias)
        raise SpnegoFailure(
            f"no common mechanism in {', '.join(offered)}", SEC_E_INVALID_TOKEN, "no_common_mech"
        )


def negotiate_mechanisms(
    ntlm: Callable[[], Mechanism], kerberos: Callable[[], Mechanism] | None = None
) -> list[tuple[str, Callable[[], Mechanism]]]:
    """The list Windows' Negotiate offers: Kerberos (MS OID, then the standard one) when the
    machine can use it, then NTLM."""
    mechs: list[tuple[str, Callable[[], Mechanism]]] = []
    if kerberos is not None:
        mechs += [(MS_KRB5_OID, kerberos), (KRB5_OID, kerberos)]
    return [*mechs, (NTLM_OID, ntlm)]


# --- NTLM as a SPNEGO mechanism -------------------------------------------------------------


class NtlmMechanism:
    """Our NtlmInitiator or NtlmAcceptor behind the Mechanism interface."""

    def __init__(self, ntlm: NtlmInitiator | NtlmAcceptor) -> None:
        self.ntlm = ntlm

    @property
    def complete(self) -> bool:
        return self.ntlm.complete

    def step(self, token: bytes | None) -> bytes | None:
        if isinstance(self.ntlm, NtlmAcceptor):
            if token is None:
                raise StateError("negotiate", "the NTLM acceptor needs a token")
            return self.ntlm.step(token)
        return self.ntlm.step(token)

    def wrap(self, data: bytes) -> bytes:
        return self.ntlm.wrap(data)

    def unwrap(self, data: bytes) -> bytes:
        return self.ntlm.unwrap(data)

    def sign(self, data: bytes) -> bytes:
        return self.ntlm.sign(data)

    def verify(self, data: bytes, mic: bytes) -> None:
        self.ntlm.verify(data, mic)

    def needs_mech_list_mic(self) -> bool:
        return self.ntlm.mic_present

    def after_mech_list_mic(self, *, outgoing: bool) -> None:
        self.ntlm.reset_rc4(outgoing=outgoing)
