"""Applying one injection step of a fault to a running lab.

Node steps act on the Windows model (harness/windows/faults.py); two lab-level actions change
the lab itself: `install_os` (the machine runs another OS build) and `use_client_program` (the
user connects with another client program). Network steps go to the backend, which runs them in
the kernel or says it cannot. Every step returns its effect (StepEffect); state lands in the
model only (the client program the user runs is the client machine's), never in a value left on
the lab object for the cell to read back.
"""

from __future__ import annotations

import inspect
from typing import Any

from ..lab.contract import LabBackend, StepEffect
from ..windows.faults import ACTIONS as NODE_ACTIONS

# The arguments of every action, as JSON Schema: lab and network actions here, node actions
# from their function's signature in harness/windows/faults.py (a new @action needs nothing else).
LAB_ACTIONS: dict[str, dict[str, Any]] = {
    "install_os": {"os": {"type": "string", "x-expected": "an OS profile id"}},
    "use_client_program": {"profile": {"type": "string", "x-expected": "a client profile name"}},
}
NETWORK_ACTIONS: dict[str, dict[str, Any]] = {
    "mtu_blackhole": {"mtu": {"type": "integer", "minimum": 576, "maximum": 9000,
                              "x-expected": "an MTU from 576 to 9000"},
                      "drop_icmp": {"type": "boolean"}},
    "netem": {**{name: {"type": "number", "minimum": 0} for name in
                 ("delay_ms", "jitter_ms", "loss_pct", "reorder_pct")},
              "seed": {"type": "integer"},
              "backend": {"enum": ["auto", "tc", "tun"],
                          "x-expected": "auto, tc or tun (the seeded TUN stand-in)"}},
}
_REQUIRED = {"install_os": ["os"], "use_client_program": ["profile"]}
_ANNOTATION_TYPES = {"int": ["integer"], "float": ["number"], "str": ["string"],
                     "bool": ["boolean"], "list": ["array"], "dict": ["object"],
                     "None": ["null"]}


def known_action(node: str, action: str) -> bool:
    if node == "network":
        return action in NETWORK_ACTIONS
    return action in NODE_ACTIONS or action in LAB_ACTIONS


def _annotation_schema(annotation: Any) -> dict[str, Any]:
    """JSON Schema for a parameter annotation ('int', 'str | None', 'list[str] | None', 'Any')."""
    if annotation is inspect.Parameter.empty or not isinstance(annotation, str):
        return {}
    types: list[str] = []
    for part in annotation.split("|"):
        base = part.strip().split("[", 1)[0]
        if base not in _ANNOTATION_TYPES:
            return {}  # Any, or a type JSON has no word for: any value
        types += _ANNOTATION_TYPES[base]
    if "number" in types and "integer" not in types:
        types.append("integer")
    return {"type": types[0] if len(types) == 1 else types}


def args_schema(node: str, action: str) -> dict[str, Any]:
    """The JSON Schema of one step's `args` (the action must be known)."""
    if node == "network":
        properties, required = NETWORK_ACTIONS[action], []
    elif action in LAB_ACTIONS:
        properties, required = LAB_ACTIONS[action], _REQUIRED.get(action, [])
    else:
        params = list(inspect.signature(NODE_ACTIONS[action]).parameters.values())[1:]
        properties = {p.name: _annotation_schema(p.annotation) for p in params}
        required = [p.name for p in params if p.default is inspect.Parameter.empty]
    return {"type": "object", "properties": properties, "required": required,
            "additionalProperties": False}


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
