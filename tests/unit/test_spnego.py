"""SPNEGO tokens and roles: against pyspnego's encoders, initiator and acceptor; hostile input."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
import spnego
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spnego._spnego import NegTokenInit as PyInit
from spnego._spnego import NegTokenResp as PyResp

from harness.rdp import ntlm
from harness.rdp.errors import ParseError, RdpError
from harness.rdp.spnego import (
    KRB5_OID,
    MS_KRB5_OID,
    NTLM_OID,
    NegState,
    NegTokenInit,
    NegTokenResp,
    NtlmMechanism,
    SpnegoAcceptor,
    SpnegoFailure,
    SpnegoInitiator,
    decode_oid,
    decode_token,
    token_kind,
)

USERS = {"Alice": "Secret1!"}


def acceptor(fixed: bool = False) -> ntlm.NtlmAcceptor:
    """`fixed`: the same challenge and timestamp every time, so recorded client messages replay."""
    extra = {"random": lambda n: b"\x11" * n, "clock": lambda: 1.7e9} if fixed else {}
    return ntlm.NtlmAcceptor(
        USERS, nb_domain="LAB", nb_computer="RDHOST", dns_domain="lab.test",
        dns_computer="rdhost.lab.test", **extra,  # type: ignore[arg-type]
    )


def ntlm_initiator(password: str = "Secret1!") -> SpnegoInitiator:
    return SpnegoInitiator(
        [(NTLM_OID, lambda: NtlmMechanism(ntlm.NtlmInitiator("alice", password, "LAB")))]
    )


def ntlm_acceptor(acc: ntlm.NtlmAcceptor | None = None) -> SpnegoAcceptor:
    a = acc or acceptor()
    return SpnegoAcceptor([(NTLM_OID, lambda: NtlmMechanism(a))])


def exchange(init: SpnegoInitiator, acc: SpnegoAcceptor) -> list[bytes]:
    wire = [init.step(None)]
    while True:
        answer = acc.step(wire[-1])
        wire.append(answer)
        nxt = init.step(answer)
        if nxt is None:
            return wire
        wire.append(nxt)


# --- tokens -----------------------------------------------------------------------------------


def test_decode_what_pyspnego_encodes() -> None:
    init = PyInit([MS_KRB5_OID, KRB5_OID, NTLM_OID], mech_token=b"tok",
                  mech_list_mic=b"m" * 16)
    tok = decode_token(init.pack())
    assert tok == NegTokenInit((MS_KRB5_OID, KRB5_OID, NTLM_OID), b"tok", b"m" * 16)
    resp = PyResp(neg_state=1, supported_mech=NTLM_OID, response_token=b"x", mech_list_mic=b"y")
    expected = NegTokenResp(NegState.ACCEPT_INCOMPLETE, NTLM_OID, b"x", b"y")
    assert decode_token(resp.pack()) == expected


def test_negtokeninit2_hints_are_ignored() -> None:
    init = PyInit([NTLM_OID], hint_name=b"not_defined_in_RFC4178@please_ignore")
    assert decode_token(init.pack()) == NegTokenInit((NTLM_OID,))


def test_roundtrip_through_our_encoders() -> None:
    for tok in (
        NegTokenInit((NTLM_OID,), b"NTLMSSP\0abc"),
        NegTokenResp(NegState.ACCEPT_COMPLETED, None, None, b"\x01" * 16),
        NegTokenResp(NegState.REQUEST_MIC, KRB5_OID, b"t", None),
    ):
        assert decode_token(tok.encode()) == tok


def test_token_kind() -> None:
    assert token_kind(b"NTLMSSP\x00\x01\x00\x00\x00") == "ntlm"
    assert token_kind(NegTokenInit((NTLM_OID,)).encode()) == "spnego"
    assert token_kind(NegTokenResp(NegState.ACCEPT_INCOMPLETE).encode()) == "spnego"
    krb = bytes.fromhex("601106092a864886f712010202") + b"\x01\x00" + b"\x00" * 4
    assert token_kind(krb) == "kerberos"
    with pytest.raises(ParseError):
        token_kind(b"\x30\x00")


def test_oid_limits() -> None:
    assert decode_oid(bytes.fromhex("2b0601050502")) == "1.3.6.1.5.5.2"
    for bad in (b"", b"\x2b\x86", b"\x80\x01", b"\xff" * 6 + b"\x01", b"\x01" * 65):
        with pytest.raises(ParseError):
            decode_oid(bad)


# --- our roles --------------------------------------------------------------------------------


def test_ntlm_through_spnego_with_mech_list_mic() -> None:
    init, acc = ntlm_initiator(), ntlm_acceptor()
    wire = exchange(init, acc)
    assert len(wire) == 4 and init.complete and acc.complete
    assert init.mic_sent and init.mic_received and acc.mic_sent and acc.mic_received
    last = decode_token(wire[3])
    assert isinstance(last, NegTokenResp) and last.neg_state == NegState.ACCEPT_COMPLETED
    assert last.mech_list_mic is not None and len(last.mech_list_mic) == 16
    # the first wrapped messages see a fresh RC4 state in both directions
    assert acc.unwrap(init.wrap(b"hello")) == b"hello"
    assert init.unwrap(acc.wrap(b"world")) == b"world"


def test_wrong_password_is_a_logon_failure() -> None:
    init, acc = ntlm_initiator("wrong"), ntlm_acceptor()
    with pytest.raises(ntlm.NtlmAuthError) as err:
        exchange(init, acc)
    assert err.value.code == ntlm.STATUS_LOGON_FAILURE


def test_missing_mech_list_mic_is_refused() -> None:
    init, acc = ntlm_initiator(), ntlm_acceptor()
    first = init.step(None)
    challenge = acc.step(first)
    answer = decode_token(init.step(challenge) or b"")
    assert isinstance(answer, NegTokenResp)
    stripped = NegTokenResp(answer.neg_state, None, answer.response_token, None).encode()
    with pytest.raises(SpnegoFailure):
        acc.step(stripped)


def test_tampered_mech_list_mic_is_refused() -> None:
    init, acc = ntlm_initiator(), ntlm_acceptor()
    challenge = acc.step(init.step(None))
    answer = decode_token(init.step(challenge) or b"")
    assert isinstance(answer, NegTokenResp) and answer.mech_list_mic
    bad_mic = bytes([answer.mech_list_mic[0]]) + bytes(15)
    with pytest.raises(SpnegoFailure):
        acc.step(NegTokenResp(None, None, answer.response_token, bad_mic).encode())


def test_no_common_mechanism() -> None:
    acc = ntlm_acceptor()
    with pytest.raises(SpnegoFailure) as err:
        acc.step(NegTokenInit((KRB5_OID,), b"\x60\x00").encode())
    assert err.value.event == "no_common_mech"


def test_acceptor_picks_a_later_mechanism_and_asks_for_the_mic() -> None:
    """Kerberos first but the acceptor has only NTLM: request-mic, then NTLM from scratch."""
    acc = ntlm_acceptor()
    resp = decode_token(acc.step(NegTokenInit((KRB5_OID, NTLM_OID), b"\x60\x00").encode()) or b"")
    assert isinstance(resp, NegTokenResp)
    assert resp.neg_state == NegState.REQUEST_MIC and resp.supported_mech == NTLM_OID
    assert resp.response_token is None
    init = SpnegoInitiator([
        (KRB5_OID, lambda: NtlmMechanism(ntlm.NtlmInitiator("x", "y", "Z"))),  # never stepped
        (NTLM_OID, lambda: NtlmMechanism(ntlm.NtlmInitiator("alice", "Secret1!", "LAB"))),
    ])
    init.mech_types = (KRB5_OID, NTLM_OID)
    init._started = True
    token = init.step(resp.encode())
    while token is not None:
        token = init.step(acc.step(token))
    assert init.complete and acc.complete and init.mic_sent and acc.mic_received


# --- pyspnego as the other side -----------------------------------------------------------------


@pytest.fixture
def user_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "ntlm-users"
    path.write_text("LAB:alice:Secret1!\n")
    monkeypatch.setenv("NTLM_USER_FILE", str(path))
    return path


def test_our_initiator_against_pyspnego_negotiate_acceptor(user_file: Path) -> None:
    server = spnego.server(protocol="negotiate")
    init = ntlm_initiator()
    token = init.step(None)
    while token is not None:
        answer = server.step(token)
        token = init.step(answer) if answer else None
    assert server.complete and init.complete
    assert server.client_principal == "LAB\\alice"
    assert server.unwrap(init.wrap(b"pubkey")).data == b"pubkey"
    assert init.unwrap(server.wrap(b"echo").data) == b"echo"


def test_pyspnego_negotiate_initiator_against_our_acceptor() -> None:
    client = spnego.client("LAB\\alice", "Secret1!", hostname="rdhost", protocol="negotiate")
    acc_ntlm = acceptor()
    acc = ntlm_acceptor(acc_ntlm)
    token = client.step()
    while token:
        answer = acc.step(token)
        token = client.step(answer)
    assert client.complete and acc.complete and acc_ntlm.user == "alice"
    assert acc.unwrap(client.wrap(b"pubkey").data) == b"pubkey"
    assert client.unwrap(acc.wrap(b"echo")).data == b"echo"


# --- hostile input ------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_fuzz_decode_token(data: bytes) -> None:
    with contextlib.suppress(ParseError):
        decode_token(data)


def _valid_tokens() -> list[bytes]:
    init, acc = ntlm_initiator(), ntlm_acceptor()
    return exchange(init, acc)


VALID = _valid_tokens()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 3),
       st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), max_size=4),
       st.integers(0, 10_000))
def test_fuzz_mutated_exchange_ends_typed(
    index: int, flips: list[tuple[int, int]], cut: int
) -> None:
    """Flip bytes in, or truncate, one message of a real exchange: a typed failure, no crash."""
    init, acc = ntlm_initiator(), ntlm_acceptor()
    msgs = list(VALID)
    data = bytearray(msgs[index])
    for pos, xor in flips:
        data[pos % len(data)] ^= xor
    msgs[index] = bytes(data[: max(1, len(data) - cut % 8)]) if cut % 3 == 0 else bytes(data)
    try:
        out = init.step(None)
        for i in range(4):
            msg = msgs[i] if i == index else out
            out = acc.step(msg or b"") if i % 2 == 0 else init.step(msg or b"")
    except RdpError:
        pass


# --- CredSSP carrying SPNEGO, as the host receives it -------------------------------------------


def _credssp_spnego_exchange() -> list[bytes]:
    """The client TSRequests of a good SPNEGO-NTLM CredSSP logon (v6)."""
    from harness.rdp.credssp import CredSspClient, CredSspServer

    key = b"\x30\x03\x02\x01\x01"
    client = CredSspClient("alice", "Secret1!", "LAB", server_public_key=key,
                           context=ntlm_initiator())
    server = CredSspServer(acceptor(fixed=True), public_key=key)
    sent = [client.first_message()]
    while not client.done:
        reply = server.receive(sent[-1])
        assert reply is not None
        sent.append(client.receive(reply) or b"")
    assert server.receive(sent[-1]) is None and server.done and server.spnego
    return sent


CREDSSP_SPNEGO = _credssp_spnego_exchange()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2),
       st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), min_size=1, max_size=4))
def test_fuzz_host_credssp_spnego(index: int, flips: list[tuple[int, int]]) -> None:
    """A mutated client TSRequest (SPNEGO inside) ends in a typed failure at the host, or in a
    logon only when the mutation left every checked byte intact."""
    from harness.rdp.credssp import CredSspServer

    server = CredSspServer(acceptor(fixed=True), public_key=b"\x30\x03\x02\x01\x01")
    replay = CredSspServer(acceptor(fixed=True), public_key=b"\x30\x03\x02\x01\x01")
    for msg in CREDSSP_SPNEGO:  # the recording replays to a logon: mutations reach every step
        replay.receive(msg)
    assert replay.done
    msgs = list(CREDSSP_SPNEGO)
    data = bytearray(msgs[index])
    for pos, xor in flips:
        data[pos % len(data)] ^= xor
    msgs[index] = bytes(data)
    try:
        for msg in msgs:
            server.receive(msg)
    except RdpError:
        assert not server.done
