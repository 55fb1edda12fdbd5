"""Applying one injection step of a fault to a running lab.

Node steps act on the Windows model (harness/windows/faults.py); two lab-level actions change
the lab itself: `install_os` (the machine runs another OS build) and `use_client_program` (the
user connects with another client program). Network steps go to the backend, which runs them in
the kernel or says it cannot.
"""

from __future__ import annotations

from typing import Any

from ..windows.faults import ACTIONS as NODE_ACTIONS
from ..windows.faults import inject

LAB_ACTIONS = ("install_os", "use_client_program")
NETWORK_ACTIONS = ("mtu_blackhole", "netem")


def known_action(node: str, action: str) -> bool:
    if node == "network":
        return action in NETWORK_ACTIONS
    return action in NODE_ACTIONS or action in LAB_ACTIONS


def apply_step(lab: Any, step: dict[str, Any]) -> str:
    """Apply one step; returns a line for the journal. Raises FaultError / NotEmulated."""
    node, action, args = step["node"], step["action"], dict(step.get("args") or {})
    if node == "network":
        lab.apply_network_fault(action, args)
        return f"network: {action} {args}"
    if action == "install_os":
        lab.install_os(node, str(args["os"]))
        return f"{node}: reinstalled as {args['os']}"
    if action == "use_client_program":
        lab.client_program = str(args["profile"])
        return f"{node}: the user now connects with {args['profile']}"
    inject(lab.nodes[node], action, args)
    return f"{node}: {action} {args}"
