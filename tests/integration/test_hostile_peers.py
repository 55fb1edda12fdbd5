"""The hostile-peer suite (issue 10): a misbehaving server at every probe stage, a misbehaving
client at every host stage and at the gateway's; each way (stall, trickle, oversize claim,
garbage, reset, wrong PDU) ends within its deadline with a typed failure, memory measured."""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
import tracemalloc

import pytest

from harness.gateway.policy import GatewayPolicy
from harness.gateway.server import GatewayServer
from harness.host.policy import TlsCredential
from harness.matrix.cell import bounded
from harness.pki import KeyPair
from harness.probe.profiles import load_profile
from harness.probe.runner import ProbeOptions, ProbeTarget, run_probe
from harness.rdp.events import STAGES
from tests.helpers import PASSWORD, USER, policy_for
from tests.hostile.peers import BEHAVIOURS, HostileClient, hostile_server
from tests.integration.test_host_capacity import host

pytestmark = pytest.mark.timeout(60)

STAGE_LIMIT = 1.0  # every probe stage waits at most this long here
OVERALL = 4.0
MEMORY_LIMIT = 8 << 20  # Python-level peak per case
# finalisation is attacked as part of capabilities: the emulated host answers the client's
# finalisation PDUs and sends its first update in one go, so there is no later point to stop.
PROBE_STAGES = ("tcp", "negotiation", "tls", "credssp", "mcs", "client_info", "licensing",
                "capabilities")
HOST_STAGES = ("tcp", "negotiation", "tls", "credssp", "mcs", "client_info", "capabilities")


@pytest.mark.parametrize("behaviour", BEHAVIOURS)
@pytest.mark.parametrize("stage", PROBE_STAGES)
def test_probe_against_a_misbehaving_server(stage: str, behaviour: str,
                                            host_pair: KeyPair) -> None:
    profile = bounded(load_profile("mstsc-win11"), STAGE_LIMIT)
    with hostile_server(policy_for(host_pair), stage, behaviour, hold=8) as server:
        tracemalloc.start()
        t0 = time.monotonic()
        try:
            result = run_probe(ProbeTarget("127.0.0.1", server.port, USER, PASSWORD),
                               ProbeOptions(profile, cert_policy="ignore",
                                            overall_timeout=OVERALL, usable_window=1.0))
        finally:
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        elapsed = time.monotonic() - t0
    assert result.failure is not None, f"{stage}/{behaviour}: the probe did not fail"
    assert result.failure.stage in STAGES and result.failure.event
    assert elapsed < OVERALL + 0.5, f"{stage}/{behaviour}: {elapsed:.1f} s"
    assert peak < MEMORY_LIMIT, f"{stage}/{behaviour}: {peak / 1e6:.1f} MB"
    assert 10 <= result.exit_status() <= 19


@pytest.mark.parametrize("behaviour", BEHAVIOURS)
@pytest.mark.parametrize("stage", HOST_STAGES)
def test_host_against_a_misbehaving_client(stage: str, behaviour: str,
                                           host_pair: KeyPair) -> None:
    with host(policy_for(host_pair), idle_timeout=1.0, handshake_timeout=2.0,
              first_pdu_timeout=1.0) as (h, _):
        client = HostileClient(h.address[1], stage, behaviour, hold=6).run()
        assert client.reached, f"the client never reached {stage}"
        if behaviour != "reset":
            assert client.closed_after is not None, f"{stage}/{behaviour}: host kept it open"
            assert client.closed_after < 2.5, f"{stage}/{behaviour}: {client.closed_after:.1f} s"
        assert _wait(lambda: h.stats.outstanding == 0)
        assert h.stats.peak_buffered < 70_000
        ok = run_probe(ProbeTarget("127.0.0.1", h.address[1], USER, PASSWORD),
                       ProbeOptions(load_profile("mstsc-win11"), cert_policy="ignore",
                                    overall_timeout=10, usable_window=2)).ok
        assert ok, "the host no longer serves a normal client"


GATEWAY_ATTACKS = {
    "stall": b"",
    "garbage_tls": bytes(range(256)) * 16,
    "oversize_head": None,  # an HTTP head that never ends
    "garbage_http": b"\x00\xff NOT HTTP\r\n\r\n",
    "oversize_chunk": b"RDG_IN_DATA /remoteDesktopGateway/ HTTP/1.1\r\nHost: gw\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\nFFFFFFFFFF\r\n",
    "reset": b"",
}


@pytest.mark.parametrize("attack", sorted(GATEWAY_ATTACKS))
def test_gateway_against_a_misbehaving_client(attack: str, host_pair: KeyPair) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    server = GatewayServer(listener, GatewayPolicy(
        load_credential=lambda: TlsCredential(host_pair.cert_pem, host_pair.key_pem),
        users={USER: PASSWORD}), timeout=1.0)
    server.start()
    try:
        raw = socket.create_connection(listener.getsockname(), timeout=6)
        t0 = time.monotonic()
        if attack == "garbage_tls":
            raw.sendall(GATEWAY_ATTACKS[attack])
            sock: socket.socket = raw
        elif attack in ("stall", "reset"):
            sock = raw
            if attack == "reset":
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
                raw.close()
                time.sleep(0.2)
                return
        else:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
            sock = ctx.wrap_socket(raw)
            data = GATEWAY_ATTACKS[attack]
            if data is None:
                data = b"RDG_OUT_DATA / HTTP/1.1\r\n" + b"X-Pad: " + b"a" * 70000
            with contextlib.suppress(OSError):
                sock.sendall(data)
        sock.settimeout(6)
        try:
            while sock.recv(65536):
                pass
        except OSError:
            pass
        assert time.monotonic() - t0 < 3, f"{attack}: the gateway kept the connection"
    finally:
        server.stop()
        listener.close()


def _wait(check, timeout: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return bool(check())
