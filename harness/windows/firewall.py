"""Windows Defender Firewall inbound rules, plus upstream devices a fault puts in the path.

Windows' firewall drops what it blocks (no reply to the SYN); block rules beat allow rules; with
the firewall off every port is open. An upstream device (a fault's `reject` block) answers with
RST instead, and no command on the node can change it.

Outbound: allowed unless the profile's default outbound action is Block (a hardening baseline) or
an enabled outbound Block rule matches the remote port and address; block beats allow here too.
A blocked outbound connect fails at once on the node itself (WSAEACCES), it is not a timeout.
"""

from __future__ import annotations

import fnmatch
import ipaddress
from dataclasses import asdict, dataclass
from typing import Any, Literal

from .journal import ActionJournal

Verdict = Literal["allow", "drop", "reject"]


@dataclass
class FirewallRule:
    name: str
    display_name: str
    display_group: str = ""
    group: str = ""
    protocol: str = "TCP"
    ports: tuple[int, ...] = ()  # empty: any port
    action: str = "Allow"  # Allow | Block
    enabled: bool = True
    direction: str = "Inbound"
    service: str | None = None
    program: str | None = None
    remote_ports: tuple[int, ...] = ()  # outbound rules: empty = any remote port
    remote_addresses: tuple[str, ...] = ()  # empty = any remote address

    def matches(self, port: int, protocol: str) -> bool:
        return (self.enabled and self.direction == "Inbound"
                and self.protocol.upper() in (protocol.upper(), "ANY")
                and (not self.ports or port in self.ports)
                and self.program is None
                and self.service in (None, "TermService"))

    def matches_outbound(self, address: str, port: int, protocol: str,
                         program: str | None = None) -> bool:
        """A rule with a program matches only that program's connections (by file name, as
        %SystemRoot%\\System32\\mstsc.exe and C:\\Windows\\System32\\mstsc.exe are one)."""
        return (self.enabled and self.direction == "Outbound"
                and self.protocol.upper() in (protocol.upper(), "ANY")
                and (not self.remote_ports or port in self.remote_ports)
                and (not self.remote_addresses
                     or any(_address_in(address, a) for a in self.remote_addresses))
                and (self.program is None
                     or (program is not None and _file(self.program) == _file(program))))

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["ports"] = list(self.ports)
        out["remote_ports"] = list(self.remote_ports)
        out["remote_addresses"] = list(self.remote_addresses)
        return out


def _address_in(address: str, spec: str) -> bool:
    """A RemoteAddress entry: Any, a single address or a CIDR prefix."""
    if spec.strip().lower() == "any":
        return True
    try:
        return ipaddress.ip_address(address) in ipaddress.ip_network(spec.strip(), strict=False)
    except ValueError:
        return address.strip().lower() == spec.strip().lower()


def _file(path: str) -> str:
    return path.replace("/", "\\").rsplit("\\", 1)[-1].lower()


def _like(pattern: str, value: str) -> bool:
    return fnmatch.fnmatchcase(value.lower(), pattern.lower())


class Firewall:
    """Inbound rules by name, the firewall's on/off state and upstream blocks by port."""

    def __init__(self, journal: ActionJournal | None = None) -> None:
        self.journal = journal if journal is not None else ActionJournal()
        self.rules: dict[str, FirewallRule] = {}
        self.enabled = True  # all profiles on; inbound default action Block
        self.default_outbound = "Allow"  # the profiles' DefaultOutboundAction
        self.upstream: dict[int, Verdict] = {}

    def add_rule(self, rule: FirewallRule) -> FirewallRule:
        self.rules[rule.name.lower()] = rule
        self.journal.record("firewall", rule.name, None, rule.to_json())
        return rule

    def remove_rule(self, rule: FirewallRule) -> None:
        del self.rules[rule.name.lower()]
        self.journal.record("firewall", rule.name, rule.to_json(), None)

    def find(self, name: str | None = None, display_name: str | None = None,
             display_group: str | None = None, group: str | None = None) -> list[FirewallRule]:
        """Rules matching every given selector (wildcards allowed, case-insensitive)."""
        found = []
        for rule in self.rules.values():
            if name is not None and not _like(name, rule.name):
                continue
            if display_name is not None and not _like(display_name, rule.display_name):
                continue
            if display_group is not None and not _like(display_group, rule.display_group):
                continue
            if group is not None and not (_like(group, rule.group)
                                          or _like(group, rule.display_group)):
                continue
            found.append(rule)
        return found

    def set_enabled(self, rule: FirewallRule, enabled: bool) -> None:
        if rule.enabled != enabled:
            rule.enabled = enabled
            self.journal.record("firewall", f"{rule.name} (enabled)", not enabled, enabled)

    def set_action(self, rule: FirewallRule, action: str) -> None:
        action = "Block" if action.lower() == "block" else "Allow"
        if rule.action != action:
            self.journal.record("firewall", f"{rule.name} (action)", rule.action, action)
            rule.action = action

    def set_state(self, enabled: bool) -> None:
        if self.enabled != enabled:
            self.journal.record("firewall", "state (all profiles)", self.enabled, enabled)
            self.enabled = enabled

    def verdict(self, port: int, protocol: str = "TCP") -> Verdict:
        """What an inbound SYN to the port meets."""
        if port in self.upstream:
            return self.upstream[port]
        if not self.enabled:
            return "allow"
        matching = [r for r in self.rules.values() if r.matches(port, protocol)]
        if any(r.action == "Block" for r in matching):
            return "drop"
        return "allow" if matching else "drop"

    def outbound_verdict(self, address: str, port: int, protocol: str = "TCP",
                         program: str | None = None) -> Literal["allow", "block"]:
        """What an outbound connect from the node (by `program`) to address:port meets."""
        if not self.enabled:
            return "allow"
        matching = [r for r in self.rules.values()
                    if r.matches_outbound(address, port, protocol, program)]
        if any(r.action == "Block" for r in matching):
            return "block"
        if matching:
            return "allow"
        return "block" if self.default_outbound == "Block" else "allow"

    def set_default_outbound(self, action: str) -> None:
        action = "Block" if action.lower() == "block" else "Allow"
        if self.default_outbound != action:
            self.journal.record("firewall", "default outbound action", self.default_outbound,
                                action)
            self.default_outbound = action

    # -- fault injection --------------------------------------------------------------------

    def add_block_rule(self, port: int = 3389, mode: Literal["drop", "reject"] = "drop",
                       name: str | None = None, upstream: bool = False) -> FirewallRule | None:
        """Block a port: `drop` is a Windows firewall rule on the node (admins can see and
        remove it); `reject`, or `upstream=True`, is a device in front of the node (RST for
        reject, silence for drop) that no command on the node can change."""
        if mode == "reject" or upstream:
            self.journal.record("firewall", f"upstream block TCP {port}", self.upstream.get(port),
                                mode)
            self.upstream[port] = mode
            return None
        return self.add_rule(FirewallRule(name or f"Block RDP {port}",
                                          name or f"Block RDP (TCP {port})", protocol="TCP",
                                          ports=(port,), action="Block"))

    def clear_upstream(self, port: int) -> None:
        if self.upstream.pop(port, None) is not None:
            self.journal.record("firewall", f"upstream block TCP {port}", "present", None)

    def set_group_enabled(self, display_group: str, enabled: bool) -> None:
        for rule in self.find(display_group=display_group):
            self.set_enabled(rule, enabled)

    def snapshot(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "default_outbound": self.default_outbound,
                "upstream": {str(k): v for k, v in self.upstream.items()},
                "rules": [r.to_json() for r in self.rules.values()]}
