"""The netns lab backend: the Windows model applied to real kernel namespaces, the probe and a real
xfreerdp run from inside the client namespace against the emulated host in the host namespace
(labs/direct.yaml), and through the emulated RD Gateway in its own namespace (labs/default.yaml).

Needs root (network namespaces); skipped with the reason otherwise. Every wait is bounded
(short probe timeouts, xfreerdp under timeout(1)) and every lab is closed in finally.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.lab.base import ADDRESSES, NotEmulated
from harness.lab.definition import load_lab
from harness.lab.factory import LabHandle
from harness.lab.netns import NetnsLab
from harness.net import down_all, netns_available
from harness.net.namespaces import list_netns
from harness.net.nsenter import ETC_NETNS
from harness.net.state import STATE_ENV
from harness.probe.profiles import ClientProfile, load_profile
from harness.probe.result import ProbeResult
from harness.pwsh import run_remediation, run_source
from harness.windows.faults import inject

REPO = Path(__file__).resolve().parents[2]
OK, WHY = netns_available()
pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(not OK, reason=f"network namespaces unavailable: {WHY}"),
]

PROFILE = load_profile("mstsc-win11")
LOWER_MTU = REPO / "scenarios" / "remediations" / "lower-client-mtu.yaml"
STALE = "10.213.2.99"  # in the host subnet, held by nobody


def short(**timeouts: float) -> ClientProfile:
    """mstsc's profile with some stage timeouts shortened (tcp 2 s, tls 3 s by default)."""
    return PROFILE.with_overrides(timeouts={**PROFILE.timeouts, "tcp": 2, "tls": 3, **timeouts})


def probe(lab: NetnsLab, profile: ClientProfile | None = None) -> ProbeResult:
    return lab.probe(profile or short(), usable_window=3, overall_timeout=20)


def outcome(result: ProbeResult) -> tuple[str, str] | str:
    return "usable" if result.ok else (result.failure.stage, result.failure.event)  # type: ignore[union-attr]


def leftovers(lab_id: str) -> list[str]:
    found = list_netns(f"rdplab-{lab_id}-")
    if ETC_NETNS.exists():
        found += [str(p) for p in ETC_NETNS.glob(f"rdplab-{lab_id}-*")]
    return found


def server_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(("rdplab-host", "rdg-"))]


def link_mtu(lab: NetnsLab, role: str) -> int:
    out = subprocess.run(["ip", "-n", lab.net.ns(role), "-o", "link", "show", "to-router"],
                         capture_output=True, text=True, timeout=5, check=True).stdout
    words = out.split()
    return int(words[words.index("mtu") + 1])


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's labs record themselves in a private state directory."""
    path = tmp_path / "state"
    monkeypatch.setenv(STATE_ENV, str(path))
    return path


def running(name: str) -> Iterator[NetnsLab]:
    handle = LabHandle(load_lab(name), "netns")
    lab_id = None
    try:
        with handle as lab:
            assert isinstance(lab, NetnsLab)
            lab_id = lab.net.lab_id
            yield lab
    finally:
        handle.lab.close()
    assert lab_id is not None and leftovers(lab_id) == []


@pytest.fixture
def lab() -> Iterator[NetnsLab]:
    """client — VPN — host (labs/direct.yaml)."""
    yield from running("direct")


@pytest.fixture
def gw_lab() -> Iterator[NetnsLab]:
    """client — VPN — RD Gateway — host (labs/default.yaml)."""
    yield from running("default")


# -- the lab itself ------------------------------------------------------------------------------


def test_model_addresses_are_real_and_baseline_is_usable(lab: NetnsLab) -> None:
    assert lab.backend == "netns"
    for role in ("client", "host"):
        assert lab.net.address(role) == ADDRESSES[role]
    assert lab.unsupported("netns") is None
    assert lab.host_server is not None
    assert lab.host_server.address == (ADDRESSES["host"], 3389)
    assert lab.gateway_server is None
    result = lab.probe(PROFILE, usable_window=3)
    assert result.ok, result.failure
    assert result.stages[0].detail["address"] == ADDRESSES["host"]
    assert lab.host_server.stats.activated == 1
    assert lab.host_connections == 1


def test_sync_is_idempotent_and_cheap(lab: NetnsLab, monkeypatch: pytest.MonkeyPatch) -> None:
    import harness.lab.netns as mod

    calls: list[str] = []
    for name in ("apply_firewall_ports", "set_mtu", "write_hosts"):
        real = getattr(mod, name)
        monkeypatch.setattr(mod, name, lambda *a, _n=name, _r=real, **k: (calls.append(_n),
                                                                          _r(*a, **k))[1])
    server = lab.host_server
    t0 = time.perf_counter()
    for _ in range(20):
        lab.sync()
    per_sync = (time.perf_counter() - t0) / 20
    assert calls == [] and lab.host_server is server
    assert per_sync < 0.01, f"an unchanged sync took {per_sync * 1000:.2f} ms"
    inject(lab.host, "add_block_rule", {"port": 3389, "mode": "drop"})
    lab.sync()
    lab.sync()
    assert calls == ["apply_firewall_ports"]


def test_firewall_drop_times_out_and_removing_the_rule_restores(lab: NetnsLab) -> None:
    inject(lab.host, "add_block_rule", {"port": 3389, "mode": "drop"})
    t0 = time.monotonic()
    result = probe(lab)
    assert outcome(result) == ("tcp", "timeout")
    assert 1.9 < time.monotonic() - t0 < 5
    assert result.codes["mstsc-win11"]["disconnect"] == "0x204"
    # An admin removes the rule on the host: the model changes, sync() lifts the kernel's drop.
    run_source('Remove-NetFirewallRule -DisplayName "Block RDP (TCP 3389)"', lab.host, "fix.ps1")
    assert lab.host.firewall_verdict(3389) == "allow"
    assert outcome(probe(lab)) == "usable"


def test_firewall_reject_is_refused_at_once(lab: NetnsLab) -> None:
    inject(lab.host, "add_block_rule", {"port": 3389, "mode": "reject"})
    t0 = time.monotonic()
    assert outcome(probe(lab)) == ("tcp", "refused")
    assert time.monotonic() - t0 < 1
    lab.host.firewall.clear_upstream(3389)  # the device in front of the host stops rejecting
    assert outcome(probe(lab)) == "usable"


def test_termservice_stopped_gets_the_kernels_reset(lab: NetnsLab) -> None:
    inject(lab.host, "stop_service", {"name": "TermService"})
    assert outcome(probe(lab)) == ("tcp", "refused")
    assert lab.host_server is None
    run_source("Start-Service TermService", lab.host, "fix.ps1")
    assert outcome(probe(lab)) == "usable"
    assert lab.host_server is not None


def test_mtu_blackhole_stalls_and_only_a_low_enough_client_mtu_repairs(lab: NetnsLab) -> None:
    lab.apply_network_fault("mtu_blackhole", {"mtu": 1300})
    result = probe(lab)
    # Measured: the server's TLS flight (certificate) needs a segment above 1300 bytes, so the
    # handshake itself stalls: tls/timeout. Through a 1400 bottleneck tls passes and the
    # post-activation burst stalls instead.
    assert not result.ok
    assert result.failure is not None and result.failure.stage in ("tls", "usable")
    assert result.failure.event in ("timeout", "stalled")

    # The VPN interface the remediation script expects, carrying the route, then the script.
    inject(lab.client, "add_nic", {"alias": "VPN", "mtu": 1500, "route": True})
    rem = run_remediation(LOWER_MTU, lab.nodes)
    assert rem.results[0].last_exit_code == 0, rem.results[0].output
    assert lab.client.client_settings().mtu == 1400
    result = probe(lab)
    assert link_mtu(lab, "client") == 1400
    # The kernel's answer: a 1400 client MTU (MSS 1360) still overflows a 1300 bottleneck.
    assert not result.ok and outcome(result) == ("tls", "timeout")

    inject(lab.client, "set_mtu", {"alias": "VPN", "mtu": 1300})
    assert outcome(probe(lab)) == "usable"
    assert link_mtu(lab, "client") == 1300


def test_mss_clamp_on_the_router_repairs_the_blackhole(lab: NetnsLab) -> None:
    lab.apply_network_fault("mtu_blackhole", {"mtu": 1300})
    assert not probe(lab).ok
    lab.apply_network_fault("mss_clamp", {})
    assert outcome(probe(lab)) == "usable"
    lab.clear_network_fault("mss_clamp")
    lab.clear_network_fault("mtu_blackhole")
    assert lab.network_faults == {}
    assert outcome(probe(lab)) == "usable"


def test_restore_forgets_a_learned_path_mtu(lab: NetnsLab) -> None:
    """A path MTU the kernel learned is no snapshot's state: restoring forgets it, even when the
    faults on the path are unchanged (the restore then re-applies nothing)."""
    from harness.net.mtu import pmtu_table
    from harness.net.nft import drop_table
    from tests.helpers import learned_path_mtus

    lab.apply_network_fault("mtu_blackhole", {"mtu": 1300})
    broken = lab.snapshot("broken")
    assert not probe(lab).ok
    # ICMP let through behind the model's back: the host learns the bottleneck, and the TLS
    # flight then fits it
    drop_table(lab.net, lab.net.router, pmtu_table(lab.net))
    assert outcome(probe(lab)) == "usable"
    assert "host->client" in learned_path_mtus(lab.net)
    lab.restore(broken)
    assert learned_path_mtus(lab.net) == {}


def test_netem_delay_is_on_the_path(lab: NetnsLab) -> None:
    lab.apply_network_fault("netem", {"delay_ms": 40})
    result = probe(lab)
    assert result.ok, result.failure
    assert result.stages[0].seconds >= 0.07  # SYN and SYN-ACK each wait 40 ms in the router
    lab.clear_network_fault("netem")
    assert probe(lab).stages[0].seconds < 0.03


def test_stale_dns_fails_at_tcp(lab: NetnsLab) -> None:
    inject(lab.client, "set_hosts_entry", {"name": lab.host.fqdn, "address": STALE})
    result = probe(lab, short(tcp=5))
    assert result.failure is not None and result.failure.stage == "tcp"
    assert result.failure.event in ("timeout", "unreachable")
    assert result.failure.detail["address"] == STALE
    # The real client's resolver (the namespace's hosts file) sees the same stale answer.
    hosts = (ETC_NETNS / lab.net.ns("client") / "hosts").read_text()
    assert f"{STALE}\t{lab.host.fqdn}" in hosts


def test_unknown_network_fault_is_not_emulated(lab: NetnsLab) -> None:
    with pytest.raises(NotEmulated):
        lab.apply_network_fault("solar_flare", {})


# -- through the RD Gateway (labs/default.yaml) ---------------------------------------------------

GW_PROFILE_TIMEOUTS = {"gateway_tcp": 2, "gateway_tls": 3, "gateway_http": 4, "gateway_tunnel": 4}


def gw_probe(lab: NetnsLab) -> ProbeResult:
    return probe(lab, short(**GW_PROFILE_TIMEOUTS))


def test_gateway_lab_goes_through_the_gateway_namespace(gw_lab: NetnsLab) -> None:
    lab = gw_lab
    assert lab.net.address("gateway") == ADDRESSES["gateway"]
    assert lab.gateway_server is not None
    result = gw_probe(lab)
    assert result.ok, result.failure
    assert [s.stage for s in result.stages][:5] == ["gateway_tcp", "gateway_tls", "gateway_http",
                                                     "gateway_tunnel", "tcp"]
    assert lab.host_server is not None and lab.host_server.stats.activated == 1
    # the gateway reaches the host from its own namespace
    sock = lab.connect_from("gateway", ADDRESSES["host"], 3389, 2)
    try:
        assert sock.getsockname()[0] == ADDRESSES["gateway"]
    finally:
        sock.close()


def test_gateway_firewall_and_service_through_the_kernel(gw_lab: NetnsLab) -> None:
    lab = gw_lab
    inject(lab.gateway, "add_block_rule", {"port": 443, "mode": "drop"})
    assert outcome(gw_probe(lab)) == ("gateway_tcp", "timeout")
    run_source('Remove-NetFirewallRule -DisplayName "Block RDP (TCP 443)"', lab.gateway, "fix.ps1")
    inject(lab.gateway, "add_block_rule", {"port": 443, "mode": "reject"})
    assert outcome(gw_probe(lab)) == ("gateway_tcp", "refused")
    lab.gateway.firewall.clear_upstream(443)
    inject(lab.gateway, "stop_service", {"name": "TSGateway"})
    assert outcome(gw_probe(lab)) == ("gateway_tcp", "refused")
    assert lab.gateway_server is None
    run_source("Start-Service TSGateway", lab.gateway, "fix.ps1")
    assert outcome(gw_probe(lab)) == "usable"


def test_host_faults_act_behind_the_gateway(gw_lab: NetnsLab) -> None:
    lab = gw_lab
    inject(lab.host, "add_block_rule", {"port": 3389, "mode": "reject"})
    result = gw_probe(lab)
    assert outcome(result) == ("gateway_tunnel", "tsgu:E_PROXY_TS_CONNECTFAILED")
    lab.host.firewall.clear_upstream(3389)
    inject(lab.host, "add_block_rule", {"port": 3389, "mode": "drop"})
    result = gw_probe(lab)  # the gateway's SYNs go unanswered; the client gives up first
    assert result.failure is not None and result.failure.stage == "gateway_tunnel"
    run_source('Remove-NetFirewallRule -DisplayName "Block RDP (TCP 3389)"', lab.host, "fix.ps1")
    assert outcome(gw_probe(lab)) == "usable"


def test_gateway_lab_blackhole_is_on_the_vpn_leg_only(gw_lab: NetnsLab) -> None:
    lab = gw_lab
    lab.apply_network_fault("mtu_blackhole", {"mtu": 1300})
    result = gw_probe(lab)
    # Measured: the gateway's TLS flight (its certificate) stalls first.
    assert result.failure is not None and result.failure.stage == "gateway_tls"
    # The gateway and the host share a site: full MTU between them, so the client-side fix
    # (an MTU within the bottleneck) is enough.
    inject(lab.client, "add_nic", {"alias": "VPN", "mtu": 1300, "route": True})
    assert outcome(gw_probe(lab)) == "usable"
    inject(lab.client, "set_mtu", {"alias": "VPN", "mtu": 1500})
    assert outcome(gw_probe(lab)) != "usable"
    lab.apply_network_fault("mss_clamp", {})
    assert outcome(gw_probe(lab)) == "usable"


# -- cleanup -------------------------------------------------------------------------------------


def test_close_leaves_nothing_and_is_safe_twice(state_dir: Path) -> None:
    handle = LabHandle(load_lab("default"), "netns")
    try:
        with handle as lab:
            assert isinstance(lab, NetnsLab) and lab.gateway_server is not None
            lab_id = lab.net.lab_id
            lab.apply_network_fault("mtu_blackhole", {"mtu": 1300})
            inject(lab.host, "add_block_rule", {"port": 3389, "mode": "reject"})
            lab.sync()
            assert lab.probe(short()).failure is not None
            assert leftovers(lab_id)
            assert server_threads()
    finally:
        handle.lab.close()
    handle.lab.close()
    assert leftovers(lab_id) == []
    assert not handle.workdir.exists()
    assert list(state_dir.glob("*.json")) == []
    deadline = time.monotonic() + 5
    while server_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server_threads() == []
    with pytest.raises(RuntimeError):
        handle.lab.connect(ADDRESSES["host"], 3389, 1)


def test_a_callers_workdir_is_left_to_the_caller(tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    handle = LabHandle(load_lab("direct"), "netns", workdir=workdir)
    try:
        with handle as lab:
            assert outcome(probe(lab)) == "usable"
    finally:
        handle.lab.close()
    assert workdir.is_dir() and any(workdir.iterdir())


CHILD = textwrap.dedent("""
    import sys, time
    from harness.lab.definition import load_lab
    from harness.lab.factory import LabHandle
    handle = LabHandle(load_lab("default"), "netns")
    with handle as lab:
        print(lab.net.lab_id, handle.workdir, flush=True)
        time.sleep(60)
""")


def _child_lab(state_dir: Path) -> tuple[subprocess.Popen[str], str, Path]:
    env = {**os.environ, STATE_ENV: str(state_dir), "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", CHILD], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 20)
    if not ready:
        proc.kill()
        proc.wait(timeout=5)
        pytest.fail("the child lab did not start within 20 s")
    lab_id, _, workdir = proc.stdout.readline().strip().partition(" ")
    return proc, lab_id, Path(workdir)


def test_sigkilled_lab_is_removed_by_down_all(state_dir: Path) -> None:
    proc, lab_id, workdir = _child_lab(state_dir)
    try:
        assert lab_id and leftovers(lab_id) and workdir.is_dir()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert leftovers(lab_id), "a SIGKILLed lab cannot clean up after itself"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
        removed = down_all(state_dir)
    assert any(lab_id in r for r in removed)
    assert leftovers(lab_id) == []
    assert not workdir.exists()  # LabHandle's scratch directory, recorded by the lab
    assert list(state_dir.glob("*.json")) == []


def test_sigterm_cleans_up_by_itself(state_dir: Path) -> None:
    proc, lab_id, workdir = _child_lab(state_dir)
    try:
        assert leftovers(lab_id)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 128 + signal.SIGTERM
        assert leftovers(lab_id) == []
        assert not workdir.exists()
        assert list(state_dir.glob("*.json")) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
        down_all(state_dir)


# -- the real client, inside the client namespace ------------------------------------------------

TUNE = ["/tune:FreeRDP_TcpConnectTimeout:3000"]  # 2.11's /timeout is the ACK timeout, not this


def run_client(lab: NetnsLab, display: str, host: str = ADDRESSES["host"], timeout: float = 8,
             extra: list[str] | None = None) -> int:
    from harness.freerdp import run_xfreerdp

    user, password = lab.spec.user
    run = run_xfreerdp(host, 3389, display=display, username=user, password=password,
                       domain=lab.spec.domain, cert="ignore", timeout=timeout, extra=extra,
                       prefix=lab.exec_prefix("client"))
    assert run.seconds < timeout + 5
    return run.exit_code


@pytest.mark.freerdp
def test_xfreerdp_firewall_codes(lab: NetnsLab, xfreerdp: str, xdisplay: str) -> None:
    host, port, prefix, name = lab.xfreerdp_endpoint()
    assert (host, port, prefix, name) == (lab.host.fqdn, 3389, lab.exec_prefix("client"),
                                          lab.host.fqdn)
    assert run_client(lab, xdisplay) == 0
    assert run_client(lab, xdisplay, host=host) == 0  # the namespace's hosts file
    inject(lab.host, "add_block_rule", {"port": 3389, "mode": "drop"})
    lab.sync()
    assert run_client(lab, xdisplay, extra=TUNE) == 141  # CONNECT_FAILED after the 3 s connect
    run_source('Remove-NetFirewallRule -DisplayName "Block RDP (TCP 3389)"', lab.host, "fix.ps1")
    inject(lab.host, "add_block_rule", {"port": 3389, "mode": "reject"})
    lab.sync()
    assert run_client(lab, xdisplay, extra=TUNE) == 147  # CONNECT_TRANSPORT_FAILED at first write
    lab.host.firewall.clear_upstream(3389)
    lab.sync()
    assert run_client(lab, xdisplay) == 0


@pytest.mark.freerdp
def test_xfreerdp_mtu_blackhole(lab: NetnsLab, xfreerdp: str, xdisplay: str) -> None:
    lab.apply_network_fault("mtu_blackhole", {"mtu": 1300})
    assert run_client(lab, xdisplay) == 124  # stalls in TLS; 2.11 has no timeout there
    inject(lab.client, "add_nic", {"alias": "VPN", "mtu": 1500, "route": True})
    run_remediation(LOWER_MTU, lab.nodes)
    lab.sync()
    assert run_client(lab, xdisplay) == 124  # 1400 > 1300: the kernel says still broken
    inject(lab.client, "set_mtu", {"alias": "VPN", "mtu": 1300})
    lab.sync()
    assert run_client(lab, xdisplay) == 0


@pytest.mark.freerdp
def test_xfreerdp_through_the_gateway(gw_lab: NetnsLab, xfreerdp: str, xdisplay: str) -> None:
    lab = gw_lab
    gateway = lab.xfreerdp_gateway()
    assert gateway == (lab.gateway.fqdn, 443, lab.gateway.fqdn)
    user, password = lab.spec.user
    via = [f"/g:{gateway[0]}:{gateway[1]}", f"/gu:{user}", f"/gp:{password}",
           f"/gd:{lab.spec.domain}", "/gt:http"]
    assert run_client(lab, xdisplay, host=lab.host.fqdn, extra=via) == 0
    assert lab.host_server is not None and lab.host_server.stats.activated == 1
    inject(lab.gateway, "add_block_rule", {"port": 443, "mode": "drop"})
    lab.sync()
    assert run_client(lab, xdisplay, host=lab.host.fqdn, extra=via + TUNE) == 141
    run_source('Remove-NetFirewallRule -DisplayName "Block RDP (TCP 443)"', lab.gateway, "fix.ps1")
    inject(lab.gateway, "add_block_rule", {"port": 443, "mode": "reject"})
    lab.sync()
    # 2.11 reports the gateway's RST as TLS_CONNECT_FAILED (rdg_tls_connect), not 147
    assert run_client(lab, xdisplay, host=lab.host.fqdn, extra=via + TUNE) == 143
    lab.gateway.firewall.clear_upstream(443)
    lab.apply_network_fault("mtu_blackhole", {"mtu": 1300})
    lab.sync()
    assert run_client(lab, xdisplay, host=lab.host.fqdn, extra=via) == 124
    inject(lab.client, "add_nic", {"alias": "VPN", "mtu": 1300, "route": True})
    lab.sync()
    assert run_client(lab, xdisplay, host=lab.host.fqdn, extra=via) == 0


@pytest.mark.freerdp
def test_xfreerdp_stale_dns(lab: NetnsLab, xfreerdp: str, xdisplay: str) -> None:
    inject(lab.client, "set_hosts_entry", {"name": lab.host.fqdn, "address": STALE})
    lab.sync()
    assert run_client(lab, xdisplay, host=lab.host.fqdn, extra=TUNE) == 141


def test_connect_is_a_real_client_namespace_socket(lab: NetnsLab) -> None:
    sock = lab.connect(ADDRESSES["host"], 3389, 2)
    try:
        assert sock.getsockname()[0] == ADDRESSES["client"]
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        sock.close()
    with pytest.raises(ConnectionRefusedError):
        lab.connect(ADDRESSES["host"], 3390, 2)
