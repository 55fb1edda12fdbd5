"""A lab for your own tests: build it, break it, run a script on a node, probe it like a client.

    with open_lab("default", backend="loopback") as lab:
        lab.inject("expired-cert")
        assert lab.probe().symptom == "tls/cert_prompt:10"
        lab.run("host", "Restart-Service -Name TermService -Force")
        assert lab.probe().ok

The pytest plugin (`harness.pytest_plugin`) hands these out as the `rdp_lab` and
`rdp_lab_factory` fixtures. Everything goes through the typed lab contract
(`harness.lab.contract.LabBackend`): the same fault steps, script runner and probe a matrix cell
uses, on any backend.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import NotEmulated
from .lab import registry
from .lab.contract import LabBackend
from .lab.definition import LabSpec, load_lab
from .lab.factory import LabHandle
from .matrix.cell import bounded
from .probe.profiles import ClientProfile, load_profile
from .probe.result import ProbeResult
from .pwsh.remediation import TARGETS, load_remediation
from .pwsh.result import ScriptResult
from .scenario.actions import apply_step
from .scenario.catalog import SCENARIO_DIR, Fault, load_fault

NODES = ("client", "host", "gateway")


@dataclass(frozen=True)
class ProbeSettings:
    stage_timeout: float = 2.0
    usable_window: float = 1.5


class RdpLab:
    """A running lab seen from a test: `inject`, `run`, `probe`, `shell`; `close` tears down."""

    def __init__(self, spec: LabSpec, backend: str = "auto", *,
                 scenarios: Path | None = None, profile: str | None = None,
                 settings: ProbeSettings | None = None) -> None:
        self.spec = spec
        self.scenarios = Path(scenarios or SCENARIO_DIR)
        self.default_profile = profile
        self.settings = settings or ProbeSettings()
        self._handle = LabHandle(spec, registry.resolve(backend))
        self.lab: LabBackend = self._handle.__enter__()
        self._scripts = itertools.count(1)
        self._closed = False

    @property
    def backend(self) -> str:
        return self.lab.backend

    @property
    def nodes(self) -> dict[str, Any]:
        """The nodes' Windows models by role (registry, certificate store, services, ...)."""
        return self.lab.nodes

    # -- what a test does --------------------------------------------------------------------

    def inject(self, fault: str | Path | Fault) -> list[str]:
        """Apply a fault (an id from the scenario folder, a fault file, or a Fault); returns
        what each step did."""
        if isinstance(fault, Fault):
            loaded = fault
        else:
            path = Path(fault) if str(fault).endswith((".yaml", ".yml")) \
                else self.scenarios / f"{fault}.yaml"
            if not path.exists():
                raise ValueError(f"no fault {fault!r} (looked for {path})")
            loaded = load_fault(path)
        for requirement in loaded.requires:
            why = self.lab.unsupported(requirement)
            if why:
                raise NotEmulated(why, needs=requirement)
        effects = [apply_step(self.lab, step) for step in loaded.inject]
        self.lab.sync()
        return [effect.line for effect in effects]

    def run(self, node: str, script_or_text: str | Path) -> ScriptResult:
        """Run a script file or PowerShell text on a node, as the lab runs remediations (real
        PowerShell on the Vagrant backend); returns what it did."""
        if node not in NODES:
            raise ValueError(f"node {node!r}: use one of {', '.join(NODES)}")
        path = Path(script_or_text) if isinstance(script_or_text, Path) or (
            str(script_or_text).endswith(".ps1") and "\n" not in str(script_or_text)) else None
        text = path.read_text(encoding="utf-8-sig") if path else str(script_or_text)
        name = f"test-script-{next(self._scripts)}"
        folder = self.lab.workdir / "test-scripts"
        folder.mkdir(exist_ok=True)
        (folder / f"{name}.ps1").write_text(text, encoding="utf-8")
        (folder / f"{name}.yaml").write_text(yaml.safe_dump({
            "id": name, "title": f"{path.name if path else 'inline script'} (test)",
            "target": node, "source": "a test", "security_impact": "none", "notes": "test"}))
        result = self.lab.run_remediation(load_remediation(folder / f"{name}.yaml"))
        self.lab.sync()
        assert node in TARGETS and len(result.results) == 1
        return result.results[0]

    def probe(self, profile: str | ClientProfile | None = None) -> ProbeResult:
        """Connect like the client would now (the lab's profile, or the client program a fault
        made the user run): `.ok`, `.symptom` ('stage/event'), `.codes` per profile."""
        if profile is None:
            profile = self.lab.client_program or self.default_profile or self.spec.profile
        loaded = load_profile(profile) if isinstance(profile, str) else profile
        s = self.settings
        return self.lab.probe(bounded(loaded, s.stage_timeout), usable_window=s.usable_window,
                              overall_timeout=max(10.0, s.stage_timeout * 6))

    def shell(self, node: str) -> NodeShell:
        """A shell on a node: `shell.run(text)` (also `shell(text)`), one command at a time."""
        if node not in self.lab.nodes:
            raise ValueError(f"the lab has no {node} node; it has {', '.join(self.lab.nodes)}")
        return NodeShell(self, node)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._handle.__exit__(None, None, None)

    def __enter__(self) -> RdpLab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class NodeShell:
    lab: RdpLab
    node: str

    def run(self, text: str) -> ScriptResult:
        return self.lab.run(self.node, text)

    __call__ = run

    @property
    def model(self) -> Any:
        """The node's Windows model, to assert on (registry, services, certificates)."""
        return self.lab.nodes[self.node]


@contextlib.contextmanager
def open_lab(lab: str | Path = "default", backend: str = "auto", **kw: Any) -> Iterator[RdpLab]:
    """A fresh lab, torn down when the block ends (also on failure)."""
    rdp = RdpLab(load_lab(lab), backend, **kw)
    try:
        yield rdp
    finally:
        rdp.close()
