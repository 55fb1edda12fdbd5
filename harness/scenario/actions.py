"""Applying one injection step of a fault to a running lab.

Node steps act on the Windows model (harness/windows/faults.py); two lab-level actions change
the lab itself: `install_os` (the machine runs another OS build) and `use_client_program` (the
user connects with another client program). Network steps go to the backend, which runs them in
the kernel or says it cannot. Every step returns its effect (StepEffect); state lands in the
model only (the client program the user runs is the client machine's), never in a value left on
the lab object for the cell to read back.
"""

from __future__ import annotations

from typing import Any

from ..lab.contract import LabBackend, StepEffect
from ..windows.faults import ACTIONS as NODE_ACTIONS

LAB_ACTIONS = ("install_os", "use_client_program")
NETWORK_ACTIONS = ("mtu_blackhole", "netem")


def known_action(node: str, action: str) -> bool:
    if node == "network":
        return action in NETWORK_ACTIONS
    return action in NODE_ACTIONS or action in LAB_ACTIONS


def _expand(value: Any, lab: LabBackend) -> Any:
    """'{host.fqdn}', '{host.address}', '{gateway.name}' in string arguments, from the lab."""
    if not isinstance(value, str) or "{" not in value:
        return value
    fields = {}
    for role, node in lab.nodes.items():
        fields[f"{role}.fqdn"] = node.fqdn
        fields[f"{role}.name"] = node.computer_name
        fields[f"{role}.address"] = node.network.primary_address() or ""
    for key, text in fields.items():
        value = value.replace("{" + key + "}", text)
    return value


def apply_step(lab: LabBackend, step: dict[str, Any]) -> StepEffect:
    """Apply one step and say what it did. Raises FaultError / NotEmulated."""
    node, action = step["node"], step["action"]
    args = {k: _expand(v, lab) for k, v in (step.get("args") or {}).items()}
    if node == "network":
        lab.apply_network_fault(action, args)
        return StepEffect(f"network: {action} {args}")
    if action == "install_os":
        lab.install_os(node, str(args["os"]))
        return StepEffect(f"{node}: reinstalled as {args['os']}")
    if action == "use_client_program":
        lab.client_program = str(args["profile"])
        return StepEffect(f"{node}: the user now connects with {args['profile']}",
                          client_program=str(args["profile"]))
    lab.inject(node, action, args)
    return StepEffect(f"{node}: {action} {args}")
