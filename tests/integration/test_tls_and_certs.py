"""TLS over memory BIOs between the two roles, and certificate verification by client policy."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from harness.pki import KeyPair, issue_server_cert
from harness.rdp.certverify import (
    X509_V_ERR_CERT_HAS_EXPIRED,
    X509_V_ERR_CERT_NOT_YET_VALID,
    X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT,
    X509_V_ERR_HOSTNAME_MISMATCH,
    X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
    verify_certificate,
)
from harness.rdp.errors import ProtocolFailure
from harness.rdp.tls import TlsEndpoint, client_context, server_context


def _pump(a: TlsEndpoint, b: TlsEndpoint, rounds: int = 10) -> None:
    for _ in range(rounds):
        a.do_handshake()
        b.feed(a.outgoing())
        b.do_handshake()
        a.feed(b.outgoing())
        if a.handshake_done and b.handshake_done:
            return


def test_memory_bio_tls_handshake_and_data(host_pair: KeyPair) -> None:
    server = TlsEndpoint(
        server_context(host_pair.cert_pem, host_pair.key_pem, "TLSv1.2", "TLSv1.3"),
        server_side=True,
    )
    client = TlsEndpoint(client_context(), server_side=False, server_hostname="localhost")
    _pump(client, server)
    assert client.info and client.info.version == "TLSv1.3"
    assert client.info.peer_cert_der == x509.load_pem_x509_certificate(
        host_pair.cert_pem
    ).public_bytes(Encoding.DER)
    client.write(b"x" * 100_000)
    server.feed(client.outgoing())
    assert server.read() == b"x" * 100_000


def test_version_mismatch_fails_with_typed_error(host_pair: KeyPair) -> None:
    server = TlsEndpoint(
        server_context(host_pair.cert_pem, host_pair.key_pem, "TLSv1", "TLSv1"), server_side=True
    )
    client = TlsEndpoint(client_context("TLSv1.2", "TLSv1.3"), server_side=False)
    with pytest.raises(ProtocolFailure) as info:
        _pump(client, server)
    assert info.value.stage == "tls"


def test_legacy_tls10_pairing_works_when_both_allow_it(host_pair: KeyPair) -> None:
    server = TlsEndpoint(
        server_context(host_pair.cert_pem, host_pair.key_pem, "TLSv1", "TLSv1"), server_side=True
    )
    client = TlsEndpoint(client_context("TLSv1", "TLSv1.2"), server_side=False)
    _pump(client, server)
    assert client.info and client.info.version == "TLSv1"


def _verify(
    pair: KeyPair, ca: KeyPair | None, name: str = "localhost", now: dt.datetime | None = None
) -> list[int]:
    report = verify_certificate(
        x509.load_pem_x509_certificate(pair.cert_pem).public_bytes(Encoding.DER),
        trust_anchors=[ca.cert] if ca else [],
        target_name=name,
        now=now or dt.datetime.now(dt.UTC),
    )
    return [p.code for p in report.problems]


def test_valid_certificate_has_no_problem(host_pair: KeyPair, lab_ca: KeyPair) -> None:
    assert _verify(host_pair, lab_ca) == []


def test_expired_certificate_gives_openssl_error_10(expired_pair: KeyPair, lab_ca: KeyPair) -> None:
    assert _verify(expired_pair, lab_ca) == [X509_V_ERR_CERT_HAS_EXPIRED]


def test_client_clock_decides_validity(host_pair: KeyPair, lab_ca: KeyPair) -> None:
    far_past = dt.datetime.now(dt.UTC) - dt.timedelta(days=400)
    far_future = dt.datetime.now(dt.UTC) + dt.timedelta(days=400)
    assert _verify(host_pair, lab_ca, now=far_past) == [X509_V_ERR_CERT_NOT_YET_VALID]
    assert _verify(host_pair, lab_ca, now=far_future) == [X509_V_ERR_CERT_HAS_EXPIRED]


def test_untrusted_issuer_and_self_signed(host_pair: KeyPair) -> None:
    assert _verify(host_pair, None) == [X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY]
    selfsigned = issue_server_cert(None, "localhost")
    assert _verify(selfsigned, None) == [X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT]


def test_name_mismatch(host_pair: KeyPair, lab_ca: KeyPair) -> None:
    assert _verify(host_pair, lab_ca, name="rdhost.lab.test") == [X509_V_ERR_HOSTNAME_MISMATCH]
    assert _verify(host_pair, lab_ca, name="127.0.0.1") == []
