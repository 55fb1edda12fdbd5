"""The probe's side of a server-started licence exchange (MS-RDPELE): against a server side
built here from the same key schedule, the server recovers the premaster secret, the challenge
comes back decrypted and MAC'd, and malformed messages end in typed failures."""

from __future__ import annotations

import contextlib

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.rdp.errors import ParseError, ProtocolFailure, RdpError
from harness.rdp.licensing import (
    ERROR_ALERT,
    LICENSE_REQUEST,
    NEW_LICENSE_REQUEST,
    PLATFORM_CHALLENGE,
    PLATFORM_CHALLENGE_RESPONSE,
    ST_NO_TRANSITION,
    ST_TOTAL_ABORT,
    STATUS_VALID_CLIENT,
    LicenseErrorMessage,
)
from harness.rdp.licensing_client import (
    LicensingClient,
    LicensingKeys,
    license_mac,
)
from harness.rdp.proprietary_cert import ProprietaryCertificate, RsaPublicKey
from harness.rdp.rdpsec import rc4, rsa_private_decrypt
from harness.rdp.wire import Reader, Writer

SERVER_RANDOM = bytes(range(32))
KEY = rsa.generate_private_key(public_exponent=65537, key_size=1024)


def _license_request(certificate: bytes) -> bytes:
    w = Writer().bytes(SERVER_RANDOM).u32le(0x60000)
    company, product = "Microsoft Corporation\0".encode("utf-16-le"), "A02\0".encode("utf-16-le")
    w.u32le(len(company)).bytes(company).u32le(len(product)).bytes(product)
    w.u16le(0x0D).u16le(4).u32le(1)  # KeyExchangeList: RSA
    w.u16le(0x03).u16le(len(certificate)).bytes(certificate)
    scope = b"microsoft.com\0"
    return w.u32le(1).u16le(0x0E).u16le(len(scope)).bytes(scope).value()


def _blob(r: Reader) -> bytes:
    r.u16le()
    return r.bytes(r.u16le())


def test_full_exchange_against_a_server_with_the_same_keys() -> None:
    cert = ProprietaryCertificate.create(RsaPublicKey.from_key(KEY.public_key())).encode()
    client = LicensingClient("alice", "PROBE")
    step = client.receive(LICENSE_REQUEST, _license_request(cert))
    assert step.reply is not None and step.reply[0] == NEW_LICENSE_REQUEST and not step.done

    r = Reader(step.reply[1], "New License Request")
    assert r.u32le() == 1  # KEY_EXCHANGE_ALG_RSA
    r.u32le()
    client_random = r.bytes(32)
    encrypted = _blob(r)
    assert _blob(r) == b"alice\0" and _blob(r) == b"PROBE\0"
    numbers = KEY.private_numbers()
    premaster = rsa_private_decrypt(encrypted[:-8], numbers.public_numbers.n, numbers.d)[:48]
    keys = LicensingKeys.derive(premaster, client_random, SERVER_RANDOM)
    assert keys == client.keys

    challenge = b"TEST\0\0\0\0\0\0"
    body = Writer().u32le(0).u16le(0x09).u16le(len(challenge))
    body.bytes(rc4(keys.encryption_key, challenge)).bytes(license_mac(keys.mac_salt_key,
                                                                       challenge))
    step = client.receive(PLATFORM_CHALLENGE, body.value())
    assert step.reply is not None and step.reply[0] == PLATFORM_CHALLENGE_RESPONSE
    assert client.challenge_mac_ok is True
    r = Reader(step.reply[1], "Platform Challenge Response")
    data = rc4(keys.encryption_key, _blob(r))
    hwid = rc4(keys.encryption_key, _blob(r))
    assert r.bytes(16) == license_mac(keys.mac_salt_key, data + hwid)
    assert data.endswith(len(challenge).to_bytes(2, "little") + challenge)
    assert len(hwid) == 20

    done = client.receive(ERROR_ALERT, LicenseErrorMessage(STATUS_VALID_CLIENT, ST_NO_TRANSITION))
    assert done.done and client.messages == ["License Request", "Platform Challenge",
                                             "error 0x7"]


def test_a_refusal_is_a_typed_licensing_failure() -> None:
    client = LicensingClient("alice", "PROBE")
    with pytest.raises(ProtocolFailure) as info:
        client.receive(ERROR_ALERT, LicenseErrorMessage(0x08, ST_TOTAL_ABORT))
    assert (info.value.stage, info.value.event) == ("licensing", "license_error")


def test_challenge_before_request_and_oversized_blobs_are_typed() -> None:
    with pytest.raises(ProtocolFailure):
        LicensingClient("a", "b").receive(PLATFORM_CHALLENGE, b"\0" * 24)
    huge = SERVER_RANDOM + b"\0\0\0\0" + b"\xff\xff\xff\x7f"
    with pytest.raises(ParseError):
        LicensingClient("a", "b").receive(LICENSE_REQUEST, huge)


def test_no_certificate_anywhere_is_typed() -> None:
    with pytest.raises(ProtocolFailure, match="without a server certificate"):
        LicensingClient("a", "b").receive(LICENSE_REQUEST, _license_request(b""))


@settings(max_examples=300, deadline=None, database=None, derandomize=True)
@given(st.sampled_from([LICENSE_REQUEST, PLATFORM_CHALLENGE, 0x03, 0x04, 0x42]),
       st.binary(max_size=600))
def test_hostile_licensing_messages_end_in_typed_errors(msg_type: int, body: bytes) -> None:
    """Whatever a server sends in a licensing message, the client answers or raises RdpError."""
    client = LicensingClient("alice", "PROBE")
    cert = ProprietaryCertificate.create(RsaPublicKey.from_key(KEY.public_key())).encode()
    client.receive(LICENSE_REQUEST, _license_request(cert))  # keys exist: challenges are parsed
    with contextlib.suppress(RdpError):
        client.receive(msg_type, body)
