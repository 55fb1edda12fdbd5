"""Real Windows servers on the wire (zeek's RDP traces, cited per frame): every server PDU
decodes with the probe's parsers, and the emulated host answers the same mstsc requests with
the same fields, except where tests/vectors/windows/host_differences.yaml says why not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.rdp.gcc import ENCRYPTION_LEVEL_HIGH, ENCRYPTION_METHOD_128BIT, ServerData
from harness.rdp.mcs import ConnectResponse, SendDataIndication, decode_domain_pdu
from harness.rdp.phases import ServerPhase
from harness.rdp.proprietary_cert import (
    ProprietaryCertificate,
    X509CertificateChain,
    decode_server_certificate,
)
from harness.rdp.server import ServerConnection
from harness.rdp.server_config import ServerConfig
from harness.rdp.share import (
    SEC_ENCRYPT,
    SEC_EXCHANGE_PKT,
    SEC_LICENSE_ENCRYPT_CS,
    SEC_LICENSE_PKT,
)
from harness.rdp.x224 import ConnectionConfirm, Protocol, decode_data
from tests.vectors.windows_traces import TracePdu, load, pdu

PROPRIETARY = "rdp-proprietary-encryption"
DIFFERENCES = Path(__file__).parents[1] / "vectors" / "windows" / "host_differences.yaml"


def _server(trace: str) -> list[TracePdu]:
    return [p for p in load(trace) if p.side == "s"]


@pytest.mark.parametrize("trace", [PROPRIETARY, "rdp-to-ssl", "rdp-x509"])
def test_every_windows_server_pdu_decodes(trace: str) -> None:
    """X.224 Connection Confirms, the Connect Response, MCS domain PDUs, and Send Data
    Indications whose security header says what the encrypted payload is."""
    kinds = set()
    for p in _server(trace):
        payload = decode_data(p.data) if p.data[5] == 0xF0 else None
        if payload is None:
            ConnectionConfirm.decode(p.data)
            kinds.add("cc")
        elif payload[:2] == b"\x7f\x66":
            ConnectResponse.decode(payload)
            kinds.add("connect_response")
        else:
            domain = decode_domain_pdu(payload)
            kinds.add(type(domain).__name__)
            if isinstance(domain, SendDataIndication):
                flags = int.from_bytes(domain.user_data[:2], "little")
                assert flags & SEC_ENCRYPT, p.cite  # every one of them: level High
                assert len(domain.user_data) > 12, p.cite  # header, MAC, ciphertext
    assert "cc" in kinds
    if trace == PROPRIETARY:
        assert {"connect_response", "AttachUserConfirm", "ChannelJoinConfirm",
                "SendDataIndication"} <= kinds
    elif trace == "rdp-x509":  # the trace ends after the Connect Response
        assert "connect_response" in kinds


def test_windows_refuses_ssl_under_security_layer_0_and_selects_rdp_on_retry() -> None:
    failure = ConnectionConfirm.decode(pdu(PROPRIETARY, 5).data)
    assert failure.failure == 0x02  # SSL_NOT_ALLOWED_BY_SERVER, to a request for SSL (frame 4)
    confirm = ConnectionConfirm.decode(pdu(PROPRIETARY, 13).data)
    assert confirm.selected_protocol == 0 and confirm.failure is None


def test_windows_hybrid_selection_flags() -> None:
    confirm = ConnectionConfirm.decode(pdu("rdp-to-ssl", 6).data)
    assert confirm.selected_protocol == Protocol.HYBRID
    assert confirm.flags == 0x01  # EXTENDED_CLIENT_DATA_SUPPORTED


def _server_data(trace: str, frame: int) -> ServerData:
    return ConnectResponse.decode(decode_data(pdu(trace, frame).data)).server_data


def test_windows_proprietary_certificate_is_signed_with_the_ts_key() -> None:
    sec = _server_data(PROPRIETARY, 15).security
    assert sec is not None and sec.server_certificate is not None
    assert (sec.encryption_method, sec.encryption_level) == (ENCRYPTION_METHOD_128BIT,
                                                             ENCRYPTION_LEVEL_HIGH)
    assert len(sec.server_random or b"") == 32
    cert = decode_server_certificate(sec.server_certificate)
    assert isinstance(cert, ProprietaryCertificate)
    assert cert.signature_valid and not cert.temporary
    assert cert.public_key.bit_length == 512 and cert.public_key.exponent == 65537
    assert cert.encode() == sec.server_certificate  # our encoder writes Windows' bytes


def test_windows_x509_chain_gives_the_leaf_key() -> None:
    sec = _server_data("rdp-x509", 13).security
    assert sec is not None and sec.server_certificate is not None
    chain = decode_server_certificate(sec.server_certificate)
    assert isinstance(chain, X509CertificateChain)
    assert len(chain.certificates) == 2 and chain.temporary
    assert chain.public_key.bit_length == 512  # md5WithRSAEncryption-labelled key, read anyway
    assert chain.encode() == sec.server_certificate


def test_windows_licensing_pdu_is_encrypted_when_mstsc_asks() -> None:
    exchange = decode_domain_pdu(decode_data(pdu(PROPRIETARY, 32).data))
    client_flags = int.from_bytes(exchange.user_data[:2], "little")  # type: ignore[union-attr]
    assert client_flags == SEC_EXCHANGE_PKT | SEC_LICENSE_ENCRYPT_CS
    license_pdu = decode_domain_pdu(decode_data(pdu(PROPRIETARY, 35).data))
    flags = int.from_bytes(license_pdu.user_data[:2], "little")  # type: ignore[union-attr]
    assert flags == SEC_LICENSE_PKT | SEC_ENCRYPT | SEC_LICENSE_ENCRYPT_CS  # 0x0288


# -- the emulated host against the same requests -------------------------------------------


def _replay(frames: list[int]) -> tuple[ServerConnection, list[bytes]]:
    """Feed mstsc's PDUs of the trace's second connection to the host (SecurityLayer 0,
    MinEncryptionLevel 3 as that server), one at a time; the host's answer to each."""
    host = ServerConnection(ServerConfig(security_layer=0, user_authentication=False,
                                         min_encryption_level=ENCRYPTION_LEVEL_HIGH))
    answers = []
    for frame in frames:
        host.receive_data(pdu(PROPRIETARY, frame).data)
        answers.append(host.data_to_send())
    return host, answers


def _core_fields(data: ServerData) -> dict[str, Any]:
    core = data.core
    assert core is not None
    return {"server_core.version": core.version,
            "server_core.client_requested_protocols": core.client_requested_protocols,
            "server_core.early_capability_flags": core.early_capability_flags}


def test_host_answers_mstsc_as_that_windows_did() -> None:
    host, answers = _replay([12, 14, 16, 17, 20, 22, 24, 26, 28, 30])
    assert answers[0] == pdu(PROPRIETARY, 13).data  # Connection Confirm: RDP, byte for byte
    ours = ConnectResponse.decode(decode_data(answers[1])).server_data
    theirs = _server_data(PROPRIETARY, 15)
    assert [type(b).__name__ for b in ours.blocks] == [type(b).__name__ for b in theirs.blocks]
    assert ours.network == theirs.network  # I/O channel 1003, static channels 1004..1007
    ours_sec, theirs_sec = ours.security, theirs.security
    assert ours_sec is not None and theirs_sec is not None
    assert (ours_sec.encryption_method, ours_sec.encryption_level) == \
        (theirs_sec.encryption_method, theirs_sec.encryption_level)
    ours_cert = decode_server_certificate(ours_sec.server_certificate or b"")
    theirs_cert = decode_server_certificate(theirs_sec.server_certificate or b"")
    assert type(ours_cert) is type(theirs_cert)
    assert isinstance(ours_cert, ProprietaryCertificate) and ours_cert.signature_valid
    assert len(ours_sec.server_certificate or b"") == len(theirs_sec.server_certificate or b"")
    assert ours_cert.public_key.bit_length == theirs_cert.public_key.bit_length  # type: ignore[union-attr]
    # the MCS domain answers: attach (user 1007 there) and six channel joins
    for ours_pdu, frame in zip(answers[3:], [19, 21, 23, 25, 27, 29, 31], strict=False):
        assert type(decode_domain_pdu(decode_data(ours_pdu))) is \
            type(decode_domain_pdu(decode_data(pdu(PROPRIETARY, frame).data)))
    assert host.phase is ServerPhase.MCS_DOMAIN  # waiting for the Security Exchange PDU

    differing = {k: (theirs_v, v) for (k, v), theirs_v in
                 zip(_core_fields(ours).items(), _core_fields(theirs).values(), strict=True)
                 if v != theirs_v}
    listed = {d["field"]: d for d in yaml.safe_load(DIFFERENCES.read_text())}
    assert set(differing) == set(listed), "host_differences.yaml is out of date"
    for name, (windows, ours_v) in differing.items():
        assert (listed[name]["windows"], listed[name]["host"]) == (windows, ours_v), name
        assert listed[name]["source"] and listed[name]["reason"]
