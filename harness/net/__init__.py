"""Kernel network labs: namespaces, veth pairs, nftables and tc netem faults, state and cleanup.

Addresses come only from 10.213.0.0/16 and live only inside the lab's own namespaces; the root
namespace's interfaces, routes and firewall are never changed.
"""

from .capability import missing_tools, netns_available
from .cleanup import down_all, teardown
from .cmd import NetError
from .dns import apply_stale_dns, remove_stale_dns, resolve, write_hosts
from .firewall import apply_firewall, apply_firewall_ports, apply_outbound_blocks, remove_firewall
from .lab import NetLab
from .mtu import (
    apply_mss_clamp,
    apply_mtu_blackhole,
    flush_route_caches,
    remove_mss_clamp,
    remove_mtu_blackhole,
    set_mtu,
)
from .netem import Netem, apply_netem, remove_netem
from .nsenter import in_netns, ns_call, ns_exec_argv, ns_popen, ns_run, ns_socket
from .signals import Terminated
from .topology import LAB_RANGE, Link, Topology

__all__ = [
    "LAB_RANGE",
    "Link",
    "NetError",
    "NetLab",
    "Netem",
    "Terminated",
    "Topology",
    "apply_firewall",
    "apply_firewall_ports",
    "apply_mss_clamp",
    "apply_mtu_blackhole",
    "apply_netem",
    "apply_outbound_blocks",
    "apply_stale_dns",
    "down_all",
    "flush_route_caches",
    "in_netns",
    "missing_tools",
    "netns_available",
    "ns_call",
    "ns_exec_argv",
    "ns_popen",
    "ns_run",
    "ns_socket",
    "remove_firewall",
    "remove_mss_clamp",
    "remove_mtu_blackhole",
    "remove_netem",
    "remove_stale_dns",
    "resolve",
    "set_mtu",
    "teardown",
    "write_hosts",
]
