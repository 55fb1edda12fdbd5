"""Fuzz targets: each takes bytes and exercises one parser; only typed errors may escape."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from harness import safe_yaml
from harness.host.config import HostConfigError, load_host_config
from harness.pwsh.errors import PwshError
from harness.pwsh.parser import parse as parse_pwsh
from harness.rdp import ber, credssp, gcc, licensing, mcs, ntlm, spnego, tsgu, x224
from harness.rdp.errors import RdpError
from harness.rdp.fastpath import FastPathOutputPdu
from harness.rdp.info import ClientInfoPdu
from harness.rdp.tpkt import FrameBuffer
from harness.scenario.source import ScenarioFileError, load_sourced

CORPUS = Path(__file__).parent / "corpus"


@dataclass(frozen=True)
class Target:
    name: str
    run: Callable[[bytes], None]
    allowed: tuple[type[BaseException], ...] = (RdpError,)


def _ber(data: bytes) -> None:
    for tlv in ber.iter_all(data):
        if tlv.constructed:
            ber.decode_all(tlv.content)


def _tsrequest(data: bytes) -> None:
    credssp.tsrequest_length(data[: credssp.TSREQUEST_HEADER_MAX])
    req = credssp.TSRequest.decode(data)
    req.encode()


def _ntlm(data: bytes) -> None:
    ntlm.parse_challenge(data)


def _ntlm_acceptor(data: bytes) -> None:
    initiator = ntlm.NtlmInitiator("alice", "Secret1!", "LAB")
    acceptor = ntlm.NtlmAcceptor({"alice": "Secret1!"}, nb_domain="LAB", nb_computer="RDHOST",
                                 dns_domain="lab.test", dns_computer="rdhost.lab.test")
    acceptor.step(initiator.step())
    acceptor.step(data)


def _spnego(data: bytes) -> None:
    """The SPNEGO token parser, then the host's SPNEGO acceptor on the token (first or later)."""
    spnego.decode_token(data)
    acceptor = ntlm.NtlmAcceptor({"alice": "Secret1!"}, nb_domain="LAB", nb_computer="RDHOST",
                                 dns_domain="lab.test", dns_computer="rdhost.lab.test")
    acc = spnego.SpnegoAcceptor([(spnego.NTLM_OID, lambda: spnego.NtlmMechanism(acceptor))])
    with contextlib.suppress(RdpError):
        acc.step(data)
    init = spnego.SpnegoInitiator(
        [(spnego.NTLM_OID,
          lambda: spnego.NtlmMechanism(ntlm.NtlmInitiator("alice", "Secret1!", "LAB")))])
    init.step(None)
    init.step(data)


def _x224(data: bytes) -> None:
    for decode in (x224.ConnectionRequest.decode, x224.ConnectionConfirm.decode):
        with contextlib.suppress(RdpError):
            decode(data)


def _mcs(data: bytes) -> None:
    for decode in (mcs.ConnectInitial.decode, mcs.ConnectResponse.decode,
                   mcs.decode_domain_pdu, gcc.ConferenceCreateRequest.decode,
                   gcc.ConferenceCreateResponse.decode):
        with contextlib.suppress(RdpError):
            decode(data)


def _slow_path(data: bytes) -> None:
    for decode in (ClientInfoPdu.decode, licensing.LicensePdu.decode,
                   FastPathOutputPdu.decode):
        with contextlib.suppress(RdpError):
            decode(data)


def _frames(data: bytes) -> None:
    buf = FrameBuffer()
    for i in range(0, len(data), 7):
        buf.feed(data[i : i + 7])
        while buf.next_frame() is not None:
            pass


def _tsgu_packets(data: bytes) -> None:
    splitter = tsgu.PacketSplitter()
    for raw in splitter.feed(data):
        tsgu.decode_packet(raw)
    server = tsgu.TsguServer()
    server.receive_data(data)


def _http(data: bytes) -> None:
    heads = tsgu.HeadBuffer()
    head = heads.feed(data)
    if head is not None:
        for parse in (tsgu.parse_request, tsgu.parse_response):
            with contextlib.suppress(RdpError):
                parse(head)
    tsgu.ChunkedDecoder().feed(data)


def _websocket(data: bytes) -> None:
    for masked in (True, False):
        with contextlib.suppress(RdpError):
            tsgu.WsDecoder(masked=masked).feed(data)


def _pwsh(data: bytes) -> None:
    parse_pwsh(data.decode("utf-8", "replace"), "fuzz.ps1")


def _yaml(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    with contextlib.suppress(ScenarioFileError):
        load_sourced(Path("fuzz.yaml"), text)
    safe_yaml.load(text)


def _host_config(data: bytes) -> None:
    with tempfile.NamedTemporaryFile("wb", suffix=".yaml") as f:
        f.write(data)
        f.flush()
        load_host_config(Path(f.name))


def _rdpsec(data: bytes) -> None:
    """Standard RDP Security input from a peer: the first byte picks the parser (Security
    Exchange on the host's key, server certificate, an encrypted PDU, a licensing message of
    the client's licence exchange)."""
    from harness.rdp import licensing_client, proprietary_cert, rdpsec

    if not data:
        return
    kind, body = data[0] % 4, data[1:]
    if kind == 0:
        numbers = _rdpsec_key().private_numbers()
        exchange = rdpsec.SecurityExchangePdu.decode(body)
        exchange.client_random(numbers.public_numbers.n, numbers.d)
    elif kind == 1:
        proprietary_cert.decode_server_certificate(body).public_key  # noqa: B018
    elif kind == 2:
        rdpsec.RdpSecurity.create(bytes(32), bytes(range(32)), 2, server=False).decrypt(body)
    else:
        from harness.rdp.wire import Reader

        client = licensing_client.LicensingClient("alice", "PROBE")
        msg_type = body[0] if body else 0
        message: bytes | licensing.LicenseErrorMessage = body[1:]
        if msg_type == licensing.ERROR_ALERT:  # as LicensePdu.decode hands it over
            message = licensing.LicenseErrorMessage.decode(Reader(body[1:], "License Error"))
        client.receive(msg_type, message)


_KEY_CACHE: list[object] = []


def _rdpsec_key():  # type: ignore[no-untyped-def]
    if not _KEY_CACHE:
        from harness.rdp.proprietary_cert import generate_server_key

        _KEY_CACHE.append(generate_server_key(512))
    return _KEY_CACHE[0]


TARGETS: dict[str, Target] = {t.name: t for t in (
    Target("rdpsec", _rdpsec),
    Target("ber", _ber),
    Target("tsrequest", _tsrequest),
    Target("ntlm_challenge", _ntlm),
    Target("ntlm_authenticate", _ntlm_acceptor),
    Target("spnego", _spnego),
    Target("x224", _x224),
    Target("mcs_gcc", _mcs),
    Target("slow_path", _slow_path),
    Target("frames", _frames),
    Target("tsgu_packets", _tsgu_packets),
    Target("http", _http),
    Target("websocket", _websocket),
    Target("pwsh", _pwsh, (PwshError,)),
    Target("yaml", _yaml, (yaml.YAMLError, ScenarioFileError)),
    Target("host_config", _host_config, (HostConfigError,)),
)}


def check(target: Target, data: bytes) -> None:
    """Run one input; typed errors are fine, anything else propagates as a crash."""
    with contextlib.suppress(target.allowed):
        target.run(data)


def corpus(name: str) -> list[bytes]:
    folder = CORPUS / name
    return [p.read_bytes() for p in sorted(folder.glob("*"))] if folder.is_dir() else []
