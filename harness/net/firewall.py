"""Firewall fault: an nft table in a node's namespace (default the host) refusing inbound TCP
to one port, silently (`drop`: no SYN-ACK, the client times out) or actively (`reject`: a TCP
reset, the client gets ECONNREFUSED at once)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal

from .nft import chain, drop_table, load_table

if TYPE_CHECKING:
    from .lab import NetLab

Action = Literal["drop", "reject"]
_VERDICT = {"drop": "drop", "reject": "reject with tcp reset"}


def firewall_table(lab: NetLab) -> str:
    """The nft table name (family inet) this lab's firewall fault uses."""
    return f"rdplab_{lab.lab_id}_fw"


def apply_firewall(
    lab: NetLab, *, port: int = 3389, action: Action = "drop", node: str = "host"
) -> None:
    """Block inbound TCP to port on node (replaces a previous firewall fault there)."""
    apply_firewall_ports(lab, {port: action}, node=node)


def remove_firewall(lab: NetLab, *, node: str = "host") -> None:
    """Delete the firewall table (no error when it is not there)."""
    drop_table(lab, node, firewall_table(lab))


def apply_firewall_ports(
    lab: NetLab, verdicts: Mapping[int, Action], *, node: str = "host"
) -> None:
    """Block several inbound TCP ports on node, each with its own action, in the same table as
    apply_firewall (an empty mapping removes it). remove_firewall undoes it."""
    if not verdicts:
        remove_firewall(lab, node=node)
        return
    for port, action in verdicts.items():
        if action not in _VERDICT:
            raise ValueError(f"action must be drop or reject, not {action!r}")
        if not 0 < port < 65536:
            raise ValueError(f"bad port {port}")
    rules = [f"tcp dport {port} {_VERDICT[action]}" for port, action in sorted(verdicts.items())]
    load_table(lab, node, firewall_table(lab), chain("input", rules))


def outbound_table(lab: NetLab) -> str:
    """The nft table (family inet) holding a node's own outbound blocks."""
    return f"rdplab_{lab.lab_id}_out"


def apply_outbound_blocks(lab: NetLab, blocked: set[tuple[str, int]], *,
                          node: str = "client") -> None:
    """Drop the node's own outbound TCP to each (IPv4 address, port) in its output hook, where
    a local filter acts (Windows' WFP: an endpoint filter, a corrupt Winsock catalog): a program
    on the node gets EPERM from connect() and no packet leaves. An empty set removes the
    table."""
    table = outbound_table(lab)
    if not blocked:
        drop_table(lab, node, table)
        return
    for address, port in blocked:
        if not 0 < port < 65536 or not all(p.isdigit() for p in address.split(".")):
            raise ValueError(f"bad endpoint {address}:{port}")
    rules = [f"ip daddr {address} tcp dport {port} drop" for address, port in sorted(blocked)]
    load_table(lab, node, table, chain("output", rules))
