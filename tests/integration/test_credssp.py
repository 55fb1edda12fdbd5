"""CredSSP: TSRequest DER, binding, version/oracle matrix, pyspnego interop over TLS, fuzzing."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import spnego
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.rdp import credssp, ntlm
from harness.rdp.credssp import (
    CredSspClient,
    CredSspFailure,
    CredSspServer,
    OraclePolicy,
    TSCredentials,
    TSPasswordCreds,
    TSRequest,
)
from harness.rdp.errors import ParseError, RdpError, StateError

USERS = {"Alice": "Secret1!"}
PUBKEY = bytes.fromhex("3082010a0282010100") + bytes(range(256)) + bytes.fromhex("0203010001")
DATA = Path(__file__).resolve().parents[2] / "harness" / "data" / "ntstatus.yaml"


def make_acceptor() -> ntlm.NtlmAcceptor:
    return ntlm.NtlmAcceptor(
        USERS,
        nb_domain="LAB",
        nb_computer="RDHOST",
        dns_domain="lab.test",
        dns_computer="rdhost.lab.test",
    )


def make_pair(
    client_version: int = 6,
    server_version: int = 6,
    client_policy: int = OraclePolicy.MITIGATED,
    server_policy: int = OraclePolicy.MITIGATED,
    password: str = "Secret1!",
    client_key: bytes = PUBKEY,
    server_key: bytes = PUBKEY,
) -> tuple[CredSspClient, CredSspServer]:
    client = CredSspClient(
        "alice",
        password,
        "LAB",
        version=client_version,
        oracle_policy=client_policy,
        server_public_key=client_key,
    )
    server = CredSspServer(
        make_acceptor(), version=server_version, oracle_policy=server_policy, public_key=server_key
    )
    return client, server


def run(client: CredSspClient, server: CredSspServer) -> list[bytes]:
    """Exchange TSRequests until one side stops; returns what went on the wire."""
    wire = [client.first_message()]
    while True:
        reply = server.receive(wire[-1])
        if reply is None:
            return wire
        wire.append(reply)
        wire.append(client.receive(reply) or b"")
        if client.done:
            assert server.receive(wire[-1]) is None
            return wire


# --- TSRequest and friends ------------------------------------------------------------------


def test_tsrequest_exact_der() -> None:
    req = TSRequest(6, nego_tokens=[b"AB"])
    assert req.encode().hex() == "3011a003020106a10a30083006a0040402" + "4142"
    assert TSRequest.decode(req.encode()) == req


def test_error_code_is_a_signed_32_bit_integer() -> None:
    enc = TSRequest(3, error_code=0xC000006D).encode()
    assert enc.hex() == "300da003020103a4060204" + "c000006d"
    assert TSRequest.decode(enc).error_code == 0xC000006D
    # a peer writing the 5-byte unsigned form is understood too
    unsigned = bytes.fromhex("300ea003020103a407020500c000006d")
    assert TSRequest.decode(unsigned).error_code == 0xC000006D
    assert TSRequest.decode(TSRequest(6, error_code=5).encode()).error_code == 5


def test_tsrequest_all_fields_roundtrip() -> None:
    req = TSRequest(6, [b"one", b"two"], b"auth", b"pub" * 100, 0xC0000022, b"n" * 32)
    assert TSRequest.decode(req.encode()) == req


@given(
    st.integers(0, 1 << 40),
    st.lists(st.binary(max_size=300), max_size=3),
    st.none() | st.binary(max_size=300),
    st.none() | st.binary(max_size=70000),
    st.none() | st.integers(0, 0xFFFFFFFF),
    st.none() | st.binary(max_size=40),
)
def test_tsrequest_roundtrip(
    version: int,
    tokens: list[bytes],
    auth: bytes | None,
    pub: bytes | None,
    code: int | None,
    nonce: bytes | None,
) -> None:
    req = TSRequest(version, tokens, auth, pub, code, nonce)
    enc = req.encode()
    assert TSRequest.decode(enc) == req
    assert credssp.tsrequest_length(enc) == len(enc)


@pytest.mark.parametrize(
    "bad",
    [
        b"",
        b"\x31\x00",  # SET, not SEQUENCE
        b"\x30\x00",  # no version
        bytes.fromhex("3005a103020106"),  # [1] without [0]
        bytes.fromhex("300aa003020106a003020106"),  # [0] twice
        bytes.fromhex("300aa203040100a003020106"),  # out of order
        bytes.fromhex("3005a0030201ff"),  # negative version
        bytes.fromhex("3007a0030201068000"),  # stray primitive field
        bytes.fromhex("300ea003020106a40702050100000000"),  # errorCode over 32 bits
        bytes.fromhex("3009a003020106a1020400"),  # negoTokens not a SEQUENCE OF
        bytes.fromhex("300ba003020106a104300230" + "00"),  # NegoDataItem without negoToken
    ],
)
def test_tsrequest_malformed(bad: bytes) -> None:
    with pytest.raises(ParseError):
        TSRequest.decode(bad)


def test_ts_credentials() -> None:
    creds = TSPasswordCreds("LAB", "alice", "pw")
    enc = TSCredentials.for_password(creds).encode()
    assert enc[:7].hex() == "302ba003020101"  # credType 1
    dec = TSCredentials.decode(enc)
    assert dec.cred_type == 1 and dec.password_creds() == creds
    assert TSPasswordCreds.decode(creds.encode()) == creds
    assert creds.encode().hex().startswith("3020a0080406" + "4c0041004200")  # UTF-16LE "LAB"
    assert TSCredentials(2, b"smartcard").password_creds() is None
    with pytest.raises(ParseError):
        TSPasswordCreds.decode(bytes.fromhex("3006a0040402" + "4c00"))  # missing fields


def test_tsrequest_length_framing() -> None:
    enc = TSRequest(6, [b"x" * 500]).encode()
    for i in range(4):
        assert credssp.tsrequest_length(enc[:i]) is None
    assert credssp.tsrequest_length(enc[:4]) == len(enc)
    with pytest.raises(ParseError):
        credssp.tsrequest_length(b"\x16\x03\x01")  # a TLS record, not a TSRequest


@given(st.binary(max_size=120))
def test_fuzz_tsrequest_decode(data: bytes) -> None:
    with contextlib.suppress(ParseError):
        TSRequest.decode(data)
    with contextlib.suppress(ParseError):
        credssp.tsrequest_length(data)


# --- binding ----------------------------------------------------------------------------------


def _cert(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rdhost")])
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


@pytest.fixture(scope="module")
def rsa_cert() -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return _cert(key), key


def test_subject_public_key_rsa_is_pkcs1(
    rsa_cert: tuple[x509.Certificate, rsa.RSAPrivateKey],
) -> None:
    cert, _ = rsa_cert
    spk = credssp.subject_public_key(cert.public_bytes(serialization.Encoding.DER))
    assert spk == cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.PKCS1
    )


def test_subject_public_key_ec_is_the_point() -> None:
    cert = _cert(ec.generate_private_key(ec.SECP256R1()))
    spk = credssp.subject_public_key(cert.public_bytes(serialization.Encoding.DER))
    assert spk == cert.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def test_subject_public_key_malformed() -> None:
    with pytest.raises(ParseError):
        credssp.subject_public_key(b"\x30\x03\x02\x01\x01")


def test_binding_values() -> None:
    nonce = bytes(32)
    assert credssp.CLIENT_BINDING_MAGIC == b"CredSSP Client-To-Server Binding Hash\x00"
    assert credssp.SERVER_BINDING_MAGIC == b"CredSSP Server-To-Client Binding Hash\x00"
    assert credssp.client_binding(nonce, PUBKEY) != credssp.server_binding(nonce, PUBKEY)
    assert credssp.echo_increment(b"\x30\x82") == b"\x31\x82"
    assert credssp.echo_increment(b"\xff\xff\x01") == b"\x00\x00\x02"  # little-endian carry


# --- our client against our server ------------------------------------------------------------


@pytest.mark.parametrize("client_version", range(2, 7))
@pytest.mark.parametrize("server_version", range(2, 7))
def test_versions_interoperate(client_version: int, server_version: int) -> None:
    client, server = make_pair(
        client_version, server_version, OraclePolicy.VULNERABLE, OraclePolicy.VULNERABLE
    )
    wire = run(client, server)
    assert client.done and server.done
    assert server.credentials == TSPasswordCreds("LAB", "alice", "Secret1!")
    assert server.user == "alice" and server.acceptor.account == "Alice"
    negotiated = min(client_version, server_version)
    assert client.negotiated_version == server.negotiated_version == negotiated
    assert (client.server_version, server.client_version) == (server_version, client_version)
    msgs = [TSRequest.decode(m) for m in wire]
    # each side always sends its own version (FreeRDP kicks a peer that changes it)
    assert {m.version for m in msgs[0::2]} == {client_version}
    assert {m.version for m in msgs[1::2]} == {server_version}
    pub_msg = msgs[2]
    assert pub_msg.pub_key_auth is not None
    if negotiated >= 5:
        assert pub_msg.client_nonce is not None and len(pub_msg.client_nonce) == 32
        assert len(pub_msg.pub_key_auth) == 16 + 32  # signature + sealed SHA-256
    else:
        assert pub_msg.client_nonce is None
        assert len(pub_msg.pub_key_auth) == 16 + len(PUBKEY)
    assert client.challenge is not None and client.challenge.nb_computer == "RDHOST"


PATCHED, UNPATCHED = 6, 3


@pytest.mark.parametrize("client_policy", list(OraclePolicy))
@pytest.mark.parametrize("server_policy", list(OraclePolicy))
@pytest.mark.parametrize(
    ("client_version", "server_version"),
    [
        (PATCHED, PATCHED),
        (UNPATCHED, PATCHED),
        (PATCHED, UNPATCHED),
        (UNPATCHED, UNPATCHED),
        (2, 6),
        (6, 2),
        (5, 4),
        (4, 5),
    ],
)
def test_oracle_policy_table(
    client_version: int,
    server_version: int,
    client_policy: OraclePolicy,
    server_policy: OraclePolicy,
) -> None:
    client, server = make_pair(client_version, server_version, client_policy, server_policy)
    client_patched, server_patched = client_version >= 5, server_version >= 5
    expect_server_refusal = (
        server_patched
        and not client_patched
        and server_policy == OraclePolicy.FORCE_UPDATED_CLIENTS
    )
    expect_client_refusal = (
        client_patched
        and not server_patched
        and client_policy in (OraclePolicy.FORCE_UPDATED_CLIENTS, OraclePolicy.MITIGATED)
    )
    first = client.first_message()
    if expect_server_refusal:
        with pytest.raises(CredSspFailure) as err:
            server.receive(first)
        assert err.value.refused_by == "server"
        assert err.value.status == credssp.STATUS_NOT_SUPPORTED
        assert err.value.event == "oracle_refused_by_server"
        negotiated = min(client_version, server_version)
        if negotiated in (3, 4, 6):
            assert server.pending_error_reply is not None
            with pytest.raises(CredSspFailure) as seen:
                client.receive(server.pending_error_reply)
            assert seen.value.refused_by == "server" and seen.value.status == 0xC00000BB
            assert seen.value.event == "oracle_refused_by_server"
        else:
            assert server.pending_error_reply is None  # v2/v5 have no errorCode: a bare close
        return
    reply = server.receive(first)
    assert reply is not None
    if expect_client_refusal:
        with pytest.raises(CredSspFailure) as err:
            client.receive(reply)
        assert err.value.refused_by == "client"
        assert err.value.status == credssp.SEC_E_UNSUPPORTED_FUNCTION
        assert err.value.event == "oracle_refused_by_client"
        return
    final = client.receive(reply)
    assert final is not None
    final = client.receive(server.receive(final) or b"")
    assert final is not None and client.done
    assert server.receive(final) is None and server.done


def test_policy_helpers_match_microsoft_table() -> None:
    for policy in OraclePolicy:
        assert credssp.server_refuses(6, 3, policy) == (policy == 0)
        assert credssp.client_refuses(6, 3, policy) == (policy in (0, 1))
        assert not credssp.server_refuses(6, 6, policy) and not credssp.client_refuses(6, 6, policy)
        assert not credssp.server_refuses(3, 3, policy) and not credssp.client_refuses(3, 6, policy)


@pytest.mark.parametrize("version", range(2, 7))
def test_wrong_password(version: int) -> None:
    client, server = make_pair(version, version, password="nope")
    reply = server.receive(client.first_message())
    assert reply is not None
    auth = client.receive(reply)
    assert auth is not None
    with pytest.raises(CredSspFailure) as err:
        server.receive(auth)
    assert err.value.refused_by == "server" and err.value.status == 0xC000006D
    assert err.value.event == "logon_failure"
    if version in (3, 4, 6):
        assert server.pending_error_reply is not None
        assert TSRequest.decode(server.pending_error_reply) == TSRequest(
            version, error_code=0xC000006D
        )
        with pytest.raises(CredSspFailure) as seen:
            client.receive(server.pending_error_reply)
        assert seen.value.refused_by == "server" and seen.value.status == 0xC000006D
        assert seen.value.event == "logon_failure"
    else:
        assert server.pending_error_reply is None
    with pytest.raises(StateError):
        server.receive(auth)


@pytest.mark.parametrize("version", [3, 6])
def test_server_detects_wrong_public_key(version: int) -> None:
    client, server = make_pair(version, version, client_key=b"\x30\x01\x00")
    auth = client.receive(server.receive(client.first_message()) or b"")
    with pytest.raises(CredSspFailure) as err:
        server.receive(auth or b"")
    assert err.value.status == credssp.STATUS_ACCESS_DENIED and err.value.refused_by == "server"
    assert err.value.event == "pubkey_mismatch"
    assert server.pending_error_reply is not None


@pytest.mark.parametrize("version", [3, 6])
def test_client_detects_a_lying_server(version: int) -> None:
    """A man in the middle that authenticates but answers with another key's binding."""
    client, server = make_pair(version, version)
    auth_msg = TSRequest.decode(
        client.receive(server.receive(client.first_message()) or b"") or b""
    )
    acc = server.acceptor
    acc.step(auth_msg.nego_tokens[0])
    acc.unwrap(auth_msg.pub_key_auth or b"")
    forged = TSRequest(version, pub_key_auth=acc.wrap(credssp.echo_increment(b"\x30\x01\x00")))
    with pytest.raises(CredSspFailure) as err:
        client.receive(forged.encode())
    assert err.value.refused_by == "client" and err.value.status == ntlm.SEC_E_MESSAGE_ALTERED
    assert err.value.event == "pubkey_mismatch"


def test_client_detects_tampered_seal() -> None:
    client, server = make_pair()
    auth = client.receive(server.receive(client.first_message()) or b"")
    reply = TSRequest.decode(server.receive(auth or b"") or b"")
    assert reply.pub_key_auth is not None
    tampered = bytearray(reply.pub_key_auth)
    tampered[-1] ^= 1
    with pytest.raises(CredSspFailure) as err:
        client.receive(TSRequest(6, pub_key_auth=bytes(tampered)).encode())
    assert err.value.refused_by == "client"


def test_client_takes_an_initiator_as_first_argument() -> None:
    init = ntlm.NtlmInitiator("alice", "Secret1!", "LAB", workstation="WS7")
    client = CredSspClient(init, version=6, server_public_key=PUBKEY)
    _, server = make_pair()
    run(client, server)
    assert server.credentials == TSPasswordCreds("LAB", "alice", "Secret1!")
    assert server.acceptor.workstation == "WS7"


def test_failure_events() -> None:
    assert CredSspFailure("x", 0xC0000234, "server").event == "account_locked_out"
    assert CredSspFailure("x", 0xC0000001, "server").event == "failed"
    assert CredSspFailure("x", None, "client", "pubkey_mismatch").event == "pubkey_mismatch"


def test_v6_without_nonce_is_refused() -> None:
    client, server = make_pair()
    auth = TSRequest.decode(client.receive(server.receive(client.first_message()) or b"") or b"")
    auth.client_nonce = None
    with pytest.raises(CredSspFailure):
        server.receive(auth.encode())


def test_state_errors() -> None:
    client, server = make_pair()
    with pytest.raises(StateError):
        client.receive(TSRequest(6).encode())
    run(client, server)
    with pytest.raises(StateError):
        client.first_message()
    with pytest.raises(StateError):
        server.receive(TSRequest(6).encode())
    with pytest.raises(ValueError):
        CredSspClient("a", "b", "c", version=7, server_public_key=b"")


def test_status_constants_are_documented() -> None:
    table = {s["name"]: s for s in yaml.safe_load(DATA.read_text())["statuses"]}
    for name, value in [
        ("STATUS_LOGON_FAILURE", ntlm.STATUS_LOGON_FAILURE),
        ("STATUS_NOT_SUPPORTED", credssp.STATUS_NOT_SUPPORTED),
        ("STATUS_ACCESS_DENIED", credssp.STATUS_ACCESS_DENIED),
        ("SEC_E_UNSUPPORTED_FUNCTION", credssp.SEC_E_UNSUPPORTED_FUNCTION),
        ("SEC_E_MESSAGE_ALTERED", ntlm.SEC_E_MESSAGE_ALTERED),
    ]:
        assert table[name]["code"] == value
    assert table["STATUS_NOT_SUPPORTED"]["certainty"] == "open"


# --- fuzzing the server -----------------------------------------------------------------------


@given(st.binary(max_size=200))
def test_fuzz_server_first_message(data: bytes) -> None:
    _, server = make_pair()
    with contextlib.suppress(RdpError):
        server.receive(data)


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=60)
@given(st.integers(0, 2), st.binary(max_size=200), st.lists(st.integers(0, 2000), max_size=3))
def test_fuzz_server_later_messages(stage: int, junk: bytes, flips: list[int]) -> None:
    client, server = make_pair()
    msg = client.first_message()
    for _ in range(stage):
        reply = server.receive(msg)
        msg = client.receive(reply or b"") or b""
    for candidate in (junk, TSRequest(6, [junk], junk, junk, None, junk).encode()):
        fresh_client, fresh_server = make_pair()
        m = fresh_client.first_message()
        for _ in range(stage):
            m = fresh_client.receive(fresh_server.receive(m) or b"") or b""
        with contextlib.suppress(RdpError):
            fresh_server.receive(candidate)
    mutated = bytearray(msg)
    for pos in flips:
        if pos < len(mutated):
            mutated[pos] ^= 0x41
    with contextlib.suppress(RdpError):
        server.receive(bytes(mutated))


# --- pyspnego's CredSSP over TLS --------------------------------------------------------------


class TlsClient:
    """A TLS client over memory BIOs, pumping records to a step() function."""

    def __init__(self, peer_step: Callable[[bytes], bytes | None]) -> None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(self._in, self._out, server_side=False)
        self._peer = peer_step
        while True:
            try:
                self.tls.do_handshake()
                done = True
            except ssl.SSLWantReadError:
                done = False
            data = self._out.read()
            if data:
                self._in.write(self._peer(data) or b"")
            if done:
                break

    def public_key(self) -> bytes:
        return credssp.subject_public_key(self.tls.getpeercert(binary_form=True) or b"")

    def exchange(self, msg: bytes) -> bytes | None:
        self.tls.write(msg)
        answer = self._peer(self._out.read())
        if not answer:
            return None
        self._in.write(answer)
        chunks = []
        while True:
            try:
                chunks.append(self.tls.read(65536))
            except ssl.SSLWantReadError:
                break
        return b"".join(chunks) or None


@pytest.fixture
def user_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "ntlm-users"
    path.write_text("LAB:alice:Secret1!\n")
    monkeypatch.setenv("NTLM_USER_FILE", str(path))
    return path


@pytest.mark.parametrize("version", range(2, 7))
def test_our_client_against_pyspnego_acceptor(user_file: Path, version: int) -> None:
    server = spnego.server(protocol="credssp")
    pipe = TlsClient(server.step)
    client = CredSspClient(
        "alice", "Secret1!", "LAB", version=version, server_public_key=pipe.public_key()
    )
    msg: bytes | None = client.first_message()
    while msg is not None:
        answer = pipe.exchange(msg)
        if client.done:
            assert answer is None
            break
        assert answer is not None
        msg = client.receive(answer)
    assert client.done and server.complete
    assert client.server_version == 6 and client.negotiated_version == version
    assert server.client_principal == "LAB\\alice"


def test_our_client_wrong_password_against_pyspnego(user_file: Path) -> None:
    server = spnego.server(protocol="credssp")
    pipe = TlsClient(server.step)
    client = CredSspClient("alice", "bad", "LAB", server_public_key=pipe.public_key())
    answer = pipe.exchange(client.first_message())
    answer = pipe.exchange(client.receive(answer or b"") or b"")
    with pytest.raises(CredSspFailure) as err:
        client.receive(answer or b"")
    assert err.value.refused_by == "server" and err.value.status is not None


def _tls_server(
    tmp_path: Path, cert: x509.Certificate, key: rsa.RSAPrivateKey
) -> tuple[ssl.SSLObject, ssl.MemoryBIO, ssl.MemoryBIO]:
    cert_file, key_file = tmp_path / "c.pem", tmp_path / "k.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_file, key_file)
    bio_in, bio_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    return ctx.wrap_bio(bio_in, bio_out, server_side=True), bio_in, bio_out


@pytest.mark.parametrize("version", range(2, 7))
def test_pyspnego_client_against_our_server(
    tmp_path: Path, rsa_cert: tuple[x509.Certificate, rsa.RSAPrivateKey], version: int
) -> None:
    cert, key = rsa_cert
    tls, bio_in, bio_out = _tls_server(tmp_path, cert, key)
    server = CredSspServer(
        make_acceptor(),
        version=version,
        oracle_policy=OraclePolicy.VULNERABLE,
        public_key=credssp.subject_public_key(cert.public_bytes(serialization.Encoding.DER)),
    )
    ntlm_ctx = spnego.client("alice", "Secret1!", hostname="rdhost", protocol="ntlm")
    client = spnego.client(
        "LAB\\alice",
        "Secret1!",
        hostname="rdhost",
        protocol="credssp",
        credssp_negotiate_context=ntlm_ctx,
    )
    handshaken, pending = False, b""
    token = client.step()
    while token:
        bio_in.write(token)
        if not handshaken:
            try:
                tls.do_handshake()
                handshaken = True
            except ssl.SSLWantReadError:
                pass
        if handshaken:
            while True:
                try:
                    pending += tls.read(65536)
                except ssl.SSLWantReadError:
                    break
            while (n := credssp.tsrequest_length(pending)) is not None and n <= len(pending):
                msg, pending = pending[:n], pending[n:]
                reply = server.receive(msg)
                if reply is not None:
                    tls.write(reply)
        out = bio_out.read()
        if client.complete and not out:
            break
        token = client.step(out)
    assert server.done and client.complete
    assert server.credentials == TSPasswordCreds("LAB", "alice", "Secret1!")
    assert server.negotiated_version == version


# --- real xfreerdp 2.11 against our CredSspServer ---------------------------------------------

# X.224 Connection Confirm with RDP_NEG_RSP selecting PROTOCOL_HYBRID (MS-RDPBCGR 2.2.1.2.1).
_X224_CC_HYBRID = bytes.fromhex("030000130ed000001234000200080002000000")


def _serve_one_nla(
    listener: socket.socket, tls_ctx: ssl.SSLContext, server: CredSspServer, result: dict
) -> None:
    """Accept one connection: X.224 CR -> CC(HYBRID), TLS, then CredSSP until done or refused."""
    conn, _ = listener.accept()
    conn.settimeout(20)
    try:
        head = conn.recv(4, socket.MSG_WAITALL)
        conn.recv(int.from_bytes(head[2:4], "big") - 4, socket.MSG_WAITALL)
        conn.sendall(_X224_CC_HYBRID)
        tls = tls_ctx.wrap_socket(conn, server_side=True)
        buf = b""
        while not server.done:
            n = credssp.tsrequest_length(buf)
            if n is None or n > len(buf):
                chunk = tls.recv(65536)
                if not chunk:
                    break
                buf += chunk
                continue
            msg, buf = buf[:n], buf[n:]
            try:
                reply = server.receive(msg)
            except CredSspFailure as exc:
                result["failure"] = exc
                if server.pending_error_reply:
                    tls.sendall(server.pending_error_reply)
                break
            if reply is not None:
                tls.sendall(reply)
        time.sleep(0.2)
        tls.close()
    except (OSError, RdpError) as exc:
        result["error"] = exc
    finally:
        conn.close()


@pytest.mark.freerdp
@pytest.mark.parametrize(
    ("version", "password", "exit_code"),
    [
        (6, "Secret1!", 147),  # NLA passes; the shim then closes at MCS (transport failed)
        (5, "Secret1!", 147),
        (3, "Secret1!", 147),
        (2, "Secret1!", 147),
        (6, "wrong", 134),  # errorCode STATUS_LOGON_FAILURE -> ERRCONNECT_LOGON_FAILURE
        (3, "wrong", 134),
        (5, "wrong", 147),  # v5 has no errorCode: a bare close
    ],
)
def test_xfreerdp_against_our_server(
    tmp_path: Path,
    rsa_cert: tuple[x509.Certificate, rsa.RSAPrivateKey],
    xdisplay: str,
    xfreerdp: str,
    version: int,
    password: str,
    exit_code: int,
) -> None:
    cert, key = rsa_cert
    cert_file, key_file = tmp_path / "c.pem", tmp_path / "k.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    tls_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls_ctx.load_cert_chain(cert_file, key_file)
    server = CredSspServer(
        make_acceptor(),
        version=version,
        public_key=credssp.subject_public_key(cert.public_bytes(serialization.Encoding.DER)),
    )
    result: dict = {}
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        thread = threading.Thread(
            target=_serve_one_nla, args=(listener, tls_ctx, server, result), daemon=True
        )
        thread.start()
        proc = subprocess.run(
            [
                xfreerdp,
                f"/v:127.0.0.1:{port}",
                "/u:alice",
                f"/p:{password}",
                "/d:LAB",
                "/cert:ignore",
                "/sec:nla",
                "+auth-only",
            ],
            env={**os.environ, "DISPLAY": xdisplay},
            capture_output=True,
            timeout=60,
            check=False,
        )
        thread.join(20)
    assert proc.returncode == exit_code, proc.stdout.decode(errors="replace")[-2000:]
    if password == "Secret1!":
        assert server.done and "failure" not in result
        assert server.credentials == TSPasswordCreds("LAB", "alice", "Secret1!")
        assert server.client_version == 6 and server.negotiated_version == version
    else:
        assert result["failure"].status == ntlm.STATUS_LOGON_FAILURE
