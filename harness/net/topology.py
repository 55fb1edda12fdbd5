"""Lab network descriptions: nodes around one router, links with MTUs, derived addresses.

Every lab is a star: each link joins the router (the "vpn" hop) to one endpoint node. Link i
(1-based, in order) gets the subnet 10.213.i.0/24 unless it names one; the router end is .1 and
the endpoint end .2; endpoints route by default via the router. All addresses must lie in
LAB_RANGE (10.213.0.0/16), which is used only inside lab namespaces.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

LAB_RANGE = ipaddress.ip_network("10.213.0.0/16")
DEFAULT_MTU = 1500
_NODE_RE = re.compile(r"^[a-z][a-z0-9]{0,11}$")


@dataclass(frozen=True)
class Link:
    """A veth pair between the router and one endpoint node."""

    a: str
    b: str
    mtu: int = DEFAULT_MTU
    subnet: str | None = None


@dataclass(frozen=True)
class Iface:
    """One end of a link, as configured inside a node's namespace."""

    node: str
    name: str
    peer: str
    address: str
    prefixlen: int
    peer_address: str
    mtu: int
    subnet: str


@dataclass(frozen=True)
class Topology:
    """Nodes and links of one lab; `router` names the forwarding node."""

    nodes: tuple[str, ...]
    links: tuple[Link, ...]
    router: str = "router"
    ifaces: tuple[Iface, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ifaces", tuple(_plan(self)))

    @classmethod
    def standard(cls, *, gateway: bool = False, mtu: int = DEFAULT_MTU,
                 dc: bool = False) -> Topology:
        """client — router — host (10.213.1.0/24, 10.213.2.0/24), plus router — gateway
        (10.213.3.0/24) when gateway is set, router — dc (10.213.4.0/24) when dc is."""
        nodes = ["client", "router", "host"]
        links = [
            Link("client", "router", mtu, "10.213.1.0/24"),
            Link("router", "host", mtu, "10.213.2.0/24"),
        ]
        if gateway:
            nodes.append("gateway")
            links.append(Link("router", "gateway", mtu, "10.213.3.0/24"))
        if dc:
            nodes.append("dc")
            links.append(Link("router", "dc", mtu, "10.213.4.0/24"))
        return cls(tuple(nodes), tuple(links))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Topology:
        """From {"nodes": [...], "router": "vpn", "links": [{"a", "b", "mtu"?, "subnet"?}]}."""
        links = tuple(
            Link(str(d["a"]), str(d["b"]), int(d.get("mtu", DEFAULT_MTU)), d.get("subnet"))
            for d in data["links"]
        )
        return cls(tuple(str(n) for n in data["nodes"]), links, str(data.get("router", "router")))

    def endpoints(self) -> list[str]:
        """Every node except the router."""
        return [n for n in self.nodes if n != self.router]

    def node_ifaces(self, node: str) -> list[Iface]:
        """The interfaces inside node's namespace."""
        return [i for i in self.ifaces if i.node == node]

    def iface(self, node: str, peer: str | None = None) -> Iface:
        """node's interface towards peer (default: towards the router, or the router's first)."""
        for i in self.node_ifaces(node):
            if peer is None or i.peer == peer:
                return i
        raise KeyError(f"no interface on {node} towards {peer}")

    def address(self, node: str) -> str:
        """node's primary address: the one on its link to the router (router: its first link)."""
        return self.iface(node).address

    def gateway_of(self, node: str) -> str | None:
        """The default-route next hop for node (None for the router)."""
        return None if node == self.router else self.iface(node).peer_address


def iface_name(peer: str) -> str:
    """Interface names are `to-<peer>` inside each namespace (at most 15 characters)."""
    return f"to-{peer}"


def _plan(topo: Topology) -> list[Iface]:
    if len(set(topo.nodes)) != len(topo.nodes):
        raise ValueError("duplicate node names")
    for n in topo.nodes:
        if not _NODE_RE.match(n):
            raise ValueError(f"node name {n!r} must match {_NODE_RE.pattern}")
    if topo.router not in topo.nodes:
        raise ValueError(f"router {topo.router!r} is not a node")
    ifaces: list[Iface] = []
    seen: set[str] = set()
    used: list[ipaddress.IPv4Network] = []
    for idx, link in enumerate(topo.links, start=1):
        if topo.router not in (link.a, link.b) or link.a == link.b:
            raise ValueError(f"link {link.a}-{link.b}: every link joins the router to one endpoint")
        end = link.b if link.a == topo.router else link.a
        if end not in topo.nodes:
            raise ValueError(f"link {link.a}-{link.b}: unknown node {end!r}")
        if end in seen:
            raise ValueError(f"node {end!r} has more than one link")
        seen.add(end)
        if not 576 <= link.mtu <= 9000:
            raise ValueError(f"link {link.a}-{link.b}: MTU {link.mtu} outside 576..9000")
        net = ipaddress.ip_network(link.subnet or f"10.213.{idx}.0/24")
        if not isinstance(net, ipaddress.IPv4Network) or not net.subnet_of(LAB_RANGE):
            raise ValueError(f"subnet {net} is outside the lab range {LAB_RANGE}")
        if net.num_addresses < 4 or any(net.overlaps(u) for u in used):
            raise ValueError(f"subnet {net} is too small or overlaps another link")
        used.append(net)
        r_addr, e_addr = str(net.network_address + 1), str(net.network_address + 2)
        ifaces.append(
            Iface(
                topo.router, iface_name(end), end, r_addr, net.prefixlen, e_addr, link.mtu, str(net)
            )
        )
        ifaces.append(
            Iface(
                end,
                iface_name(topo.router),
                topo.router,
                e_addr,
                net.prefixlen,
                r_addr,
                link.mtu,
                str(net),
            )
        )
    missing = [n for n in topo.nodes if n not in seen and n != topo.router]
    if missing:
        raise ValueError(f"nodes without a link: {missing}")
    return ifaces
