"""Creating and deleting a topology's namespaces and veth pairs with as few processes as we can.

One `ip -batch` in the root namespace adds the namespaces and creates each veth pair directly
inside its two namespaces (the root namespace never holds a lab interface); then one
`ip -n <ns> -batch` per namespace, all running at once, sets addresses, links and routes; the
per-namespace sysctls are written in-process through setns.
"""

from __future__ import annotations

import fcntl
import os
import socket
import struct
import subprocess
import time
from collections.abc import Iterable, Mapping

from .cmd import NetError, ip_batch
from .nsenter import NETNS_DIR, in_netns, netns_path, write_sysctl
from .topology import Topology

# Written in every lab namespace: PMTU discovery on (TCP sets DF), no TCP MTU probing (which
# would mask a black hole), no per-destination TCP metrics carried from one connection to the
# next (a lossy cell's RTT or ssthresh would shape the next cell's connections). Lab veths get
# no IPv6 addresses (addrgenmode none): IPv4 only.
NS_SYSCTLS: dict[str, str | int] = {
    "net.ipv4.ip_no_pmtu_disc": 0,
    "net.ipv4.tcp_mtu_probing": 0,
    "net.ipv4.tcp_no_metrics_save": 1,
}
# rp_filter off in the router: the netem stand-in re-injects packets through a TUN device.
ROUTER_SYSCTLS: dict[str, str | int] = {"net.ipv4.ip_forward": 1, "net.ipv4.conf.all.rp_filter": 0}


def root_batch(topo: Topology, names: Mapping[str, str]) -> list[str]:
    """`ip -batch` lines (root namespace) adding the namespaces and the veth pairs."""
    lines = [f"netns add {names[n]}" for n in topo.nodes]
    r = topo.router
    for k, i in enumerate(topo.node_ifaces(r)):
        end = topo.iface(i.peer, r)
        # Distinct ifindexes on the two ends: with equal ones (both 2 in fresh namespaces) the
        # kernel treats carrier changes as non-urgent and updates operstate up to 1 s late.
        lines.append(
            f"link add {i.name} netns {names[r]} index {10 + 2 * k} mtu {i.mtu} type veth"
            f" peer name {end.name} netns {names[end.node]} index {11 + 2 * k} mtu {end.mtu}"
        )
    return lines


def node_batch(topo: Topology, node: str) -> list[str]:
    """`ip -n <ns> -batch` lines configuring one node's loopback, interfaces and routes."""
    lines = ["link set lo up"]
    for i in topo.node_ifaces(node):
        lines += [
            f"link set {i.name} addrgenmode none",
            f"addr add {i.address}/{i.prefixlen} dev {i.name}",
            f"link set {i.name} up",
        ]
    gw = topo.gateway_of(node)
    if gw is not None:
        lines.append(f"route add default via {gw}")
    return lines


def create_topology(topo: Topology, names: Mapping[str, str]) -> None:
    """Create every namespace, veth pair, address and route of topo (names: node → netns)."""
    ip_batch(root_batch(topo, names))
    procs: list[tuple[str, subprocess.Popen[str]]] = []
    for node in topo.nodes:
        argv = ["ip", "-n", names[node], "-batch", "-"]
        p = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        procs.append((node, p))
    errors = []
    for node, p in procs:
        script = "".join(f"{line}\n" for line in node_batch(topo, node))
        _, err = p.communicate(script, timeout=10)
        if p.returncode != 0:
            errors.append(f"{node}: {err.strip()}")
    if errors:
        raise NetError("configuring lab namespaces failed: " + "; ".join(errors))
    for node in topo.nodes:
        values = dict(NS_SYSCTLS)
        if node == topo.router:
            values.update(ROUTER_SYSCTLS)
        write_sysctl(names[node], values)
    wait_links_running(topo, names)


SIOCGIFFLAGS = 0x8913
IFF_RUNNING = 0x40


def _not_running(ns: str, devs: list[str]) -> list[str]:
    with in_netns(ns), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        out = []
        for dev in devs:
            ifr = fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, struct.pack("16sH14x", dev.encode(), 0))
            if not struct.unpack_from("16xH", ifr)[0] & IFF_RUNNING:
                out.append(dev)
        return out


def wait_links_running(topo: Topology, names: Mapping[str, str], timeout: float = 2.0) -> None:
    """Wait until every lab interface is operationally up. The kernel activates the transmit
    queue of the veth end that was opened first only from its link-watch work, a moment after
    `ip` returns; a packet sent before that is dropped (seen as a lost first SYN)."""
    deadline = time.monotonic() + timeout
    waiting = {n: [i.name for i in topo.node_ifaces(n)] for n in topo.nodes}
    while True:
        waiting = {
            n: d for n, d in ((n, _not_running(names[n], d)) for n, d in waiting.items()) if d
        }
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise NetError(f"lab interfaces not up after {timeout} s: {waiting}")
        time.sleep(0.0005)


def netns_exists(ns: str) -> bool:
    """Whether `ip netns` knows ns."""
    return netns_path(ns).exists()


def list_netns(prefix: str = "") -> list[str]:
    """Named network namespaces (as in `ip netns list`) starting with prefix."""
    try:
        return sorted(n for n in os.listdir(NETNS_DIR) if n.startswith(prefix))
    except FileNotFoundError:
        return []


def delete_namespaces(names: Iterable[str]) -> list[str]:
    """Delete the named namespaces that exist (their veths, nft tables and qdiscs go with them);
    return the ones deleted."""
    present = [n for n in names if netns_exists(n)]
    if present:
        ip_batch([f"netns del {n}" for n in present], force=True, check=False)
    gone = [n for n in present if not netns_exists(n)]
    left = [n for n in present if n not in gone]
    if left:
        raise NetError(f"could not delete namespaces {left}")
    return gone
