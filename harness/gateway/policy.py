"""What the emulated RD Gateway decides by, as one immutable value read at each new connection.

Mirrors harness/host/policy.py: the certificate comes from `load_credential` (called per
connection, so a replaced or broken certificate shows on the next one); users are the NTLM accounts
the gateway can verify; `allowed_users` is the RD CAP (who may use the gateway), and
`allowed_resources` the RD RAP (which hosts and ports they may reach).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from harness.host.policy import TlsCredential
from harness.rdp.tsgu import HTTP_TUNNEL_REDIR_ENABLE_ALL


def _norm_user(name: str) -> str:
    return name.strip().casefold()


@dataclass(frozen=True)
class GatewayPolicy:
    """Everything the emulated gateway decides by, for one connection."""

    load_credential: Callable[[], TlsCredential] | None = None
    users: dict[str, str] = field(default_factory=dict)  # NTLM accounts: user -> password
    # RD CAP: None lets every authenticated user in; entries are "user" or "DOMAIN\\user".
    allowed_users: frozenset[str] | None = None
    # RD RAP: None allows any target; entries are "host", "host:port", "*:port" or "*".
    allowed_resources: tuple[str, ...] | None = None
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
        allowed = {_norm_user(u) for u in self.allowed_users}
        return _norm_user(user) in allowed or _norm_user(f"{domain}\\{user}") in allowed

    def resource_allowed(self, host: str, port: int) -> bool:
        """The RAP check for one target name and port."""
        if self.allowed_resources is None:
            return True
        host = host.casefold().rstrip(".")
        for entry in self.allowed_resources:
            name, sep, want_port = entry.strip().rpartition(":")
            if not sep:
                name, want_port = want_port, ""
            if want_port and want_port != "*" and want_port != str(port):
                continue
            if name in ("*", "") or name.casefold().rstrip(".") == host:
                return True
        return False


GatewayPolicySource = Callable[[], GatewayPolicy]
