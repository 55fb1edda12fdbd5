"""NTLM: MD4 and MS-NLMP vectors, our acceptor and initiator against each other and pyspnego."""

from __future__ import annotations

import contextlib
import struct
from datetime import UTC, datetime
from pathlib import Path

import pytest
import spnego
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.rdp import ntlm
from harness.rdp.errors import ParseError, RdpError, StateError
from harness.rdp.md4 import md4
from harness.rdp.ntlm import NF

USERS = {"Alice": "Secret1!", "bob": "hunter2"}
CLOCK = 1_700_000_000.0  # 2023-11-14T22:13:20Z


def acceptor(**kw: object) -> ntlm.NtlmAcceptor:
    args: dict = dict(
        nb_domain="LAB",
        nb_computer="RDHOST",
        dns_domain="lab.test",
        dns_computer="rdhost.lab.test",
        clock=lambda: CLOCK,
    )
    args.update(kw)
    return ntlm.NtlmAcceptor(USERS, **args)


def handshake(init: ntlm.NtlmInitiator, acc: ntlm.NtlmAcceptor) -> tuple[bytes, bytes, bytes]:
    neg = init.step()
    chal = acc.step(neg)
    assert chal is not None
    auth = init.step(chal)
    assert acc.step(auth) is None
    return neg, chal, auth


# --- primitives -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "digest"),
    [
        (b"", "31d6cfe0d16ae931b73c59d7e0c089c0"),
        (b"a", "bde52cb31de33e46245e05fbdbd6fb24"),
        (b"abc", "a448017aaf21d8525fc10ae87aa6729d"),
        (b"message digest", "d9130a8164549fe818874806e1c7014b"),
        (b"abcdefghijklmnopqrstuvwxyz", "d79e1c308aa5bbcdeea8ed63df412da9"),
        (
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
            "043f8582f241db351ce627e153e7f0e4",
        ),
        (b"1234567890" * 8, "e33b4ddc9c38f2199c3e7b164fcc0536"),
    ],
)
def test_md4_rfc1320(data: bytes, digest: str) -> None:
    assert md4(data).hex() == digest


@given(st.binary(max_size=300))
def test_md4_matches_pyspnego(data: bytes) -> None:
    from spnego._ntlm_raw.md4 import md4 as reference

    assert md4(data) == reference(data)


def test_ms_nlmp_ntlmv2_vectors() -> None:
    """MS-NLMP 4.2.4: User/Domain/Password, server challenge 0123456789abcdef, time 0."""
    key = ntlm.ntowfv2("Password", "User", "Domain")
    assert key.hex() == "0c868a403bfd7a93a3001ef22ef02e3f"
    pairs = [
        (ntlm.AvId.NB_DOMAIN, "Domain".encode("utf-16-le")),
        (ntlm.AvId.NB_COMPUTER, "Server".encode("utf-16-le")),
    ]
    temp = (
        b"\x01\x01"
        + b"\x00" * 14
        + b"\xaa" * 8
        + b"\x00" * 4
        + ntlm.encode_av_pairs(pairs)
        + b"\x00" * 4
    )
    proof = ntlm.hmac_md5(key, bytes.fromhex("0123456789abcdef") + temp)
    assert proof.hex() == "68cd0ab851e51c96aabc927bebef6a1c"
    base = ntlm.hmac_md5(key, proof)
    assert base.hex() == "8de40ccadbc14a82f15cb0ad0de95ca3"
    assert ntlm.rc4(base, b"\x55" * 16).hex() == "c5dad2544fc9799094ce1ce90bc9d03e"


def test_ms_nlmp_seal_vector() -> None:
    """MS-NLMP 4.2.4.4: 'Plaintext' sealed with ExportedSessionKey 55..55, sequence 0."""
    flags = NF.EXTENDED_SESSION_SECURITY | NF.KEY_128 | NF.KEY_EXCH | NF.SEAL | NF.SIGN
    client = ntlm.SessionSecurity(b"\x55" * 16, flags, initiator=True)
    out = client.wrap("Plaintext".encode("utf-16-le"))
    assert out[16:].hex() == "54e50165bf1936dc996020c1811b0f06fb5f"
    assert out[:16].hex() == "010000007fb38ec5c55d497600000000"
    server = ntlm.SessionSecurity(b"\x55" * 16, flags, initiator=False)
    assert server.unwrap(out) == "Plaintext".encode("utf-16-le")


def test_filetime() -> None:
    ft = ntlm.filetime(CLOCK)
    assert ntlm.datetime_from_filetime(ft) == datetime.fromtimestamp(CLOCK, UTC)


# --- CHALLENGE ------------------------------------------------------------------------------


def test_acceptor_challenge_layout() -> None:
    acc = acceptor()
    init = ntlm.NtlmInitiator("alice", "Secret1!", "LAB")
    chal = acc.step(init.step())
    assert chal is not None
    info = ntlm.parse_challenge(chal)
    assert info.flags & NF.VERSION and info.version == ntlm.WINDOWS_SERVER_2022_VERSION
    assert info.os_version == "10.0.20348"
    assert info.flags & NF.TARGET_TYPE_DOMAIN and not info.flags & NF.TARGET_TYPE_SERVER
    assert info.flags & NF.KEY_EXCH and info.flags & NF.SEAL and info.flags & NF.UNICODE
    assert not info.flags & NF.OEM
    assert info.target_name == "LAB"
    assert (info.nb_domain, info.nb_computer) == ("LAB", "RDHOST")
    assert (info.dns_domain, info.dns_computer, info.dns_tree) == (
        "lab.test",
        "rdhost.lab.test",
        None,
    )
    assert info.timestamp == datetime.fromtimestamp(CLOCK, UTC)
    # winpr measures the CHALLENGE as header(+Version) + TargetName + TargetInfo for its MIC:
    # the message must be exactly that long, payload contiguous after the Version field.
    name_len, _, name_off = struct.unpack_from("<HHI", chal, 12)
    info_len, _, info_off = struct.unpack_from("<HHI", chal, 40)
    assert name_off == 56 and info_off == 56 + name_len and len(chal) == 56 + name_len + info_len


def test_challenge_without_version_when_not_requested() -> None:
    acc = acceptor()
    init = ntlm.NtlmInitiator("alice", "Secret1!", "LAB", flags=ntlm.CLIENT_FLAGS & ~NF.VERSION)
    chal = acc.step(init.step())
    assert chal is not None
    info = ntlm.parse_challenge(chal)
    assert not info.flags & NF.VERSION and info.version is None
    assert struct.unpack_from("<I", chal, 16)[0] == 48  # TargetName right after the header


def test_standalone_host_is_target_type_server() -> None:
    acc = acceptor(nb_domain="RDHOST", dns_domain="rdhost")
    chal = acc.step(ntlm.NtlmInitiator("a", "b", "").step())
    assert chal is not None
    info = ntlm.parse_challenge(chal)
    assert info.flags & NF.TARGET_TYPE_SERVER and info.target_name == "RDHOST"


def test_parse_challenge_tolerates_missing_version_field() -> None:
    """Old pyspnego set the VERSION flag without the field; a probe still reads the names."""
    name = "SRV".encode("utf-16-le")
    info_pairs = ntlm.encode_av_pairs([(ntlm.AvId.NB_COMPUTER, name)])
    flags = NF.UNICODE | NF.NTLM | NF.TARGET_INFO | NF.VERSION
    msg = (
        ntlm.SIGNATURE
        + struct.pack("<I", 2)
        + struct.pack("<HHI", 6, 6, 48)
        + struct.pack("<I", flags)
        + b"C" * 8
        + b"\x00" * 8
        + struct.pack("<HHI", len(info_pairs), len(info_pairs), 54)
        + name
        + info_pairs
    )
    info = ntlm.parse_challenge(msg)
    assert info.version is None and info.target_name == "SRV" and info.nb_computer == "SRV"
    assert info.timestamp is None


@pytest.mark.parametrize(
    "bad",
    [
        b"",
        b"NTLMSSP\x00\x02\x00\x00\x00",
        b"NTLMSSP\x00\x01\x00\x00\x00" + b"\x00" * 40,  # a NEGOTIATE
        b"NTLMSSQ\x00\x02\x00\x00\x00" + b"\x00" * 40,
        # TargetInfo pointing past the end
        b"NTLMSSP\x00\x02\x00\x00\x00"
        + b"\x00" * 8
        + b"\x01\x00\x00\x00"
        + b"\x00" * 16
        + struct.pack("<HHI", 8, 8, 100),
    ],
)
def test_parse_challenge_malformed(bad: bytes) -> None:
    with pytest.raises(ParseError):
        ntlm.parse_challenge(bad)


@given(st.binary(max_size=200))
def test_fuzz_parse_challenge(data: bytes) -> None:
    with contextlib.suppress(ParseError):
        ntlm.parse_challenge(data)


@given(st.binary(max_size=200))
def test_fuzz_parse_challenge_with_valid_header(tail: bytes) -> None:
    with contextlib.suppress(ParseError):
        ntlm.parse_challenge(ntlm.SIGNATURE + b"\x02\x00\x00\x00" + tail)


# --- our initiator and acceptor -------------------------------------------------------------


def test_own_initiator_against_own_acceptor() -> None:
    init = ntlm.NtlmInitiator("ALICE", "Secret1!", "lab", "WS01", spn="TERMSRV/rdhost")
    acc = acceptor()
    handshake(init, acc)
    assert init.complete and acc.complete
    assert (acc.user, acc.account, acc.domain, acc.workstation) == ("ALICE", "Alice", "lab", "WS01")
    assert init.session_key == acc.session_key
    assert init.challenge is not None and init.challenge.nb_computer == "RDHOST"
    for i in range(3):
        assert acc.unwrap(init.wrap(b"c2s %d" % i)) == b"c2s %d" % i
        assert init.unwrap(acc.wrap(b"s2c %d" % i)) == b"s2c %d" % i


def test_wrap_format_is_signature_then_sealed_data() -> None:
    init, acc = ntlm.NtlmInitiator("bob", "hunter2", ""), acceptor()
    handshake(init, acc)
    out = init.wrap(b"x" * 32)
    assert len(out) == 16 + 32
    assert out[:4] == b"\x01\x00\x00\x00" and out[12:16] == b"\x00\x00\x00\x00"
    assert out[16:] != b"x" * 32
    second = init.wrap(b"y")
    assert second[12:16] == b"\x01\x00\x00\x00"  # sequence number 1


def test_winpr_style_blob_padding_verifies_over_raw_bytes() -> None:
    """winpr pads the NTLMv2 blob with 8 zero bytes: the proof must be over the raw blob."""
    init = ntlm.NtlmInitiator("alice", "Secret1!", "", blob_padding=8)
    acc = acceptor()
    handshake(init, acc)
    assert acc.complete


def test_without_timestamp_no_mic_and_lmv2() -> None:
    init, acc = ntlm.NtlmInitiator("alice", "Secret1!", "LAB"), acceptor()
    neg = init.step()
    chal = acc.step(neg)
    assert chal is not None
    # drop MsvAvTimestamp from the CHALLENGE: the initiator then sends LMv2 and no MIC
    info = ntlm.parse_challenge(chal)
    pairs = [p for p in ntlm.parse_av_pairs(info.target_info) if p[0] != ntlm.AvId.TIMESTAMP]
    new_info = ntlm.encode_av_pairs(pairs)
    head = bytearray(chal[:56])
    struct.pack_into("<HHI", head, 40, len(new_info), len(new_info), 56 + 6)
    auth = init.step(bytes(head) + chal[56:62] + new_info)
    lm_len, _, lm_off = struct.unpack_from("<HHI", auth, 12)
    assert lm_len == 24 and auth[lm_off : lm_off + 24] != b"\x00" * 24
    assert struct.unpack_from("<I", auth, 32)[0] == 72  # payload right after Version, no MIC


def test_wrong_password_and_unknown_user() -> None:
    for user, pw in [("alice", "wrong"), ("mallory", "Secret1!")]:
        init, acc = ntlm.NtlmInitiator(user, pw, "LAB"), acceptor()
        chal = acc.step(init.step())
        assert chal is not None
        with pytest.raises(ntlm.NtlmAuthError) as err:
            acc.step(init.step(chal))
        assert err.value.status == ntlm.STATUS_LOGON_FAILURE == 0xC000006D
        assert not acc.complete
        with pytest.raises(StateError):
            acc.step(b"again")


@pytest.mark.parametrize("where", ["mic", "blob", "proof"])
def test_tampered_authenticate_is_refused(where: str) -> None:
    init, acc = ntlm.NtlmInitiator("alice", "Secret1!", "LAB"), acceptor()
    chal = acc.step(init.step())
    assert chal is not None
    auth = bytearray(init.step(chal))
    _nt_len, _, nt_off = struct.unpack_from("<HHI", auth, 20)
    pos = {"mic": 72 + 3, "blob": nt_off + 16 + 17, "proof": nt_off + 2}[where]
    auth[pos] ^= 0x01
    with pytest.raises(ntlm.NtlmAuthError):
        acc.step(bytes(auth))


def test_tampered_seal_is_refused() -> None:
    init, acc = ntlm.NtlmInitiator("alice", "Secret1!", "LAB"), acceptor()
    handshake(init, acc)
    sealed = bytearray(init.wrap(b"secret data"))
    sealed[20] ^= 0x80
    with pytest.raises(ntlm.NtlmAuthError) as err:
        acc.unwrap(bytes(sealed))
    assert err.value.status == ntlm.SEC_E_MESSAGE_ALTERED
    with pytest.raises(ParseError):
        acc.unwrap(b"short")


def test_state_errors() -> None:
    init, acc = ntlm.NtlmInitiator("alice", "Secret1!", "LAB"), acceptor()
    with pytest.raises(StateError):
        init.wrap(b"x")
    with pytest.raises(StateError):
        acc.unwrap(b"x" * 20)
    with pytest.raises(StateError):
        init.step(b"token first")
    handshake(init, acc)
    with pytest.raises(StateError):
        init.step(b"more")
    with pytest.raises(StateError):
        acc.step(b"more")


def test_negotiate_without_unicode_is_refused() -> None:
    init = ntlm.NtlmInitiator("a", "b", "", flags=ntlm.CLIENT_FLAGS & ~NF.UNICODE)
    with pytest.raises(ntlm.NtlmAuthError) as err:
        acceptor().step(init.step())
    assert err.value.status == ntlm.STATUS_NOT_SUPPORTED


# --- pyspnego interop -----------------------------------------------------------------------


def test_pyspnego_initiator_against_our_acceptor() -> None:
    client = spnego.client(
        "alice", "Secret1!", hostname="rdhost", service="TERMSRV", protocol="ntlm"
    )
    acc = acceptor()
    chal = acc.step(client.step())
    assert chal is not None
    assert acc.step(client.step(chal)) is None
    assert client.complete and acc.complete and acc.account == "Alice"
    for i in range(3):
        assert acc.unwrap(client.wrap(b"to server %d" % i).data) == b"to server %d" % i
        assert client.unwrap(acc.wrap(b"to client %d" % i)).data == b"to client %d" % i


def test_pyspnego_initiator_wrong_password() -> None:
    client = spnego.client("alice", "nope", protocol="ntlm")
    acc = acceptor()
    chal = acc.step(client.step())
    assert chal is not None
    with pytest.raises(ntlm.NtlmAuthError):
        acc.step(client.step(chal))


def test_pyspnego_ntlmv1_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LM_COMPAT_LEVEL", "1")
    client = spnego.client("alice", "Secret1!", protocol="ntlm")
    acc = acceptor()
    chal = acc.step(client.step())
    assert chal is not None
    with pytest.raises(ntlm.NtlmAuthError, match="NTLMv1"):
        acc.step(client.step(chal))


@pytest.fixture
def user_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "ntlm-users"
    path.write_text("LAB:alice:Secret1!\n")
    monkeypatch.setenv("NTLM_USER_FILE", str(path))
    return path


def test_our_initiator_against_pyspnego_acceptor(user_file: Path) -> None:
    server = spnego.server(protocol="ntlm")
    init = ntlm.NtlmInitiator("alice", "Secret1!", "LAB", "WS01", spn="TERMSRV/host")
    chal = server.step(init.step())
    assert chal is not None
    assert init.challenge is None
    assert server.step(init.step(chal)) is None
    assert server.complete and init.complete
    assert init.challenge is not None and init.challenge.timestamp is not None
    for i in range(3):
        assert server.unwrap(init.wrap(b"c%d" % i)).data == b"c%d" % i
        assert init.unwrap(server.wrap(b"s%d" % i).data) == b"s%d" % i


def test_our_initiator_wrong_password_against_pyspnego(user_file: Path) -> None:
    server = spnego.server(protocol="ntlm")
    init = ntlm.NtlmInitiator("alice", "bad", "LAB")
    chal = server.step(init.step())
    with pytest.raises(spnego.exceptions.SpnegoError):
        server.step(init.step(chal))


# --- fuzzing the acceptor -------------------------------------------------------------------


@given(st.binary(max_size=200))
def test_fuzz_acceptor_negotiate(data: bytes) -> None:
    with contextlib.suppress(RdpError):
        acceptor().step(data)


@given(st.binary(max_size=300))
def test_fuzz_acceptor_authenticate(data: bytes) -> None:
    acc = acceptor()
    acc.step(ntlm.NtlmInitiator("alice", "x", "").step())
    for candidate in (data, ntlm.SIGNATURE + b"\x03\x00\x00\x00" + data):
        with contextlib.suppress(RdpError):
            acc.step(candidate)
        acc = acceptor()
        acc.step(ntlm.NtlmInitiator("alice", "x", "").step())


_AUTH_CACHE: dict[str, tuple[bytes, bytes]] = {}


def _fixed_exchange() -> tuple[bytes, bytes]:
    """A NEGOTIATE and a valid AUTHENTICATE for a deterministic acceptor."""
    if not _AUTH_CACHE:
        acc = acceptor(random=lambda n: b"\x07" * n)
        init = ntlm.NtlmInitiator("alice", "Secret1!", "LAB", random=lambda n: b"\x09" * n)
        neg = init.step()
        auth = init.step(acc.step(neg))
        _AUTH_CACHE["x"] = (neg, auth)
    return _AUTH_CACHE["x"]


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.integers(min_value=0, max_value=400), st.integers(1, 255)), max_size=4),
    st.integers(min_value=0, max_value=400),
)
def test_fuzz_mutated_authenticate(flips: list[tuple[int, int]], cut: int) -> None:
    neg, auth = _fixed_exchange()
    mutated = bytearray(auth)
    for pos, bit in flips:
        if pos < len(mutated):
            mutated[pos] ^= bit
    for candidate in (bytes(mutated), bytes(mutated[:cut])):
        acc = acceptor(random=lambda n: b"\x07" * n)
        acc.step(neg)
        try:
            acc.step(candidate)
        except RdpError:
            continue
        assert candidate == auth or acc.complete
