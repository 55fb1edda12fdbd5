"""Kernel network labs (harness/net): namespaces, routing, faults through the real kernel,
state files and cleanup. Needs root (or working `ip netns add`); skipped with the reason when
namespaces cannot be created. Every wait is bounded and every lab is destroyed in finally."""

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

from harness.net import (
    Netem,
    NetLab,
    Topology,
    apply_firewall,
    apply_mss_clamp,
    apply_mtu_blackhole,
    apply_netem,
    apply_stale_dns,
    down_all,
    netns_available,
    ns_socket,
    remove_firewall,
    remove_mtu_blackhole,
    remove_netem,
    remove_stale_dns,
    resolve,
    set_mtu,
)
from harness.net.capability import missing_tools
from harness.net.namespaces import list_netns
from harness.net.nsenter import ETC_NETNS, read_sysctl
from harness.net.state import LabState
from tests.helpers import learned_path_mtus

REPO = Path(__file__).resolve().parents[2]
OK, WHY = netns_available()
netns = pytest.mark.netns
needs_netns = pytest.mark.skipif(not OK, reason=f"network namespaces unavailable: {WHY}")
needs_nft = pytest.mark.skipif("nft" in missing_tools(), reason="nftables (nft) not installed")
PORT = 3389
BIG = 64 * 1024
STALL = 1.5  # seconds a black-holed transfer is given before we call it stalled


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[NetLab]:
    lab = NetLab(state_dir=tmp_path / "state")
    try:
        with lab:
            yield lab
    finally:
        lab.destroy()


def serve(lab: NetLab, payload: bytes, port: int = PORT) -> threading.Thread:
    """Listen in the host namespace; send payload to the first client, then close."""
    srv = lab.socket("host")
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", port))
    srv.listen()
    srv.settimeout(5)

    def run() -> None:
        try:
            conn, _ = srv.accept()
            with conn:
                conn.settimeout(5)
                conn.sendall(payload)
        except OSError:
            pass
        finally:
            srv.close()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def fetch(lab: NetLab, size: int, timeout: float, port: int = PORT) -> int:
    """Connect from the client and read until size bytes, EOF or timeout; return bytes read."""
    cli = lab.socket("client")
    cli.settimeout(timeout)
    got = 0
    deadline = time.monotonic() + timeout
    try:
        cli.connect((lab.address("host"), port))
        while got < size and time.monotonic() < deadline:
            cli.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = cli.recv(65536)
            except TimeoutError:
                break
            if not data:
                break
            got += len(data)
        return got
    finally:
        cli.close()


def transfer(lab: NetLab, size: int, timeout: float = STALL) -> int:
    t = serve(lab, b"x" * size)
    try:
        return fetch(lab, size, timeout)
    finally:
        t.join(timeout=6)


def connect_time(lab: NetLab, port: int, timeout: float = 2.0) -> float:
    srv = lab.socket("host")
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", port))
    srv.listen()
    cli = lab.socket("client")
    cli.settimeout(timeout)
    try:
        t0 = time.monotonic()
        cli.connect((lab.address("host"), port))
        return time.monotonic() - t0
    finally:
        cli.close()
        srv.close()


def leftovers(lab_id: str) -> list[str]:
    found = list_netns(f"rdplab-{lab_id}-")
    if ETC_NETNS.exists():
        found += [str(p) for p in ETC_NETNS.glob(f"rdplab-{lab_id}-*")]
    return found


def root_snapshot() -> tuple[str, str]:
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True)
    routes = subprocess.run(["ip", "route", "show"], capture_output=True, text=True, check=True)
    names = "\n".join(line.split(":")[1].strip() for line in links.stdout.splitlines())
    return names, routes.stdout


# ---------------------------------------------------------------------------------- pure units


def test_topology_addresses_and_validation() -> None:
    topo = Topology.standard(gateway=True)
    assert topo.address("client") == "10.213.1.2"
    assert topo.address("host") == "10.213.2.2"
    assert topo.address("gateway") == "10.213.3.2"
    assert topo.gateway_of("client") == "10.213.1.1"
    assert topo.gateway_of("router") is None
    assert topo.iface("router", "host").name == "to-host"
    with pytest.raises(ValueError, match="outside the lab range"):
        Topology.from_dict(
            {
                "nodes": ["client", "router"],
                "links": [{"a": "client", "b": "router", "subnet": "192.168.1.0/24"}],
            }
        )
    with pytest.raises(ValueError, match="joins the router"):
        Topology.from_dict(
            {"nodes": ["client", "router", "host"], "links": [{"a": "client", "b": "host"}]}
        )
    vpn = Topology.from_dict(
        {
            "nodes": ["client", "vpn", "host"],
            "router": "vpn",
            "links": [{"a": "client", "b": "vpn"}, {"a": "vpn", "b": "host", "mtu": 1400}],
        }
    )
    assert vpn.iface("host").mtu == 1400 and vpn.address("host") == "10.213.2.2"


# ------------------------------------------------------------------------------- kernel tests


@netns
@needs_netns
def test_create_destroy_leaves_nothing(tmp_path: Path) -> None:
    before = root_snapshot()
    lab = NetLab(Topology.standard(gateway=True), state_dir=tmp_path)
    try:
        lab.create()
        assert sorted(lab.names.values()) == list_netns(lab.prefix)
        state = LabState.load(lab.state.path)  # type: ignore[union-attr]
        kinds = {r["kind"] for r in state.resources}
        assert {"netns", "veth", "etc_netns"} <= kinds
        out = subprocess.run(
            ["ip", "-n", lab.ns("router"), "-o", "link"], capture_output=True, text=True, check=True
        ).stdout
        assert all(f"to-{n}" in out for n in ("client", "host", "gateway"))
        assert root_snapshot() == before  # nothing appeared in the root namespace
        for node in lab.topology.nodes:
            assert read_sysctl(lab.ns(node), "net.ipv4.ip_no_pmtu_disc") == "0"
        assert read_sysctl(lab.ns("router"), "net.ipv4.ip_forward") == "1"
        assert read_sysctl(lab.ns("client"), "net.ipv4.ip_forward") == "0"
    finally:
        removed = lab.destroy()
    assert any(r.startswith("netns ") for r in removed)
    assert leftovers(lab.lab_id) == []
    assert list(tmp_path.glob("*.json")) == []
    assert root_snapshot() == before
    assert lab.destroy() == []  # idempotent


@netns
@needs_netns
def test_tcp_through_router(lab: NetLab) -> None:
    srv = lab.socket("host")
    srv.bind(("0.0.0.0", PORT))
    srv.listen()
    srv.settimeout(3)
    cli = lab.socket("client")
    cli.settimeout(3)
    cli.connect((lab.address("host"), PORT))
    conn, peer = srv.accept()
    with conn, cli, srv:
        assert peer[0] == lab.address("client")  # routed, not NATed, not loopback
        cli.sendall(b"ping")
        assert conn.recv(4) == b"ping"
        conn.sendall(b"pong")
        assert cli.recv(4) == b"pong"
    # the listener lives only in the host namespace: the client's loopback has nothing there
    probe = lab.socket("client")
    probe.settimeout(1)
    with probe, pytest.raises(ConnectionRefusedError):
        probe.connect(("127.0.0.1", PORT))


@netns
@needs_netns
def test_ns_socket_restores_thread_namespace(lab: NetLab) -> None:
    before = os.stat("/proc/thread-self/ns/net").st_ino
    s = ns_socket(lab.ns("client"))
    s.close()
    assert os.stat("/proc/thread-self/ns/net").st_ino == before


@netns
@needs_netns
def test_exec_argv_runs_inside_namespace(lab: NetLab) -> None:
    out = subprocess.run(
        lab.exec_argv("client", ["ip", "-o", "-4", "addr"]),
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    ).stdout
    assert "10.213.1.2/24" in out and "10.213.2.2" not in out


@netns
@needs_netns
@needs_nft
def test_firewall_drop_times_out(lab: NetLab) -> None:
    apply_firewall(lab, port=PORT, action="drop")
    srv = lab.socket("host")
    srv.bind(("0.0.0.0", PORT))
    srv.listen()
    cli = lab.socket("client")
    cli.settimeout(1.0)
    with srv, cli, pytest.raises(TimeoutError):
        cli.connect((lab.address("host"), PORT))
    remove_firewall(lab)
    assert connect_time(lab, PORT) < 1.0


@netns
@needs_netns
@needs_nft
def test_firewall_reject_refuses_quickly(lab: NetLab) -> None:
    apply_firewall(lab, port=PORT, action="reject")
    srv = lab.socket("host")
    srv.bind(("0.0.0.0", PORT))
    srv.listen()
    cli = lab.socket("client")
    cli.settimeout(2.0)
    t0 = time.monotonic()
    with srv, cli, pytest.raises(ConnectionRefusedError):
        cli.connect((lab.address("host"), PORT))
    assert time.monotonic() - t0 < 0.5


@netns
@needs_netns
@needs_nft
def test_mtu_blackhole_stalls_big_transfer_only(lab: NetLab) -> None:
    assert transfer(lab, BIG) == BIG
    apply_mtu_blackhole(lab, mtu=1300)
    assert transfer(lab, 500) == 500  # handshake and small messages pass
    assert transfer(lab, BIG) < BIG  # full-size segments vanish: stalled
    remove_mtu_blackhole(lab)
    assert transfer(lab, BIG, timeout=5) == BIG


@netns
@needs_netns
@needs_nft
def test_mtu_blackhole_is_the_icmp_filter(lab: NetLab) -> None:
    """Same bottleneck with ICMP allowed: PMTU discovery repairs the path."""
    apply_mtu_blackhole(lab, mtu=1300, drop_icmp=False)
    assert transfer(lab, BIG, timeout=5) == BIG


@netns
@needs_netns
@needs_nft
def test_no_step_of_applying_the_blackhole_lets_a_path_mtu_be_learned(
        lab: NetLab, monkeypatch: pytest.MonkeyPatch) -> None:
    """Large segments cross the router after every step of applying and removing the fault (an
    earlier connection's orphaned socket retransmitting, in the matrix). A "fragmentation
    needed" that got through would be kept by the sender for ten minutes and repair the path:
    the ICMP filter must be in before the bottleneck, the caches flushed after it."""
    import harness.net.mtu as mtu

    ports = iter(range(PORT + 1, PORT + 200))

    def burst() -> None:
        port = next(ports)
        serve(lab, b"x" * BIG, port=port)
        fetch(lab, BIG, 0.3, port=port)

    def after(call):  # type: ignore[no-untyped-def]
        def wrapped(*args, **kwargs):  # type: ignore[no-untyped-def]
            result = call(*args, **kwargs)
            burst()
            return result
        return wrapped

    monkeypatch.setattr(NetLab, "ip", after(NetLab.ip))
    monkeypatch.setattr(NetLab, "nft", after(NetLab.nft))
    monkeypatch.setattr(mtu, "flush_route_caches", after(mtu.flush_route_caches))
    apply_mtu_blackhole(lab, mtu=1300)
    remove_mtu_blackhole(lab)
    apply_mtu_blackhole(lab, mtu=1300, legs=["client"])
    monkeypatch.undo()
    assert learned_path_mtus(lab) == {}
    assert transfer(lab, BIG) < BIG  # still a black hole


@netns
@needs_netns
@needs_nft
def test_client_mtu_remediation(lab: NetLab) -> None:
    apply_mtu_blackhole(lab, mtu=1300)
    set_mtu(lab, "client", 1400)  # MSS 1360: host segments of 1400 B still exceed the hole
    assert transfer(lab, BIG) < BIG
    set_mtu(lab, "client", 1300)  # MSS 1260: every segment fits, in both directions
    assert transfer(lab, BIG, timeout=5) == BIG


@netns
@needs_netns
@needs_nft
def test_client_mtu_1400_fixes_a_1400_hole(lab: NetLab) -> None:
    apply_mtu_blackhole(lab, mtu=1400)
    assert transfer(lab, BIG) < BIG
    set_mtu(lab, "client", 1400)
    assert transfer(lab, BIG, timeout=5) == BIG


@netns
@needs_netns
@needs_nft
def test_mss_clamp_remediation(lab: NetLab) -> None:
    apply_mtu_blackhole(lab, mtu=1300)
    assert transfer(lab, BIG) < BIG
    apply_mss_clamp(lab)
    assert transfer(lab, BIG, timeout=5) == BIG


@netns
@needs_netns
def test_netem_adds_delay(lab: NetLab) -> None:
    base = connect_time(lab, 3390)
    assert base < 0.05
    backend = apply_netem(lab, Netem(delay_ms=50))
    assert backend in ("tc", "tun")
    slow = connect_time(lab, 3391)
    assert 0.095 <= slow < 1.0  # SYN and SYN-ACK each cross the router once
    assert transfer(lab, BIG, timeout=5) == BIG  # delayed, not broken
    remove_netem(lab)
    assert connect_time(lab, 3392) < 0.05


@netns
@needs_netns
def test_netem_total_loss_blocks(lab: NetLab) -> None:
    apply_netem(lab, Netem(loss_pct=100))
    cli = lab.socket("client")
    cli.settimeout(0.5)
    srv = lab.socket("host")
    srv.bind(("0.0.0.0", PORT))
    srv.listen()
    with cli, srv, pytest.raises(TimeoutError):
        cli.connect((lab.address("host"), PORT))
    remove_netem(lab)
    assert connect_time(lab, 3393) < 0.5


@netns
@needs_netns
def test_stale_dns(lab: NetLab) -> None:
    assert resolve(lab, "client", "host.rdplab.test") == lab.address("host")
    apply_stale_dns(lab, "rdp.corp.test", "10.213.2.99")
    assert resolve(lab, "client", "rdp.corp.test") == "10.213.2.99"
    out = subprocess.run(
        lab.exec_argv("client", ["getent", "hosts", "rdp.corp.test"]),
        capture_output=True,
        text=True,
        timeout=10,
    ).stdout
    assert out.split()[:1] == ["10.213.2.99"]  # real processes see the lab's hosts file
    cli = lab.socket("client")
    cli.settimeout(1.0)
    with cli, pytest.raises(OSError):  # nobody holds the stale address
        cli.connect((resolve(lab, "client", "rdp.corp.test"), PORT))
    remove_stale_dns(lab, "rdp.corp.test")
    with pytest.raises(socket.gaierror):
        resolve(lab, "client", "rdp.corp.test")
    with pytest.raises(ValueError):
        apply_stale_dns(lab, "x.test", "192.0.2.1")  # outside the lab range


# ------------------------------------------------------------------ crashes, signals, cleanup

CHILD = textwrap.dedent(
    """
    import sys, time
    from harness.net import NetLab, Netem, apply_firewall, apply_netem
    lab = NetLab(state_dir=sys.argv[1])
    {body}
    """
)
KILLED_BODY = """
lab.create()
apply_firewall(lab, action="drop")
apply_netem(lab, Netem(delay_ms=10))
lab.popen("client", ["sleep", "60"])
lab.tempdir()
print("READY", lab.lab_id, flush=True)
time.sleep(60)
"""
WITH_BODY = """
with lab:
    apply_firewall(lab, action="reject")
    print("READY", lab.lab_id, flush=True)
    time.sleep(60)
"""


def start_child(body: str, state_dir: Path) -> tuple[subprocess.Popen[str], str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    code = CHILD.format(body=textwrap.indent(textwrap.dedent(body), ""))
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(state_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    ready, _, _ = select.select([proc.stdout], [], [], 20)
    line = proc.stdout.readline() if ready else ""  # type: ignore[union-attr]
    if not line.startswith("READY"):
        proc.kill()
        _, err = proc.communicate(timeout=10)
        pytest.fail(f"child did not get ready: {line!r} {err}")
    return proc, line.split()[1]


@netns
@needs_netns
@needs_nft
def test_sigkill_leaves_state_that_down_all_removes(tmp_path: Path) -> None:
    proc, lab_id = start_child(KILLED_BODY, tmp_path)
    try:
        state = LabState.load(tmp_path / f"{lab_id}.json")
        pids = [r["pid"] for r in state.resources if r["kind"] == "pid"]
        temps = [Path(r["path"]) for r in state.resources if r["kind"] == "tempdir"]
        assert pids and temps
        proc.kill()
        proc.wait(timeout=10)
        assert leftovers(lab_id)  # the kill left the lab behind
        assert all(Path(f"/proc/{p}").exists() for p in pids)
        removed = down_all(tmp_path)
        assert any(r.startswith("netns ") for r in removed)
        assert any(r.startswith("process ") for r in removed)
        assert leftovers(lab_id) == []
        assert not any(t.exists() for t in temps)
        assert not any(Path(f"/proc/{p}").exists() for p in pids)
        assert list(tmp_path.glob("*.json")) == []
        assert down_all(tmp_path) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        down_all(tmp_path)


@netns
@needs_netns
@needs_nft
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, None), (signal.SIGTERM, 143)])
def test_signal_in_the_middle_cleans_up(tmp_path: Path, signum: int, code: int | None) -> None:
    proc, lab_id = start_child(WITH_BODY, tmp_path)
    try:
        assert leftovers(lab_id)
        proc.send_signal(signum)
        rc = proc.wait(timeout=15)
        assert rc != 0
        if code is not None:
            assert rc == code
        assert leftovers(lab_id) == []
        assert list(tmp_path.glob("*.json")) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        down_all(tmp_path)


@netns
@needs_netns
def test_down_all_can_spare_live_labs(tmp_path: Path, lab: NetLab) -> None:
    other = NetLab(state_dir=lab.state_dir)
    try:
        other.create()
        assert down_all(lab.state_dir, include_live=False) == []
        assert list_netns(other.prefix)
        removed = down_all(lab.state_dir)
        assert f"netns {other.ns('client')}" in removed
        assert list_netns(other.prefix) == [] and list_netns(lab.prefix) == []
    finally:
        other.destroy()
