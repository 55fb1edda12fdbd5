"""Remediations on the network devices between the nodes (sidecar `target: network`): the
perimeter firewall in front of the host, the VPN concentrator, the VPN's underlying link.

Each step changes what the backend really does (nft tables, tc, routes), or says it cannot.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import NotEmulated
from ..pwsh.result import Effect, RemediationResult, ScriptResult

Remedy = Callable[[Any, dict[str, Any]], str]


def _open_perimeter_port(lab: Any, args: dict[str, Any]) -> str:
    """The perimeter firewall's ACL permits TCP `port` to the node behind it again."""
    role, port = str(args.get("node", "host")), int(args.get("port", 3389))
    node = lab.nodes[role]
    with node.lock:
        had = port in node.firewall.upstream
        node.firewall.clear_upstream(port)
    return (f"perimeter ACL: TCP {port} to {node.name} permitted" if had
            else f"perimeter ACL: TCP {port} to {node.name} was not blocked (no change)")


def _clamp_mss(lab: Any, args: dict[str, Any]) -> str:
    """The VPN router rewrites the TCP MSS of SYNs to fit its path (iptables TCPMSS
    --clamp-mss-to-pmtu, the routers' `ip tcp adjust-mss`)."""
    lab.apply_network_fault("mss_clamp", {})
    return "VPN router: TCP MSS clamped to the path MTU"


def _replace_vpn_link(lab: Any, args: dict[str, Any]) -> str:
    """The VPN runs over a sound link (wired instead of a congested Wi-Fi / mobile link): the
    loss and delay of the old link are gone."""
    clear = getattr(lab, "clear_network_fault", None)
    if clear is None:
        raise NotEmulated(f"the {lab.backend} backend has no network link to change",
                          needs="netns")
    clear("netem")
    return "VPN link: replaced by one without loss or added delay"


REMEDIES: dict[str, Remedy] = {"open_perimeter_port": _open_perimeter_port,
                               "clamp_mss": _clamp_mss, "replace_vpn_link": _replace_vpn_link}


def run_network_remediation(lab: Any, remediation: Any) -> RemediationResult:
    """Apply every step of a `target: network` remediation; NotEmulated when the backend
    cannot do one (nothing after it runs)."""
    script = ScriptResult(file=remediation.sidecar.name, node="network")
    for i, step in enumerate(remediation.steps, 1):
        action, args = step["action"], dict(step.get("args") or {})
        remedy = REMEDIES.get(action)
        if remedy is None:
            raise NotEmulated(f"{remediation.sidecar.name}: network step {action!r} is not one "
                              f"the lab knows ({', '.join(sorted(REMEDIES))})")
        script.effects.append(Effect(i, f"{action} {args}".strip(), [remedy(lab, args)]))
    lab.sync()
    return RemediationResult(remediation.id, [script])
