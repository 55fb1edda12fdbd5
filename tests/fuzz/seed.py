"""Seeds for the fuzz corpus, cut from real exchanges: the probe's client against the emulated
host in memory (every byte each side sends, before and after TLS), the gateway's HTTP heads,
chunks, WebSocket frames and tunnel packets, and the shipped scenario, lab and remediation
files."""

from __future__ import annotations

import hashlib
from pathlib import Path

from harness.pki import issue_server_cert, make_ca
from harness.rdp import tsgu
from harness.rdp.client import ClientConfig, ClientConnection
from harness.rdp.credssp import TSRequest
from harness.rdp.server import ServerConnection
from tests.fuzz.targets import CORPUS
from tests.helpers import PASSWORD, USER, policy_for

ROOT = Path(__file__).resolve().parents[2]


def _exchange() -> dict[str, list[bytes]]:
    """Raw and plaintext writes of both sides of one full connection to a usable session."""
    ca = make_ca("fuzz seed CA")
    pair = issue_server_cert(ca, "localhost", names=["localhost"])
    client = ClientConnection(ClientConfig(username=USER, password=PASSWORD, cert_policy="ignore",
                                           target_name="localhost"))
    server = ServerConnection(policy_for(pair, update_burst_bytes=4096))
    plain: list[bytes] = []
    raw: list[bytes] = []
    for conn in (client, server):
        original = conn._send

        def send(data: bytes, original=original) -> None:  # type: ignore[no-untyped-def]
            plain.append(bytes(data))
            original(data)

        conn._send = send  # type: ignore[method-assign]
    client.start()
    for _ in range(200):
        moved = False
        out = client.data_to_send()
        if out:
            raw.append(out)
            server.receive_data(out)
            moved = True
        back = server.data_to_send()
        if back:
            raw.append(back)
            client.receive_data(back)
            moved = True
        if client.activated and not moved:
            break
        if not moved:
            break
    return {"plain": plain, "raw": raw}


def _spnego_tokens() -> list[bytes]:
    """Every SPNEGO token of an NTLM logon (NegTokenInit, the NegTokenResps with mechListMICs),
    and an offer listing Kerberos first."""
    from harness.rdp import ntlm, spnego

    acceptor = ntlm.NtlmAcceptor({USER: PASSWORD}, nb_domain="LAB", nb_computer="RDHOST",
                                 dns_domain="lab.test", dns_computer="rdhost.lab.test")
    def mech() -> spnego.NtlmMechanism:
        return spnego.NtlmMechanism(ntlm.NtlmInitiator(USER, PASSWORD, "LAB"))

    init = spnego.SpnegoInitiator([(spnego.NTLM_OID, mech)])
    acc = spnego.SpnegoAcceptor([(spnego.NTLM_OID, lambda: spnego.NtlmMechanism(acceptor))])
    tokens = [init.step(None) or b""]
    while True:
        tokens.append(acc.step(tokens[-1]) or b"")
        nxt = init.step(tokens[-1])
        if nxt is None:
            break
        tokens.append(nxt)
    tokens.append(spnego.NegTokenInit((spnego.MS_KRB5_OID, spnego.KRB5_OID, spnego.NTLM_OID),
                                      b"\x60\x03\x06\x01\x00").encode())
    return tokens


def seeds() -> dict[str, list[bytes]]:
    ex = _exchange()
    out: dict[str, list[bytes]] = {name: [] for name in (
        "ber", "tsrequest", "ntlm_challenge", "ntlm_authenticate", "x224", "mcs_gcc",
        "slow_path", "frames", "tsgu_packets", "http", "websocket", "pwsh", "yaml",
        "host_config", "spnego")}
    out["spnego"] = _spnego_tokens()
    out["x224"] = [r for r in ex["raw"][:2] if r[:1] == b"\x03"]
    for data in ex["plain"]:
        if data[:1] == b"\x30":
            out["tsrequest"].append(data)
            out["ber"].append(data)
            for token in TSRequest.decode(data).nego_tokens:
                kind = token[8:9]
                if kind == b"\x02":
                    out["ntlm_challenge"].append(token)
                elif kind == b"\x03":
                    out["ntlm_authenticate"].append(token)
        elif data[:1] == b"\x03":
            out["frames"].append(data)
            payload = data[7:]
            (out["mcs_gcc"] if payload[:1] in (b"\x7f", b"\x04", b"\x08", b"\x28", b"\x2c",
                                               b"\x38", b"\x3c", b"\x64", b"\x68")
             else out["slow_path"]).append(payload)
        else:
            out["slow_path"].append(data)
            out["frames"].append(data)
    cid = tsgu.new_connection_id()
    for method in (tsgu.RDG_OUT, tsgu.RDG_IN):
        out["http"].append(tsgu.rdg_request(method, "gw.lab.test", cid).encode())
        out["http"].append(tsgu.rdg_request(method, "gw.lab.test", cid,
                                            websocket_key=tsgu.new_websocket_key()).encode())
    out["http"].append(tsgu.response(200, "OK").encode() if hasattr(tsgu.response(200, "OK"),
                                                                     "encode")
                       else b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    out["http"].append(tsgu.encode_chunk(b"\x01\x00\x00\x00\x10\x00\x00\x00" + bytes(8))
                       + b"0\r\n\r\n")
    client = tsgu.TsguClient("rdhost.lab.test", 3389)
    client.start()
    packets = client.packets_to_send()
    out["tsgu_packets"] += packets
    for p in packets:
        out["websocket"].append(tsgu.encode_ws_frame(tsgu.WS_BINARY, p, mask=b"abcd"))
        out["websocket"].append(tsgu.encode_ws_frame(tsgu.WS_BINARY, p, mask=None))
    out["pwsh"] = [p.read_bytes() for p in sorted((ROOT / "scenarios/remediations")
                                                   .glob("*.ps1"))]
    out["yaml"] = [p.read_bytes() for p in sorted((ROOT / "labs").glob("*.yaml"))]
    out["yaml"] += [p.read_bytes() for p in sorted((ROOT / "scenarios").glob("*.yaml"))[:6]]
    out["rdpsec"] = _rdpsec_seeds()
    out["host_config"] = [b"security_layer: 1\nuser_authentication: true\ntls_min: TLSv1.2\n"
                          b"users: {alice: Secret1!}\ncomputer_name: RDHOST\n"]
    return out


def _rdpsec_seeds() -> list[bytes]:
    """Windows' proprietary certificate and X.509 chain (zeek's traces), a Security Exchange,
    an encrypted PDU, and a License Request / License Error: the first byte picks the parser."""
    from harness.rdp import rdpsec
    from harness.rdp.gcc import ServerData
    from harness.rdp.licensing import ERROR_ALERT, LICENSE_REQUEST, LicenseErrorMessage
    from harness.rdp.mcs import ConnectResponse
    from harness.rdp.x224 import decode_data
    from tests.vectors.windows_traces import pdu

    out = []
    for trace, frame in (("rdp-proprietary-encryption", 15), ("rdp-x509", 13)):
        data: ServerData = ConnectResponse.decode(decode_data(pdu(trace, frame).data)).server_data
        assert data.security is not None
        out.append(b"\x01" + (data.security.server_certificate or b""))
    exchange = decode_data(pdu("rdp-proprietary-encryption", 32).data)[8:]  # after SDrq header
    out.append(b"\x00" + exchange)
    sender = rdpsec.RdpSecurity.create(bytes(32), bytes(range(32)), 2, server=True)
    out.append(b"\x02" + sender.encrypt(0, b"a share PDU"))
    out.append(b"\x03" + bytes([LICENSE_REQUEST]) + bytes(32) + bytes(12) + bytes(12))
    out.append(b"\x03" + bytes([ERROR_ALERT]) + LicenseErrorMessage(7, 2).encode())
    return out


def write_corpus() -> dict[str, int]:
    counts = {}
    for name, items in seeds().items():
        folder = CORPUS / name
        folder.mkdir(parents=True, exist_ok=True)
        for data in items:
            (folder / hashlib.sha1(data).hexdigest()[:16]).write_bytes(data)
        counts[name] = len(list(folder.iterdir()))
    return counts
