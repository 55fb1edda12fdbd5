"""OS profiles (harness/data/os/*.yaml) and the patch level Windows Update moves."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, ProfileError

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "os"
TLS_ORDER = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
SCHANNEL_NAMES = {"TLSv1": "TLS 1.0", "TLSv1.1": "TLS 1.1", "TLSv1.2": "TLS 1.2",
                  "TLSv1.3": "TLS 1.3"}


@dataclass(frozen=True)
class Update:
    kb: str
    title: str
    effects: dict[str, Any]


@dataclass(frozen=True)
class OsProfile:
    id: str
    product: str
    kind: str  # client | server
    build: int
    tls_supported: tuple[str, ...]
    rdp_tls: tuple[str, ...]  # versions the RDP stack itself can use (before updates)
    tls_enabled_by_default: dict[str, tuple[str, ...]]  # server/client -> versions
    credssp_version: int
    credssp_patched: bool
    allow_encryption_oracle_default: int
    nla_capable: bool
    max_outstanding_connections: int
    services: dict[str, dict[str, Any]]
    updates: tuple[Update, ...]
    registry: tuple[tuple[str, str, str, Any], ...]
    firewall_rules: tuple[dict[str, Any], ...]
    sources: tuple[str, ...] = ()

    def update(self, kb: str) -> Update | None:
        return next((u for u in self.updates if u.kb.upper() == kb.upper()), None)


@dataclass
class PatchLevel:
    """Installed and pending (installed, awaiting reboot) updates of one node."""

    profile: OsProfile
    installed: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)

    def features(self) -> dict[str, Any]:
        """The OS features after the installed updates, in catalogue order."""
        out: dict[str, Any] = {
            "credssp_version": self.profile.credssp_version,
            "credssp_patched": self.profile.credssp_patched,
            "allow_encryption_oracle_default": self.profile.allow_encryption_oracle_default,
            "rdp_tls": list(self.profile.rdp_tls),
        }
        for update in self.profile.updates:
            if update.kb in self.installed:
                out.update(update.effects)
        return out

    def available(self) -> list[Update]:
        done = set(self.installed) | set(self.pending)
        return [u for u in self.profile.updates if u.kb not in done]


def _tuple(value: Any) -> tuple[Any, ...]:
    return tuple(value or ())


@functools.cache
def _common() -> dict[str, Any]:
    return dict(_checked(DATA_DIR / "common.yaml", "os-common").data)


def _checked(path: Path, kind: str) -> Any:
    """The one config loader (scenario/schema.py), its errors as ProfileError."""
    from ..scenario.schema import load_checked

    try:
        return load_checked(path, kind)
    except ProfileError:
        raise
    except ConfigError as exc:
        raise ProfileError(exc.path, exc.line, exc.field, exc.message) from None


@functools.cache
def load_profile(profile_id: str) -> OsProfile:
    path = DATA_DIR / f"{profile_id}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in DATA_DIR.glob("windows-*.yaml"))
        raise ProfileError(f"unknown OS profile {profile_id!r}; known: {', '.join(known)}")
    doc = _checked(path, "os-profile")
    data = doc.data
    common = _common()
    rule_set = data.get("firewall_rules", "modern")
    if rule_set not in common["firewall_rules"]:
        raise ProfileError(path, doc.line_of(("firewall_rules",)), "firewall_rules",
                           f"no rule set {rule_set!r} in common.yaml "
                           f"(known: {', '.join(common['firewall_rules'])})")
    try:
        credssp = data["credssp"]
        rules = common["firewall_rules"][data.get("firewall_rules", "modern")]
        registry = [tuple(r) for r in common["registry"]] + [tuple(r) for r in
                                                               data.get("registry", [])]
        return OsProfile(
            id=data["id"], product=data["product"], kind=data["kind"], build=int(data["build"]),
            tls_supported=_tuple(data["tls_supported"]),
            rdp_tls=_tuple(data.get("rdp_tls", data["tls_supported"])),
            tls_enabled_by_default={k: _tuple(v) for k, v in
                                    data["tls_enabled_by_default"].items()},
            credssp_version=int(credssp["version"]), credssp_patched=bool(credssp["patched"]),
            allow_encryption_oracle_default=int(credssp["allow_encryption_oracle_default"]),
            nla_capable=bool(data.get("nla_capable", True)),
            max_outstanding_connections=int(data["max_outstanding_connections"]),
            services=dict(data["services"]),
            updates=tuple(Update(u["kb"], u.get("title", ""), dict(u["effects"]))
                          for u in data.get("updates", [])),
            registry=tuple(registry),  # type: ignore[arg-type]
            firewall_rules=tuple(rules),
            sources=_tuple(data.get("sources")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ProfileError(f"{path}: malformed OS profile: {exc!r}") from exc
