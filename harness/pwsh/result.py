"""What running a script did: one Effect per command, with the node's journal entries."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Effect:
    """One executed command: its source line and text, what it did, the state changes."""

    line: int
    command: str
    effects: list[str] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)
    exit_code: int | None = None
    error: str | None = None


@dataclass
class ScriptResult:
    file: str
    node: str
    effects: list[Effect] = field(default_factory=list)
    output: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # non-terminating: native exit codes, -EA
    rebooted: bool = False
    exit_code: int = 0  # `exit N`, else 0
    last_exit_code: int | None = None  # $LASTEXITCODE of the last native command

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RemediationResult:
    remediation: str
    results: list[ScriptResult] = field(default_factory=list)

    @property
    def rebooted(self) -> bool:
        return any(r.rebooted for r in self.results)

    def to_json(self) -> dict[str, Any]:
        return {"remediation": self.remediation, "results": [r.to_json() for r in self.results]}
