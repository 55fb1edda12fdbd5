"""Path-MTU faults and their fixes: a black hole in the router, a lower endpoint MTU, MSS clamping.

The black hole: packets above `mtu` cannot cross the router, and the ICMP "fragmentation
needed" (type 3 code 4; IPv6 packet-too-big) that would tell the sender is dropped in the
router's forward *and* output hooks (the router generates them itself), so PMTU discovery fails
and large DF segments vanish while the handshake and small messages pass.

The bottleneck models the inner VPN link: every route in the router gets `mtu <mtu>`, so
forwarding in either direction needs ICMP; interfaces stay at 1500. With drop_icmp=False PMTU
discovery repairs the path (the lab's check that the fault is the ICMP filter, not the MTU
alone). A lower MTU on the router's veth would not do: a veth accepts GSO packets of any size,
so host→client segments would pass it and no black hole would form in that direction.
Applying and removing flush the route caches of every lab namespace, so a PMTU learned
earlier neither hides the fault nor outlives it.

Fixes: set_mtu(lab, "client", m) — the client's MSS (m − 40) caps what the host sends and its
own MTU caps what it sends, so m ≤ the black-hole MTU repairs both directions and anything above
it does not; apply_mss_clamp(lab) — the router rewrites the MSS of SYNs to its route MTU.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .cmd import ip_batch
from .nft import chain, drop_table, load_table
from .nsenter import write_sysctl

if TYPE_CHECKING:
    from .lab import NetLab

_ICMP_TOO_BIG = (
    "icmp type destination-unreachable icmp code 4 drop",
    "icmpv6 type packet-too-big drop",
)


LEG_TABLE = 213  # routing table (router namespace) for traffic coming from a bottleneck leg
LEG_PREF = 1000  # policy rule priorities LEG_PREF + k, one per leg


def pmtu_table(lab: NetLab) -> str:
    """nft table (inet, router) dropping ICMP fragmentation-needed."""
    return f"rdplab_{lab.lab_id}_pmtu"


def mss_table(lab: NetLab) -> str:
    """nft table (inet, router) clamping the TCP MSS."""
    return f"rdplab_{lab.lab_id}_mss"


def _route_lines(
    lab: NetLab, mtu: int | None, *, only: Sequence[str] | None = None, table: int | None = None
) -> list[str]:
    suffix = f" mtu {mtu}" if mtu else ""
    suffix += f" table {table}" if table is not None else ""
    return [
        f"route replace {i.subnet} dev {i.name} proto kernel scope link src {i.address}{suffix}"
        for i in lab.topology.node_ifaces(lab.router)
        if only is None or i.peer in only
    ]


def apply_mtu_blackhole(
    lab: NetLab,
    *,
    mtu: int = 1300,
    drop_icmp: bool = True,
    legs: Sequence[str] | None = None,
) -> None:
    """Give the router a `mtu` bottleneck and (drop_icmp) hide it from PMTU discovery.

    legs names the endpoints behind the bottleneck (e.g. ("client",): a VPN between the client
    and a site holding the gateway and the host); traffic between the other endpoints keeps the
    full MTU. Towards a leg the main routes carry the MTU; from a leg a policy rule (iif) sends
    forwarding through a table whose routes carry it, so both directions and MSS clamping by
    route MTU behave as with every route limited. None: every route (the default)."""
    if not 576 <= mtu <= 9000:
        raise ValueError(f"MTU {mtu} outside 576..9000")
    r = lab.router
    ends = lab.topology.endpoints()
    if legs is not None:
        legs = list(legs)
        unknown = [n for n in legs if n not in ends]
        if unknown or not legs:
            raise ValueError(f"legs must name some of the endpoints {ends}, not {unknown}")
    # The ICMP filter goes in before the bottleneck: a segment in flight between the two steps
    # (an orphaned socket of an earlier connection retransmitting its large segments, say)
    # would otherwise get its "fragmentation needed" through, and the sender would keep the
    # learned path MTU for ten minutes, repairing the path the fault is meant to break.
    if drop_icmp:
        chains = chain("forward", _ICMP_TOO_BIG) + chain("output", _ICMP_TOO_BIG)
        load_table(lab, r, pmtu_table(lab), chains)
    else:
        drop_table(lab, r, pmtu_table(lab))
    _clear_legs(lab)
    if legs is None or set(legs) == set(ends):
        lab.ip(r, *_route_lines(lab, mtu))
    else:
        lab.ip(r, *_route_lines(lab, None))
        lines = _route_lines(lab, mtu, only=legs)
        lines += _route_lines(lab, mtu, only=[n for n in ends if n not in legs], table=LEG_TABLE)
        lines += [
            f"rule add iif {lab.iface(r, n)} lookup {LEG_TABLE} pref {LEG_PREF + k}"
            for k, n in enumerate(legs)
        ]
        lab.ip(r, *lines)
    lab.faults["mtu_blackhole"] = {"mtu": mtu, "drop_icmp": drop_icmp, "legs": legs}
    flush_route_caches(lab)


def remove_mtu_blackhole(lab: NetLab) -> None:
    """Undo apply_mtu_blackhole: original MTUs/routes, ICMP allowed again."""
    r = lab.router
    if lab.faults.pop("mtu_blackhole", None) is not None:
        _clear_legs(lab)
        lab.ip(r, *_route_lines(lab, None))
    drop_table(lab, r, pmtu_table(lab))
    flush_route_caches(lab)


def _clear_legs(lab: NetLab) -> None:
    """Remove the per-leg policy rules and their route table (no error when absent)."""
    lines = [f"rule del pref {LEG_PREF + k}" for k in range(len(lab.topology.endpoints()))]
    lines.append(f"route flush table {LEG_TABLE}")
    ip_batch(lines, ns=lab.ns(lab.router), force=True, check=False)


def flush_route_caches(lab: NetLab) -> None:
    """Forget learned path MTUs in every lab namespace (`ip route flush cache`)."""
    for node in lab.topology.nodes:
        write_sysctl(lab.ns(node), {"net.ipv4.route.flush": 1})


def set_mtu(lab: NetLab, node: str, mtu: int, peer: str | None = None) -> None:
    """Set the MTU of node's interface towards peer (default: the router), e.g. the client NIC
    MTU remediation; set it back to Topology's value to undo."""
    if not 576 <= mtu <= 9000:
        raise ValueError(f"MTU {mtu} outside 576..9000")
    lab.ip(node, f"link set {lab.iface(node, peer)} mtu {mtu}")


def apply_mss_clamp(lab: NetLab, *, node: str | None = None) -> None:
    """Clamp the MSS of forwarded SYNs to the route MTU (`set rt mtu`) in the router."""
    body = chain("forward", ["tcp flags syn tcp option maxseg size set rt mtu"],
                 priority="mangle")
    load_table(lab, node or lab.router, mss_table(lab), body)


def remove_mss_clamp(lab: NetLab, *, node: str | None = None) -> None:
    """Remove the MSS clamping table."""
    drop_table(lab, node or lab.router, mss_table(lab))
