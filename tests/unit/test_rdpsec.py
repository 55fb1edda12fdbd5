"""Standard RDP Security (MS-RDPBCGR 5.3): keys, RC4 with MACs and key updates, the Security
Exchange, and probe against host through every method and level, all in memory."""

from __future__ import annotations

import contextlib
import os
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.pki import KeyPair
from harness.rdp import events as ev
from harness.rdp.client import ClientConnection
from harness.rdp.errors import RdpError
from harness.rdp.gcc import (
    ENCRYPTION_METHOD_40BIT,
    ENCRYPTION_METHOD_56BIT,
    ENCRYPTION_METHOD_128BIT,
)
from harness.rdp.licensing import LicensePdu
from harness.rdp.proprietary_cert import (
    MAX_SERVER_CERTIFICATE,
    ProprietaryCertificate,
    RsaPublicKey,
    decode_server_certificate,
    generate_server_key,
)
from harness.rdp.rdpsec import (
    KEY_UPDATE_INTERVAL,
    RdpSecurity,
    SecurityExchangePdu,
    SessionKeys,
    choose_method,
)
from harness.rdp.server import ServerConnection
from harness.rdp.server_config import ServerConfig
from harness.rdp.share import SEC_SECURE_CHECKSUM
from tests.unit.test_state_machine_fuzz import (
    Exchange,
    assert_ended_cleanly,
    new_pair,
    pump,
    split_by,
)
from tests.vectors.windows_traces import pdu

FUZZ = settings(max_examples=200, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])
METHODS = [ENCRYPTION_METHOD_40BIT, ENCRYPTION_METHOD_56BIT, ENCRYPTION_METHOD_128BIT]
CR, SR = bytes(range(32)), bytes(range(100, 132))


@pytest.mark.parametrize("method", METHODS)
def test_keys_pair_up_and_have_the_method_length(method: int) -> None:
    server = SessionKeys.derive(CR, SR, method, server=True)
    client = SessionKeys.derive(CR, SR, method, server=False)
    assert (server.encrypt_key, server.decrypt_key) == (client.decrypt_key, client.encrypt_key)
    assert server.mac_key == client.mac_key
    size = 16 if method == ENCRYPTION_METHOD_128BIT else 8
    assert len(server.encrypt_key) == len(server.mac_key) == size
    if method == ENCRYPTION_METHOD_40BIT:
        assert server.encrypt_key[:3] == b"\xd1\x26\x9e"
    elif method == ENCRYPTION_METHOD_56BIT:
        assert server.encrypt_key[:1] == b"\xd1" and server.encrypt_key[1:3] != b"\x26\x9e"


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("salted", [False, True])
def test_both_directions_survive_the_key_update(method: int, salted: bool) -> None:
    server = RdpSecurity.create(CR, SR, method, server=True)
    client = RdpSecurity.create(CR, SR, method, server=False)
    server.salted = client.salted = salted
    first_key = server.keys.encrypt_key
    for i in range(KEY_UPDATE_INTERVAL + 3):
        payload = i.to_bytes(4, "little") * 3
        wire = server.encrypt(0, payload)
        flags, plain = client.decrypt(wire)
        assert plain == payload and bool(flags & SEC_SECURE_CHECKSUM) == salted
        assert server.decrypt(client.encrypt(0, payload))[1] == payload
    assert server._encryptor.key != first_key  # updated after 4096 packets (5.3.7)


def test_a_changed_byte_fails_the_mac() -> None:
    server = RdpSecurity.create(CR, SR, ENCRYPTION_METHOD_128BIT, server=True)
    client = RdpSecurity.create(CR, SR, ENCRYPTION_METHOD_128BIT, server=False)
    wire = bytearray(server.encrypt(0, b"hello world"))
    wire[-1] ^= 1
    with pytest.raises(RdpError, match="MAC"):
        client.decrypt(bytes(wire))


def test_security_exchange_carries_the_client_random() -> None:
    key = generate_server_key(512)
    numbers = key.private_numbers()
    random = os.urandom(32)
    sent = SecurityExchangePdu.for_random(random, numbers.public_numbers.n, 65537)
    assert len(sent.encrypted_random) == 64 + 8
    got = SecurityExchangePdu.decode(sent.encode())
    assert got.client_random(numbers.public_numbers.n, numbers.d) == random


def test_proprietary_certificate_round_trip_and_signature() -> None:
    key = RsaPublicKey.from_key(generate_server_key(512).public_key())
    cert = ProprietaryCertificate.create(key)
    again = decode_server_certificate(cert.encode())
    assert again == cert and again.signature_valid  # type: ignore[union-attr]
    tampered = replace(cert, public_key=replace(key, exponent=3))
    assert not tampered.signature_valid


@pytest.mark.parametrize(("level", "offered", "chosen"), [
    (1, 0x1B, ENCRYPTION_METHOD_128BIT), (2, 0x09, ENCRYPTION_METHOD_56BIT),
    (2, 0x01, ENCRYPTION_METHOD_40BIT), (3, 0x09, None), (3, 0x1B, ENCRYPTION_METHOD_128BIT)])
def test_method_choice_follows_the_level(level: int, offered: int, chosen: int | None) -> None:
    assert choose_method(offered, 0, level) == chosen


# -- probe against host, in memory ------------------------------------------------------------


@pytest.mark.parametrize("level", [1, 2, 3])
def test_probe_reaches_a_usable_session_at_each_level(host_pair: KeyPair, level: int) -> None:
    client, server = new_pair(host_pair, requested=0, security_layer=0,
                              user_authentication=False, min_encryption_level=level)
    x = pump(client, server)
    assert client.activated and x.update_bytes > 0
    assert not x.failures("c") and not x.failures("s")
    logs = [e for e in x.server_events if isinstance(e, ev.HostLog) and "Security" in e.message]
    assert logs and logs[0].detail["level"] == level and logs[0].detail["license_encrypt"]


def _rdp_pair(pair: KeyPair, level: int, methods: int) -> tuple[ClientConnection,
                                                                 ServerConnection]:
    client, server = new_pair(pair, requested=0, security_layer=0,
                              user_authentication=False, min_encryption_level=level)
    client.config.encryption_methods = methods
    return client, server


@pytest.mark.parametrize("method", METHODS)
def test_probe_offering_one_method_gets_it(host_pair: KeyPair, method: int) -> None:
    client, server = _rdp_pair(host_pair, 2, method)
    x = pump(client, server)
    assert client.activated, x.failures("c")
    logs = [e for e in x.server_events if isinstance(e, ev.HostLog) and "Security" in e.message]
    assert logs[0].detail["method"] == f"{method:#x}"


def test_high_level_refuses_a_client_without_128_bit(host_pair: KeyPair) -> None:
    client, server = _rdp_pair(host_pair, 3, ENCRYPTION_METHOD_40BIT)
    x = pump(client, server)
    assert not client.activated
    assert [f.event for f in x.failures("s")] == ["encryption_method"]


# -- hostile input: every mutation ends in a typed failure ------------------------------------


@FUZZ
@given(st.binary(max_size=200), st.integers(0, 3))
def test_mutated_security_exchange_is_a_typed_failure(junk: bytes, where: int) -> None:
    numbers = _KEY.private_numbers()
    good = SecurityExchangePdu.for_random(CR, numbers.public_numbers.n, 65537).encode()
    data = [junk, good[:where * 3] + junk, good + junk, junk + good][where]
    with contextlib.suppress(RdpError):
        SecurityExchangePdu.decode(data).client_random(numbers.public_numbers.n, numbers.d)


_KEY = generate_server_key(512)
_WINDOWS_CERT = bytes.fromhex(
    pdu("rdp-proprietary-encryption", 15).data.hex()[-2 * 184:])  # the 184-byte certificate


@FUZZ
@given(st.integers(0, 183), st.integers(0, 255), st.binary(max_size=8))
def test_mutated_server_certificate_is_a_typed_failure(pos: int, value: int,
                                                       extra: bytes) -> None:
    data = bytearray(_WINDOWS_CERT)
    data[pos] = value
    try:
        cert = decode_server_certificate(bytes(data) + extra)
        assert cert.public_key.modulus > 0
    except RdpError:
        pass


def test_oversized_server_certificate_is_refused() -> None:
    with pytest.raises(RdpError, match="allowed"):
        decode_server_certificate(b"\x02\x00\x00\x00" + b"\x00" * MAX_SERVER_CERTIFICATE)


@FUZZ
@given(st.binary(max_size=64), st.integers(0, 0xFFFF))
def test_mutated_licensing_pdu_is_a_typed_failure(body: bytes, flags: int) -> None:
    data = flags.to_bytes(2, "little") + b"\x00\x00" + body
    with contextlib.suppress(RdpError):
        LicensePdu.decode(data)


@FUZZ
@given(st.binary(min_size=1, max_size=120))
def test_mutated_encrypted_pdu_is_a_typed_failure(junk: bytes) -> None:
    client = RdpSecurity.create(CR, SR, ENCRYPTION_METHOD_128BIT, server=False)
    with contextlib.suppress(RdpError):
        client.decrypt(junk)


@pytest.mark.parametrize("junk", [b"\x01\x00\x00\x00\xff\xff\xff\x7f", b"\x00" * 8,
                                  b"\x01\x00\x00\x00\x48\x00\x00\x00" + b"\xff" * 72])
def test_host_given_hostile_security_exchange_fails_typed(junk: bytes) -> None:
    """mstsc's connection sequence from zeek's trace, then garbage for the Security Exchange:
    the host's machine ends it with a StageFailed, never an exception."""
    from harness.rdp.mcs import SendDataRequest
    from harness.rdp.session_common import mcs_frame

    host = ServerConnection(ServerConfig(security_layer=0, user_authentication=False))
    for frame in (12, 14, 16, 17, 20, 22, 24, 26, 28, 30):
        host.receive_data(pdu("rdp-proprietary-encryption", frame).data)
    host.receive_data(mcs_frame(SendDataRequest(1007, 1003, junk).encode()))
    failures = [e for e in iter(host.next_event, None) if isinstance(e, ev.StageFailed)]
    assert [f.stage for f in failures] == ["mcs"] and host.should_close


# -- the two state machines under Standard RDP Security, with bytes changed in flight ---------

RDP_POLICY = {"requested": 0, "security_layer": 0, "user_authentication": False}


@pytest.fixture(scope="module")
def rdp_reference(host_pair: KeyPair) -> Exchange:
    x = pump(*new_pair(host_pair, **RDP_POLICY))
    assert x.client.activated and not x.failures("c") and not x.failures("s")
    return x


@FUZZ
@given(direction=st.sampled_from("cs"), offset=st.integers(0, 1 << 20), kind=st.integers(0, 3),
       value=st.integers(0, 255), sizes=st.lists(st.integers(1, 2000), min_size=1, max_size=4))
def test_mutated_rdp_security_stream_ends_in_a_failure_never_an_exception(
    direction: str, offset: int, kind: int, value: int, sizes: list[int], host_pair: KeyPair,
    rdp_reference: Exchange,
) -> None:
    """One change anywhere in either direction (X.224, the certificate, the Security Exchange,
    a MAC or a ciphertext byte): each side ends in a typed failure or a session. A change in
    an encrypted PDU cannot go unnoticed: its MAC fails (a header byte like flagsHi may)."""
    total = len(rdp_reference.to_server if direction == "c" else rdp_reference.to_client)
    x = pump(*new_pair(host_pair, **RDP_POLICY),
             wire_mutation=(direction, offset % total, kind, value),
             to_server=split_by(sizes), to_client=split_by(sizes[::-1]))
    assert_ended_cleanly(x)
