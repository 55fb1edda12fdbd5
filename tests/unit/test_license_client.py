"""The client's licence exchange (MS-RDPELE): a server's License Request and Platform Challenge
built here with a real key, the client's answers checked by decrypting them as a licence
server would, and hostile licensing messages ending in typed failures."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.rdp.errors import RdpError
from harness.rdp.license_client import (
    BB_ENCRYPTED_DATA_BLOB,
    LicenseClient,
    LicensingKeys,
)
from harness.rdp.licensing import (
    ERROR_ALERT,
    LICENSE_REQUEST,
    NEW_LICENSE,
    NEW_LICENSE_REQUEST,
    PLATFORM_CHALLENGE,
    PLATFORM_CHALLENGE_RESPONSE,
    ST_NO_TRANSITION,
    STATUS_VALID_CLIENT,
    LicenseErrorMessage,
)
from harness.rdp.proprietary_cert import ProprietaryCertificate, RsaPublicKey, generate_server_key
from harness.rdp.rdpsec import rc4, rsa_private_decrypt
from harness.rdp.wire import Reader, Writer

KEY = generate_server_key(512)
SERVER_RANDOM = bytes(range(7, 39))


def _license_request(with_cert: bool = True) -> bytes:
    cert = ProprietaryCertificate.create(RsaPublicKey.from_key(KEY.public_key())).encode() \
        if with_cert else b""
    w = Writer().bytes(SERVER_RANDOM).u32le(0x60000)
    company, product = "Microsoft Corporation".encode("utf-16-le"), "A02".encode("utf-16-le")
    w.u32le(len(company)).bytes(company).u32le(len(product)).bytes(product)
    w.u16le(0x000D).u16le(4).u32le(1)  # key exchange list: RSA
    w.u16le(0x0003).u16le(len(cert)).bytes(cert)
    return w.u32le(1).u16le(0x000E).u16le(8).bytes(b"lab.test").value()


def _body(message: bytes, msg_type: int) -> bytes:
    assert message[0] == msg_type
    return message[4:]


def test_exchange_as_a_licence_server_sees_it() -> None:
    client = LicenseClient("alice", "PROBE", None)
    reply = client.receive(LICENSE_REQUEST, _license_request())
    assert reply is not None
    r = Reader(_body(reply, NEW_LICENSE_REQUEST), "New License Request")
    assert r.u32le() == 1 and r.u32le() == 0x04010000
    client_random = r.bytes(32)
    r.u16le()
    encrypted = r.bytes(r.u16le())
    numbers = KEY.private_numbers()
    premaster = rsa_private_decrypt(encrypted[:64], numbers.public_numbers.n, numbers.d)[:48]
    keys = LicensingKeys.derive(premaster, client_random, SERVER_RANDOM)
    assert keys == client.keys  # the server derives the same keys from the premaster secret
    assert r.u16le() == 0x000F and r.bytes(r.u16le()) == b"alice\x00"

    challenge = b"TEST\x00" + bytes(5)
    w = Writer().u32le(0).u16le(BB_ENCRYPTED_DATA_BLOB).u16le(len(challenge))
    w.bytes(rc4(keys.encryption_key, challenge)).bytes(keys.mac(challenge))
    response = client.receive(PLATFORM_CHALLENGE, w.value())
    assert response is not None and client.challenge_mac_ok
    r = Reader(_body(response, PLATFORM_CHALLENGE_RESPONSE), "Platform Challenge Response")
    r.u16le()
    data = rc4(keys.encryption_key, r.bytes(r.u16le()))
    assert data[8:] == challenge
    r.u16le()
    hwid = rc4(keys.encryption_key, r.bytes(r.u16le()))
    assert r.bytes(16) == keys.mac(data + hwid)

    assert client.receive(NEW_LICENSE, b"...") is None and client.done


def test_valid_client_ends_it_and_an_error_is_a_typed_failure() -> None:
    client = LicenseClient("alice", "PROBE", None)
    ok = LicenseErrorMessage(STATUS_VALID_CLIENT, ST_NO_TRANSITION).encode()
    assert client.receive(ERROR_ALERT, ok) is None and client.answer == "STATUS_VALID_CLIENT"
    with pytest.raises(RdpError, match="licensing error 0x2"):
        LicenseClient("a", "b", None).receive(ERROR_ALERT, LicenseErrorMessage(2, 1).encode())


def test_request_without_any_certificate_is_refused() -> None:
    with pytest.raises(RdpError, match="without a server certificate"):
        LicenseClient("a", "b", None).receive(LICENSE_REQUEST, _license_request(False))


@settings(max_examples=300, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([LICENSE_REQUEST, PLATFORM_CHALLENGE, ERROR_ALERT, 0x77]),
       st.integers(0, 400), st.integers(0, 255), st.binary(max_size=40))
def test_mutated_licensing_messages_end_in_typed_failures(msg_type: int, pos: int, value: int,
                                                          tail: bytes) -> None:
    data = bytearray(_license_request())
    data[pos % len(data)] = value
    client = LicenseClient("a", "b", RsaPublicKey.from_key(KEY.public_key()))
    with contextlib.suppress(RdpError):
        client.receive(LICENSE_REQUEST, bytes(data))
    with contextlib.suppress(RdpError):
        client.receive(msg_type, bytes(data[:pos % 64]) + tail)
