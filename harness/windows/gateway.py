"""The RD Gateway role of a node: RD CAPs, RD RAPs, RD Gateway-managed computer groups and the
SSL certificate binding, i.e. what the RemoteDesktopServices provider shows under
RDS:\\GatewayServer. `WindowsNode.gateway_policy()` derives the emulated gateway's GatewayPolicy
from this, the certificate and key stores, the TSGateway service and the firewall.

Model choices [open] (what Windows does is not established here, the lab picks):
- Users: "<group>@<DOMAIN>" entries of CAPs and RAPs; "Domain Users@<domain>" holds every user of
  the lab's domain, "Administrators@BUILTIN" the local labadmin; other groups are empty unless
  `group_members` says otherwise (the lab has no directory).
- RAP resources: an RD Gateway-managed group matches the name the client asked for exactly
  (case-insensitive): a group listing the FQDN does not let a client in by NetBIOS name or IP
  address, as the RAP denial message mstsc shows suggests ("you might have specified the remote
  computer in NetBIOS format ... but the RD Gateway is expecting an FQDN or IP address").
- The WebSocket transport is offered while the "Remote Desktop (WebSocket)" rules let
  TCP 3387 in (the lab uses that rule as the switch); the HTTP transport is always on.
- Setting SSLCertificate\\Thumbprint grants NETWORK SERVICE (TSGateway's account) read on the
  certificate's key, as RD Gateway Manager does when a certificate is selected.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from harness.gateway.policy import RapRule

from .journal import ActionJournal

GATEWAY_SERVICE = ("TSGateway", "Remote Desktop Gateway", "NT AUTHORITY\\NETWORK SERVICE")
HTTPS_PORT = 443
WEBSOCKET_GROUP = "Remote Desktop (WebSocket)"
WEBSOCKET_RULE_PORT = 3387  # "Remote Desktop - (TCP-WS-In)"
HTTPS_RULE = {"name": "IIS-WebServerRole-HTTPS-In-TCP",
              "display_name": "World Wide Web Services (HTTPS Traffic-In)",
              "group": "Secure World Wide Web Services (HTTPS)", "port": HTTPS_PORT}
GATEWAY_KEY_PREFIX = "b8a4f0c2d7e94a1f9c3e5d6a7b8c9d0e"  # the SSL certificate's key container
GATEWAY_CERT_DAYS = 365
DEFAULT_CAP = "RDG_CAP_AllUsers"
DEFAULT_RAP = "RDG_RAP_SessionHosts"
DEFAULT_GROUP = "RDG_SessionHosts"
COMPUTER_GROUP_TYPES = {0: "RD Gateway-managed group", 1: "AD DS network resource group",
                        2: "any network resource"}


def _norm(text: str) -> str:
    return text.strip().casefold()


@dataclass
class Cap:
    """RD CAP: who may use the gateway."""

    name: str
    user_groups: list[str]
    status: int = 1  # 1 enabled, 0 disabled
    auth_method: int = 1  # 1 password, 2 smart card, 3 both

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Rap:
    """RD RAP: which computers and ports the users in its groups may reach."""

    name: str
    user_groups: list[str]
    computer_group_type: int = 0  # see COMPUTER_GROUP_TYPES
    computer_group: str = ""
    port_numbers: str = "3389"  # "3389", "3389,3390" or "*"
    status: int = 1

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def ports(self) -> list[str]:
        return [p.strip() for p in self.port_numbers.split(",") if p.strip()] or ["3389"]


@dataclass
class ManagedGroup:
    """An RD Gateway-managed computer group (GatewayManagedComputerGroups)."""

    name: str
    description: str = ""
    computers: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class GatewayConfig:
    """RDS:\\GatewayServer of one node; every change lands in the node's journal."""

    def __init__(self, domain: str, journal: ActionJournal | None = None) -> None:
        self.domain = domain
        self.journal = journal if journal is not None else ActionJournal()
        self.caps: dict[str, Cap] = {}
        self.raps: dict[str, Rap] = {}
        self.groups: dict[str, ManagedGroup] = {}
        self.ssl_thumbprint: str | None = None
        self.group_members: dict[str, set[str]] = {}  # extra "<group>@<domain>" -> DOMAIN\user

    # -- lookups ------------------------------------------------------------------------------

    def cap(self, name: str) -> Cap | None:
        return self.caps.get(_norm(name))

    def rap(self, name: str) -> Rap | None:
        return self.raps.get(_norm(name))

    def group(self, name: str) -> ManagedGroup | None:
        return self.groups.get(_norm(name))

    def members(self, user_group: str, users: dict[str, str]) -> set[str]:
        """DOMAIN\\user names in a "<group>@<domain>" entry (lower case)."""
        group, _, domain = user_group.partition("@")
        domain = domain or self.domain
        key = _norm(f"{group}@{domain}")
        out = {_norm(m) for m in self.group_members.get(key, set())}
        if _norm(group) == "domain users" and _norm(domain) == _norm(self.domain):
            out |= {_norm(f"{self.domain}\\{u}") for u in users}
        elif _norm(group) == "administrators" and _norm(domain) == "builtin":
            out.add("labadmin")
        return out

    def _users_of(self, groups: list[str], users: dict[str, str]) -> frozenset[str]:
        found: set[str] = set()
        for entry in groups:
            found |= self.members(entry, users)
        return frozenset(found)

    # -- what the emulated gateway decides by -------------------------------------------------

    def allowed_users(self, users: dict[str, str]) -> frozenset[str]:
        """The RD CAP check: members of an enabled CAP's user groups (nobody without a CAP)."""
        found: set[str] = set()
        for cap in self.caps.values():
            if cap.status:
                found |= self._users_of(cap.user_groups, users)
        return frozenset(found)

    def resources(self, rap: Rap) -> tuple[str, ...]:
        """GatewayPolicy resource entries ("name:port", "*:port") of one RAP."""
        if rap.computer_group_type == 2:
            names = ["*"]
        elif rap.computer_group_type == 0:
            group = self.group(rap.computer_group)
            names = list(group.computers) if group else []
        else:  # an AD DS group: the lab has no directory, so no computer is in it
            names = []
        return tuple(f"{n}:{p}" for n in names for p in rap.ports())

    def rap_rules(self, users: dict[str, str]) -> tuple[RapRule, ...]:
        return tuple(RapRule(self._users_of(r.user_groups, users), self.resources(r))
                     for r in self.raps.values() if r.status)

    def allowed_resources(self) -> tuple[str, ...]:
        return tuple(e for r in self.raps.values() if r.status for e in self.resources(r))

    # -- changes (the provider and fault actions) ---------------------------------------------

    def add_cap(self, cap: Cap) -> Cap:
        self.caps[_norm(cap.name)] = cap
        self.journal.record("gateway", f"CAP {cap.name}", None, cap.to_json())
        return cap

    def add_rap(self, rap: Rap) -> Rap:
        self.raps[_norm(rap.name)] = rap
        self.journal.record("gateway", f"RAP {rap.name}", None, rap.to_json())
        return rap

    def add_group(self, group: ManagedGroup) -> ManagedGroup:
        self.groups[_norm(group.name)] = group
        self.journal.record("gateway", f"computer group {group.name}", None, group.to_json())
        return group

    def remove(self, kind: str, name: str) -> bool:
        table = {"cap": self.caps, "rap": self.raps, "group": self.groups}[kind]
        item = table.pop(_norm(name), None)
        if item is not None:
            label = "computer group" if kind == "group" else kind.upper()
            self.journal.record("gateway", f"{label} {item.name}", item.to_json(), None)
        return item is not None

    def set_field(self, item: Cap | Rap, attr: str, value: Any) -> None:
        before = getattr(item, attr)
        if before != value:
            setattr(item, attr, value)
            kind = "CAP" if isinstance(item, Cap) else "RAP"
            self.journal.record("gateway", f"{kind} {item.name} ({attr})", before, value)

    def add_computer(self, group: ManagedGroup, computer: str) -> bool:
        if any(_norm(c) == _norm(computer) for c in group.computers):
            return False
        group.computers.append(computer)
        self.journal.record("gateway", f"computer group {group.name}", None, f"+{computer}")
        return True

    def remove_computer(self, computer: str, group: ManagedGroup | None = None) -> int:
        removed = 0
        for g in [group] if group else list(self.groups.values()):
            for c in list(g.computers):
                if _norm(c) == _norm(computer):
                    g.computers.remove(c)
                    self.journal.record("gateway", f"computer group {g.name}", c, None)
                    removed += 1
        return removed

    def bind_certificate(self, thumbprint: str | None) -> None:
        before, self.ssl_thumbprint = self.ssl_thumbprint, thumbprint
        if before != thumbprint:
            self.journal.record("gateway", "SSLCertificate\\Thumbprint", before, thumbprint)

    def snapshot(self) -> dict[str, Any]:
        return {"ssl_thumbprint": self.ssl_thumbprint,
                "caps": [c.to_json() for c in self.caps.values()],
                "raps": [r.to_json() for r in self.raps.values()],
                "groups": [g.to_json() for g in self.groups.values()]}


def default_config(domain: str, journal: ActionJournal | None = None) -> GatewayConfig:
    """What the lab's RD Gateway was set up with: one CAP and one RAP for Domain Users, the RAP
    naming an RD Gateway-managed group the lab fills with the session host's names."""
    config = GatewayConfig(domain, journal)
    config.add_cap(Cap(DEFAULT_CAP, [f"Domain Users@{domain}"]))
    config.add_group(ManagedGroup(DEFAULT_GROUP, "Session hosts reachable through RD Gateway"))
    config.add_rap(Rap(DEFAULT_RAP, [f"Domain Users@{domain}"], 0, DEFAULT_GROUP, "3389"))
    return config
