"""Security-relevant state of a lab, read from the Windows model, and what a fix weakened
compared with the healthy baseline.

Small and self-contained on purpose: the catalog's computed weakened-security (issue 11) can
take it over. Each entry: (what, how to read it from the nodes, which direction is weaker).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

TLS_ORDER = ("SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")


@dataclass(frozen=True)
class Weakening:
    what: str
    before: Any
    after: Any

    def __str__(self) -> str:
        return f"{self.what}: {self.before} -> {self.after}"


def _tls_rank(version: str | None) -> int:
    return TLS_ORDER.index(version) if version in TLS_ORDER else len(TLS_ORDER)


def snapshot(nodes: Mapping[str, Any]) -> dict[str, Any]:
    """The values compared, JSON-able (kept in the lab record as the baseline)."""
    out: dict[str, Any] = {}
    host = nodes.get("host")
    if host is not None:
        policy = host.host_policy()
        out["host.nla_required"] = bool(policy.user_authentication)
        out["host.security_layer"] = int(policy.security_layer)
        out["host.tls_min"] = policy.tls_min
        out["host.allow_encryption_oracle"] = int(policy.allow_encryption_oracle)
        out["host.firewall_enabled"] = bool(host.firewall.enabled)
    client = nodes.get("client")
    if client is not None:
        settings = client.client_settings()
        out["client.allow_encryption_oracle"] = int(settings.allow_encryption_oracle)
        out["client.tls_min"] = settings.tls_min
        out["client.firewall_enabled"] = bool(client.firewall.enabled)
    gateway = nodes.get("gateway")
    if gateway is not None and gateway.gateway is not None:
        policy = gateway.gateway_policy()
        out["gateway.resources_restricted"] = (policy.allowed_resources is not None
                                               and "*" not in policy.allowed_resources)
        out["gateway.tls_min"] = policy.tls_min
        out["gateway.firewall_enabled"] = bool(gateway.firewall.enabled)
    return out


# key suffix -> (label, weaker(before, after))
_RULES: dict[str, tuple[str, Callable[[Any, Any], bool]]] = {
    "nla_required": ("Network Level Authentication no longer required",
                     lambda b, a: bool(b) and not a),
    "security_layer": ("RDP security layer lowered (SecurityLayer; 0 = Standard RDP Security)",
                       lambda b, a: a < b),
    "tls_min": ("an older TLS version accepted", lambda b, a: _tls_rank(a) < _tls_rank(b)),
    "allow_encryption_oracle": ("CredSSP AllowEncryptionOracle set to a vulnerable value",
                                lambda b, a: a > b),
    "firewall_enabled": ("Windows Firewall turned off", lambda b, a: bool(b) and not a),
    "resources_restricted": ("RD Gateway lets users reach any computer (RAP)",
                             lambda b, a: bool(b) and not a),
}


def weakened(baseline: Mapping[str, Any], now: Mapping[str, Any]) -> list[Weakening]:
    """What is weaker now than in the baseline, by the rules above."""
    found = []
    for key, before in baseline.items():
        if key not in now:
            continue
        node, _, field = key.partition(".")
        rule = _RULES.get(field)
        if rule is None:
            continue
        label, weaker = rule
        if weaker(before, now[key]):
            found.append(Weakening(f"{node}: {label}", before, now[key]))
    return found
