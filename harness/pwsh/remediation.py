"""Remediation scripts with their YAML sidecars, and running one on the lab's nodes.

Sidecar fields (scenarios/remediations/<id>.yaml):
  id, title, target (client|host|both|gateway), source (who recommends it: URL or document,
  a string or a list), security_impact (none|weakens), notes; optional script (default:
  <id>.ps1 next to the sidecar) and parameters ({ScriptParam: "<role>.<address|fqdn|name>"},
  values the lab binds to the script's param() block).
A network-node remediation (target network: the perimeter firewall, the VPN concentrator) has
`steps` instead of a script: [{action, args}] from harness/lab/network_remedies.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from .. import safe_yaml
from ..errors import NotEmulated, RemediationError
from .interpreter import run_source
from .result import RemediationResult, ScriptResult

if TYPE_CHECKING:
    from harness.windows.node import WindowsNode

TARGETS = {"client": ("client",), "host": ("host",), "gateway": ("gateway",),
           "both": ("host", "client"), "network": ()}
IMPACTS = ("none", "weakens")
REQUIRED = ("id", "title", "target", "source", "security_impact", "notes")
NODE_VALUES = ("address", "fqdn", "name")


@dataclass(frozen=True)
class Remediation:
    id: str
    title: str
    target: str
    sources: tuple[str, ...]
    security_impact: str
    notes: str
    script: Path
    sidecar: Path
    parameters: dict[str, str] = field(default_factory=dict)
    steps: tuple[dict[str, Any], ...] = ()  # target network: device changes, no script


class TargetNodeMissing(RemediationError, NotEmulated):
    """The lab has no node the remediation runs on (a gateway script in a gateway-less lab):
    a RemediationError, and a NotEmulated so a matrix cell says "not emulated" with the reason
    instead of failing as a lab error."""

    def __init__(self, file: str, role: str) -> None:
        RemediationError.__init__(self, file, "target", f"the lab has no {role} node")
        self.reason, self.needs = str(self), None
        self.line, self.command = 0, f"a remediation for the {role} node"
        self.detail = f"the lab has no {role} node"


def load_remediation(path: Path) -> Remediation:
    """From the .yaml sidecar or its .ps1 (the sidecar has the same stem)."""
    path = Path(path)
    sidecar = path if path.suffix in (".yaml", ".yml") else path.with_suffix(".yaml")
    name = str(sidecar)
    if not sidecar.exists():
        raise RemediationError(name, None, "sidecar file is missing")
    try:
        data = safe_yaml.load(safe_yaml.read_text(sidecar)) or {}
    except UnicodeDecodeError as exc:
        raise RemediationError(f"{name}:{exc.line}", None, "not UTF-8 text") from None  # type: ignore[attr-defined]
    except yaml.YAMLError as exc:
        raise RemediationError(f"{name}:{safe_yaml.error_line(exc) or 1}", None,
                               f"not valid YAML: {safe_yaml.describe(exc)}") from None
    if not isinstance(data, dict):
        raise RemediationError(name, None, "a sidecar is a mapping")
    for key in REQUIRED:
        if key not in data:
            raise RemediationError(name, key, "is missing")
    optional = ("script", "parameters", "steps")
    unknown = set(data) - set(REQUIRED) - set(optional)
    if unknown:
        raise RemediationError(name, sorted(unknown)[0], "unknown field; known: "
                               + ", ".join((*REQUIRED, *optional)))
    if data["target"] not in TARGETS:
        raise RemediationError(name, "target", f"{data['target']!r} is not one of "
                               f"{sorted(TARGETS)}")
    if data["security_impact"] not in IMPACTS:
        raise RemediationError(name, "security_impact", f"must be one of {IMPACTS}")
    if data["id"] != sidecar.stem:
        raise RemediationError(name, "id", f"must match the file name ({sidecar.stem})")
    steps = tuple(dict(step) for step in data.get("steps") or ())
    if (data["target"] == "network") != bool(steps):
        raise RemediationError(name, "steps", "a network remediation has steps (and no "
                               "script); a node remediation has a script and no steps")
    script = sidecar.parent / data.get("script", f"{data['id']}.ps1")
    if not steps and not script.exists():
        raise RemediationError(name, "script", f"{script.name} does not exist")
    params = data.get("parameters") or {}
    for key, value in params.items():
        ref = NodeRef.parse(str(value))
        if ref.role not in ("client", "host", "gateway") or ref.attr not in NODE_VALUES:
            raise RemediationError(name, f"parameters.{key}", "expected <client|host|gateway>."
                                   f"<{'|'.join(NODE_VALUES)}>")
    sources = data["source"] if isinstance(data["source"], list) else [data["source"]]
    return Remediation(data["id"], data["title"], data["target"], tuple(map(str, sources)),
                       data["security_impact"], str(data["notes"]), script, sidecar,
                       {str(k): str(v) for k, v in params.items()}, steps)


def load_remediations(directory: Path) -> dict[str, Remediation]:
    return {r.id: r for r in (load_remediation(p) for p in sorted(Path(directory).glob("*.yaml")))}


def run_script(path: Path, node: WindowsNode, params: dict[str, Any] | None = None
               ) -> ScriptResult:
    """Run one script file on one node."""
    path = Path(path)
    return run_source(path.read_text(encoding="utf-8-sig"), node, path.name, params)


@dataclass(frozen=True)
class NodeRef:
    """A sidecar parameter `<role>.<attr>`: which node, and which of its values (NODE_VALUES)."""

    role: str
    attr: str

    @classmethod
    def parse(cls, spec: str) -> NodeRef:
        role, _, attr = spec.partition(".")
        return cls(role, attr)

    def value(self, node: WindowsNode, address: str | None = None) -> str:
        """The value on `node`; `address` is the backend's own when it has one (a real VM)."""
        if self.attr == "address":
            return address if address is not None else node.network.primary_address()
        return node.fqdn if self.attr == "fqdn" else node.computer_name


def _node_value(nodes: Mapping[str, WindowsNode], spec: str) -> str | None:
    ref = NodeRef.parse(spec)
    node = nodes.get(ref.role)
    return None if node is None else ref.value(node)


def run_remediation(remediation: Remediation | Path, nodes: Mapping[str, WindowsNode],
                    params: dict[str, Any] | None = None) -> RemediationResult:
    """Run the remediation's script on its target node(s), `nodes` keyed by role.

    NotEmulated and ScriptError propagate: the cell is then "not emulated" or "script error".
    """
    rem = remediation if isinstance(remediation, Remediation) else load_remediation(remediation)
    if rem.target == "network":
        raise NotEmulated(str(rem.sidecar), 0, f"the network remediation {rem.id}",
                          "network devices are changed by the lab (Lab.run_remediation)")
    bound: dict[str, Any] = {}
    for name, spec in rem.parameters.items():
        role = NodeRef.parse(spec).role
        if role not in nodes:  # e.g. a client script about the gateway, in a lab without one
            raise TargetNodeMissing(str(rem.sidecar), role)
        value = _node_value(nodes, spec)
        if value is not None:
            bound[name] = value
    bound.update(params or {})
    result = RemediationResult(rem.id)
    for role in TARGETS[rem.target]:
        if role not in nodes:
            raise TargetNodeMissing(str(rem.sidecar), role)
        result.results.append(run_script(rem.script, nodes[role], bound))
    return result
