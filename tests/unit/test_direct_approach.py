"""TLS straight away, no X.224 first (MS-RDPBCGR 5.4.2.2, the "direct approach"): the host
completes TLS, then CredSSP or the Connection Request inside TLS, as Windows accepts
(rdp-facts §10). Pumped in memory with a hand-driven client."""

from __future__ import annotations

import pytest
from cryptography import x509

from harness.pki import KeyPair
from harness.rdp import events as ev
from harness.rdp.certverify import subject_public_key
from harness.rdp.credssp import CredSspClient
from harness.rdp.phases import ServerPhase
from harness.rdp.server import ServerConnection
from harness.rdp.tls import TlsEndpoint, client_context
from harness.rdp.x224 import ConnectionConfirm, ConnectionRequest, NegFailure, Protocol
from tests.helpers import PASSWORD, USER, policy_for


class DirectClient:
    """TLS first, then (optionally) CredSSP, then the X.224 request, all inside TLS."""

    def __init__(self, server: ServerConnection) -> None:
        self.server = server
        self.tls = TlsEndpoint(client_context(), server_side=False)
        self.received = b""

    def pump(self) -> None:
        for _ in range(20):
            out = self.tls.outgoing()
            if out:
                self.server.receive_data(out)
            back = self.server.data_to_send()
            if back:
                self.tls.feed(back)
            if not self.tls.handshake_done:
                self.tls.do_handshake()
            else:
                self.received += self.tls.read()
            if not out and not back:
                return

    def handshake(self) -> None:
        self.tls.do_handshake()
        self.pump()
        assert self.tls.handshake_done

    def send(self, data: bytes) -> bytes:
        self.received = b""
        self.tls.write(data)
        self.pump()
        return self.received

    def credssp(self, password: str = PASSWORD) -> None:
        assert self.tls.info is not None and self.tls.info.peer_cert_der is not None
        key = subject_public_key(x509.load_der_x509_certificate(self.tls.info.peer_cert_der))
        client = CredSspClient(USER, password, "", server_public_key=key)
        reply = self.send(client.first_message())
        while not client.done:
            out = client.receive(reply)
            reply = self.send(out) if out else b""


def _events(server: ServerConnection) -> list[ev.Event]:
    out = []
    while (e := server.next_event()) is not None:
        out.append(e)
    return out


def test_tls_then_credssp_then_x224_inside_tls(host_pair: KeyPair) -> None:
    server = ServerConnection(policy_for(host_pair))
    client = DirectClient(server)
    client.handshake()
    client.credssp()
    answer = client.send(ConnectionRequest(int(Protocol.SSL | Protocol.HYBRID)).encode())
    cc = ConnectionConfirm.decode(answer)
    assert (cc.selected_protocol, cc.failure) == (Protocol.HYBRID, None)
    assert server.phase is ServerPhase.MCS_CONNECT and not server.closed
    done = [e.stage for e in _events(server) if isinstance(e, ev.StageCompleted)]
    assert done == ["tls", "credssp", "negotiation"]


def test_tls_only_direct_client_when_nla_is_off(host_pair: KeyPair) -> None:
    server = ServerConnection(policy_for(host_pair, user_authentication=False))
    client = DirectClient(server)
    client.handshake()
    cc = ConnectionConfirm.decode(client.send(ConnectionRequest(int(Protocol.SSL)).encode()))
    assert cc.selected_protocol == Protocol.SSL
    assert server.phase is ServerPhase.MCS_CONNECT


@pytest.mark.parametrize(("nla", "requested", "failure"), [
    (True, Protocol.SSL, NegFailure.HYBRID_REQUIRED_BY_SERVER),  # no CredSSP, NLA required
    (False, Protocol.HYBRID, NegFailure.INCONSISTENT_FLAGS),  # TLS in use but not requested
])
def test_inconsistent_requests_inside_tls_fail(host_pair: KeyPair, nla: bool, requested: int,
                                               failure: int) -> None:
    server = ServerConnection(policy_for(host_pair, user_authentication=nla))
    client = DirectClient(server)
    client.handshake()
    cc = ConnectionConfirm.decode(client.send(ConnectionRequest(int(requested)).encode()))
    assert cc.failure == failure and server.closed


def test_credssp_then_a_request_without_hybrid_is_inconsistent(host_pair: KeyPair) -> None:
    server = ServerConnection(policy_for(host_pair))
    client = DirectClient(server)
    client.handshake()
    client.credssp()
    cc = ConnectionConfirm.decode(client.send(ConnectionRequest(int(Protocol.SSL)).encode()))
    assert cc.failure == NegFailure.INCONSISTENT_FLAGS


def test_direct_tls_refused_when_security_layer_is_rdp(host_pair: KeyPair) -> None:
    server = ServerConnection(policy_for(host_pair, security_layer=0, user_authentication=False))
    client = DirectClient(server)
    client.tls.do_handshake()
    server.receive_data(client.tls.outgoing())
    assert server.closed and server.abort
    failed = [e for e in _events(server) if isinstance(e, ev.StageFailed)]
    assert failed[0].stage == "negotiation"
