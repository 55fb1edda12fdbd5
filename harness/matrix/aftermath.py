"""What a remediation did besides (not) fixing RDP, computed from the nodes' state.

- collateral: the lab's other services (harness/windows/managed.py: WinRM HTTPS with its
  certificate and MachineKeys key, SMB, their firewall rules) that worked after the fault was
  injected and no longer work after the remediation;
- weakened: security properties of the nodes and of the user's client that are weaker after the
  remediation than after the fault (what the remediation itself changed; a fault's own
  weakening is not the remediation's): NLA, the security layer, the CredSSP oracle policy, TLS
  versions, trusted roots, the firewall (state, outbound default, inbound allow rules open to
  any address that were not open at the baseline), security services, and what the user's
  client accepts (Standard RDP Security without server authentication, its certificate policy).

The cell calls capture() at each point and assess() at the end; the sidecar's claim
(security_impact) is compared with the computed verdict and a disagreement is reported.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from ..probe.profiles import load_profile
from ..windows import derive
from ..windows.managed import checks

TLS_AGE = {"TLSv1": 0, "TLSv1.1": 1, "TLSv1.2": 2, "TLSv1.3": 3}
SECURITY_SERVICES = ("MpsSvc", "WinDefend", "EventLog", "WinRM")
CERT_POLICY_RANK = {"ignore": 0, "warn": 1, "strict": 2}


@dataclass
class Capture:
    """One moment's security properties ({name: (rank, shown)}, higher rank = stronger) and
    managed services ({name: None or why broken})."""

    security: dict[str, tuple[float, str]] = field(default_factory=dict)
    services: dict[str, str | None] = field(default_factory=dict)


@dataclass
class Assessment:
    collateral: list[str]
    weakened: list[str]
    disagreement: str | None


def capture(lab: Any) -> Capture:
    out = Capture()
    for role, node in lab.nodes.items():
        with node.lock:
            _node_security(role, node, out.security)
        out.services.update(checks(node))
    profile = load_profile(lab.client_program or lab.spec.profile)
    if profile is not None:
        out.security["client program: accepts Standard RDP Security (no server authentication)"] = (
            0.0 if profile.rdp_security else 1.0, "yes" if profile.rdp_security else "no")
        out.security["client program: certificate policy"] = (
            CERT_POLICY_RANK.get(profile.cert_policy, 1), profile.cert_policy)
    return out


def _node_security(role: str, node: Any, out: dict[str, tuple[float, str]]) -> None:
    registry = node.registry
    features = node.patches.features()
    if role != "client":
        nla = derive.user_authentication(registry)
        out[f"{role}: NLA required"] = (float(nla), str(nla))
        layer = derive.security_layer(registry)
        out[f"{role}: security layer"] = (float(layer), {0: "RDP", 1: "Negotiate",
                                                          2: "SSL"}.get(layer, str(layer)))
        versions = node.host_tls_versions()
        oldest = min((TLS_AGE.get(v, 2) for v in versions), default=3)
        out[f"{role}: oldest server TLS version"] = (float(oldest), ",".join(versions) or "none")
    oracle = derive.allow_encryption_oracle(registry, features)
    out[f"{role}: CredSSP AllowEncryptionOracle"] = (float(-oracle), str(oracle))
    fw = node.firewall
    out[f"{role}: firewall"] = (float(fw.enabled), "on" if fw.enabled else "off")
    out[f"{role}: default outbound"] = (float(fw.default_outbound == "Block"), fw.default_outbound)
    open_rules = sorted(f"{r.name} ({r.protocol} {','.join(map(str, r.ports)) or 'any port'})"
                        for r in fw.rules.values()
                        if r.enabled and r.direction == "Inbound" and r.action == "Allow"
                        and not r.remote_addresses and r.program is None)
    out[f"{role}: inbound allow rules open to any address"] = (0.0, "; ".join(open_rules))
    for name in SECURITY_SERVICES:
        service = node.services.find(name)
        if service is not None:
            on = service.running and service.start_type != "Disabled"
            out[f"{role}: service {name}"] = (float(on), "running" if on else "stopped/disabled")
    if role == "client":
        roots = hashlib.sha256(node.client_settings().trusted_ca_pem).hexdigest()[:12]
        out["client: trusted root certificates"] = (0.0, roots)  # compared for change below


def assess(baseline: Capture, injected: Capture, after: Capture,
           sidecar_weakens: bool) -> Assessment:
    collateral = [f"{name}: {after.services[name]}" for name in sorted(after.services)
                  if after.services[name] is not None and injected.services.get(name) is None
                  and baseline.services.get(name) is None]
    weakened = []
    for name, (rank, shown) in after.security.items():
        base, inj = baseline.security.get(name), injected.security.get(name)
        if base is None or inj is None:
            continue
        if name == "client: trusted root certificates":
            if shown not in (base[1], inj[1]):
                weakened.append(f"{name}: changed")
        elif name.endswith("inbound allow rules open to any address"):
            known = set(base[1].split("; ")) | set(inj[1].split("; "))
            new = [r for r in shown.split("; ") if r and r not in known]
            if new:
                weakened.append(f"{name}: new {', '.join(new)}")
        elif rank < inj[0]:
            weakened.append(f"{name}: {inj[1]} -> {shown}")
    disagreement = None
    if bool(weakened) != sidecar_weakens:
        disagreement = ("the sidecar says security_impact: "
                        f"{'weakens' if sidecar_weakens else 'none'}; computed: "
                        + ("; ".join(weakened) if weakened else "nothing weaker"))
    return Assessment(collateral, weakened, disagreement)
