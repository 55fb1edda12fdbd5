"""What the emulated RD Gateway decides by, as one immutable value read at each new connection.

Mirrors harness/host/policy.py: the certificate comes from `load_credential` (called per
connection, so a replaced or broken certificate shows on the next one); users are the NTLM accounts
the gateway can verify; `allowed_users` is the RD CAP (who may use the gateway), and
`allowed_resources` the RD RAP (which hosts and ports they may reach). `rap`, when given, is the
RD RAP per user (each rule: the users it applies to and their resources) and wins over
`allowed_resources`. The lab derives the whole value from the gateway node's Windows model
(harness/windows/gateway.py, `WindowsNode.gateway_policy()`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from harness.host.policy import TlsCredential
from harness.rdp.tsgu import HTTP_TUNNEL_REDIR_ENABLE_ALL


def _norm_user(name: str) -> str:
    return name.strip().casefold()


def _user_in(allowed: frozenset[str], user: str, domain: str) -> bool:
    names = {_norm_user(u) for u in allowed}
    return _norm_user(user) in names or _norm_user(f"{domain}\\{user}") in names


def _resource_in(entries: tuple[str, ...], host: str, port: int) -> bool:
    host = host.casefold().rstrip(".")
    for entry in entries:
        name, sep, want_port = entry.strip().rpartition(":")
        if not sep:
            name, want_port = want_port, ""
        if want_port and want_port != "*" and want_port != str(port):
            continue
        if name in ("*", "") or name.casefold().rstrip(".") == host:
            return True
    return False


@dataclass(frozen=True)
class RapRule:
    """One RD RAP: the users it applies to (None: every authenticated user) and resources."""

    users: frozenset[str] | None
    resources: tuple[str, ...]


@dataclass(frozen=True)
class GatewayPolicy:
    """Everything the emulated gateway decides by, for one connection."""

    load_credential: Callable[[], TlsCredential] | None = None
    users: dict[str, str] = field(default_factory=dict)  # NTLM accounts: user -> password
    # RD CAP: None lets every authenticated user in; entries are "user" or "DOMAIN\\user".
    allowed_users: frozenset[str] | None = None
    # RD RAP: None allows any target; entries are "host", "host:port", "*:port" or "*".
    allowed_resources: tuple[str, ...] | None = None
    rap: tuple[RapRule, ...] | None = None  # per-user RAP; wins over allowed_resources
    websocket_allowed: bool = True  # False: the upgrade is ignored (a gateway without WebSocket)
    http_allowed: bool = True  # False: plain RDG_OUT/IN_DATA get 404 (the HTTP transport is off)
    host_reachable: bool = True  # False: the gateway cannot reach any target (its firewall)
    domain: str = "LAB"
    computer_name: str = "RDGW"
    dns_domain: str = "lab.test"
    tls_min: str = "TLSv1.2"
    tls_max: str = "TLSv1.3"
    redir_flags: int = HTTP_TUNNEL_REDIR_ENABLE_ALL
    idle_timeout_minutes: int = 0
    connect_timeout: float = 5.0  # seconds the gateway waits for the target's SYN-ACK

    def user_allowed(self, user: str, domain: str = "") -> bool:
        """The CAP check, by user name alone or DOMAIN\\user, case-insensitive."""
        if self.allowed_users is None:
            return True
        return _user_in(self.allowed_users, user, domain)

    def resource_allowed(self, host: str, port: int, user: str | None = None,
                         domain: str = "") -> bool:
        """The RAP check for one target name and port (for `user` when the RAP is per user)."""
        if self.rap is not None:
            return any(
                (rule.users is None or user is None or _user_in(rule.users, user, domain))
                and _resource_in(rule.resources, host, port)
                for rule in self.rap
            )
        if self.allowed_resources is None:
            return True
        return _resource_in(self.allowed_resources, host, port)


GatewayPolicySource = Callable[[], GatewayPolicy]
