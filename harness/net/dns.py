"""Per-namespace hosts files, the stale-DNS fault, and in-process name resolution.

`ip netns exec <ns>` bind-mounts /etc/netns/<ns>/hosts over /etc/hosts, so real clients (xfreerdp)
started with NetLab.popen/exec_argv resolve through the lab's file. In-process code (the probe
connecting through lab.socket) cannot use getaddrinfo for that, so it calls
`resolve(lab, node, name)`, which reads the same file. Every node's file starts with
localhost and, for each lab node, `<address> <node> <node>.rdplab.test`.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from .nsenter import ETC_NETNS
from .topology import LAB_RANGE, Topology

if TYPE_CHECKING:
    from .lab import NetLab

LAB_DOMAIN = "rdplab.test"
_LOCAL_NAMES = {"localhost", "ip6-localhost", "ip6-loopback"}
STALE_ADDRESS = "10.213.2.99"  # in the host subnet, never assigned: connects fail, as after a move


def hosts_path(lab: NetLab, node: str) -> Path:
    """/etc/netns/<node's namespace>/hosts."""
    return ETC_NETNS / lab.ns(node) / "hosts"


def lab_hosts(topo: Topology) -> dict[str, str]:
    """name → address for every node (`node` and `node.rdplab.test`)."""
    entries: dict[str, str] = {}
    for node in topo.nodes:
        entries[node] = topo.address(node)
        entries[f"{node}.{LAB_DOMAIN}"] = topo.address(node)
    return entries


def format_hosts(entries: Mapping[str, str]) -> str:
    """hosts(5) text: localhost lines, then one line per name."""
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    lines += [f"{addr}\t{name}" for name, addr in entries.items()]
    return "\n".join(lines) + "\n"


def read_hosts(path: Path) -> dict[str, str]:
    """name (lower case) → first address for it in a hosts(5) file."""
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        fields = line.split("#", 1)[0].split()
        for name in fields[1:]:
            out.setdefault(name.lower(), fields[0])
    return out


def write_hosts(lab: NetLab, node: str, entries: Mapping[str, str]) -> Path:
    """Replace node's hosts file with localhost plus entries (recorded in the state file)."""
    for addr in entries.values():
        ipaddress.ip_address(addr)
    path = hosts_path(lab, node)
    lab.record({"kind": "etc_netns", "path": str(path.parent)})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(format_hosts(entries))
    return path


def _lab_entries(lab: NetLab, node: str) -> dict[str, str]:
    table = read_hosts(hosts_path(lab, node))
    return {k: v for k, v in table.items() if k not in _LOCAL_NAMES}


def resolve(lab: NetLab, node: str, hostname: str) -> str:
    """The address `hostname` resolves to for programs in node: IP literals as they are, else
    the lab's hosts file for node. Raises socket.gaierror (EAI_NONAME) like getaddrinfo."""
    try:
        return str(ipaddress.ip_address(hostname))
    except ValueError:
        pass
    try:
        table = read_hosts(hosts_path(lab, node))
    except FileNotFoundError:
        table = {}
    addr = table.get(hostname.lower().rstrip("."))
    if addr is None:
        raise socket.gaierror(socket.EAI_NONAME, f"{hostname}: not in {lab.ns(node)} hosts")
    return addr


def apply_stale_dns(
    lab: NetLab, hostname: str, stale_address: str = STALE_ADDRESS, *, node: str = "client"
) -> None:
    """Make `hostname` resolve, for node, to an address nobody holds (a stale record)."""
    if ipaddress.ip_address(stale_address) not in LAB_RANGE:
        raise ValueError(f"stale address {stale_address} is outside the lab range {LAB_RANGE}")
    table = _lab_entries(lab, node)
    lab.faults.setdefault("stale_dns", {})[(node, hostname.lower())] = table.get(hostname.lower())
    table[hostname.lower()] = stale_address
    write_hosts(lab, node, table)


def remove_stale_dns(lab: NetLab, hostname: str, *, node: str = "client") -> None:
    """Restore the record apply_stale_dns replaced (or drop it when there was none)."""
    saved: dict[tuple[str, str], str | None] = lab.faults.get("stale_dns", {})
    key = (node, hostname.lower())
    if key not in saved:
        return
    previous = saved.pop(key)
    table = _lab_entries(lab, node)
    if previous is None:
        table.pop(key[1], None)
    else:
        table[key[1]] = previous
    write_hosts(lab, node, table)
