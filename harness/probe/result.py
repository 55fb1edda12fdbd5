"""The probe's result: a stage trace, the verdict, and the codes each client would show."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Exit status of `rdplab probe` per failed stage (documented in the README).
EXIT_USABLE = 0
EXIT_USAGE = 2
EXIT_BY_STAGE = {
    "tcp": 10,
    "negotiation": 11,
    "tls": 12,
    "credssp": 13,
    "mcs": 14,
    "client_info": 15,
    "licensing": 15,
    "capabilities": 15,
    "finalisation": 15,
    "usable": 16,
    "gateway_tcp": 20,
    "gateway_tls": 21,
    "gateway_http": 22,
    "gateway_tunnel": 23,
}
EXIT_ERROR_INFO = 17  # the server sent Set Error Info, whatever the stage


@dataclass
class StageRecord:
    stage: str
    outcome: str  # ok | failed | warning
    seconds: float
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "outcome": self.outcome,
                "seconds": round(self.seconds, 6), "detail": self.detail}


@dataclass
class Failure:
    stage: str
    event: str
    reason: str
    detail: dict[str, Any] = field(default_factory=dict)
    error_info: int | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"stage": self.stage, "event": self.event, "reason": self.reason,
                               "detail": self.detail}
        if self.error_info is not None:
            out["error_info"] = f"{self.error_info:#x}"
        return out


@dataclass
class ProbeResult:
    target: str
    profile: str
    stages: list[StageRecord] = field(default_factory=list)
    failure: Failure | None = None
    warnings: list[dict[str, Any]] = field(default_factory=list)
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    update_bytes: int = 0
    capture: dict[str, Any] | None = None  # pcap and key log of this probe (--pcap)

    @property
    def ok(self) -> bool:
        return self.failure is None and any(
            s.stage == "usable" and s.outcome == "ok" for s in self.stages
        )

    @property
    def failed_stage(self) -> str | None:
        return self.failure.stage if self.failure else None

    @property
    def symptom(self) -> str | None:
        """'stage/event' of the failure, or of the first warning, or None for a clean session."""
        if self.failure:
            return f"{self.failure.stage}/{self.failure.event}"
        if self.warnings:
            return f"{self.warnings[0]['stage']}/{self.warnings[0]['event']}"
        return None

    def exit_status(self) -> int:
        if self.failure is None:
            return EXIT_USABLE if self.ok else EXIT_BY_STAGE["usable"]
        if self.failure.error_info is not None:
            return EXIT_ERROR_INFO
        return EXIT_BY_STAGE.get(self.failure.stage, 1)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "failed_stage": self.failed_stage,
            "failure": self.failure.as_dict() if self.failure else None,
            "warnings": self.warnings,
            "stages": [s.as_dict() for s in self.stages],
            "codes": self.codes,
            "target": self.target,
            "profile": self.profile,
            "update_bytes": self.update_bytes,
            **({"capture": self.capture} if self.capture else {}),
        }
