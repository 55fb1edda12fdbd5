"""Client profiles: how a real client behaves and which codes it shows, loaded from YAML.

A profile is data (harness/data/profiles/*.yaml): the protocols it offers, its TLS and CredSSP
settings, its certificate policy and timeouts, and an ordered table mapping a failure (stage +
event) to the codes that client shows, each row with its source and confidence.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

from ..errors import ConfigError, ProfileError
from ..rdp.events import STAGES
from ..rdp.x224 import Protocol
from ..scenario.schema import load_checked

PROFILE_DIR = Path(__file__).resolve().parent.parent / "data" / "profiles"
CERT_POLICIES = ("ignore", "warn", "strict")
CONFIDENCE = ("doc", "run", "open")


@dataclass(frozen=True)
class CodeRow:
    stage: str
    event: str
    show: dict[str, Any]
    source: str
    confidence: str

    def matches(self, stage: str, event: str) -> bool:
        return fnmatch.fnmatchcase(stage, self.stage) and fnmatch.fnmatchcase(event, self.event)


@dataclass(frozen=True)
class ClientProfile:
    """A client's behaviour and its code table."""

    name: str
    description: str
    requested_protocols: int
    cookie: str | None
    tls_min: str
    tls_max: str
    credssp_version: int | None
    allow_encryption_oracle: int
    cert_policy: str
    timeouts: dict[str, float]
    usable_min_bytes: int
    codes: tuple[CodeRow, ...] = field(default=())
    # True for clients built on Windows' own CredSSP and Schannel (mstsc): the client machine's
    # patch level, registry policy and TLS settings then apply; FreeRDP brings its own stack.
    os_security: bool = False
    # Speaks Standard RDP Security when the server selects it, and connects again offering it
    # alone after SSL_NOT_ALLOWED_BY_SERVER (mstsc, FreeRDP, rdesktop: rdp-facts §14).
    rdp_security: bool = True
    # "negotiate": SPNEGO as Windows' Negotiate package (Kerberos first in a domain, NTLM
    # fallback); "ntlm": raw NTLM in negoTokens, as FreeRDP 2 sends it.
    credssp_package: str = "ntlm"

    @property
    def offers_nla(self) -> bool:
        return bool(self.requested_protocols & (Protocol.HYBRID | Protocol.HYBRID_EX))

    def timeout(self, stage: str, default: float = 10.0) -> float:
        return float(self.timeouts.get(stage, default))

    def with_overrides(self, **changes: Any) -> ClientProfile:
        return replace(self, **changes)

    def codes_for(
        self, stage: str | None, event: str | None, error_info: int | None = None
    ) -> dict[str, Any]:
        """The codes this client shows for a failure (or a success when stage is None)."""
        if stage is None or event is None:
            return {"result": "connected", "source": "session usable", "confidence": "run"}
        for row in self.codes:
            if row.matches(stage, event):
                return {**_render(row.show, error_info), "source": row.source,
                        "confidence": row.confidence}
        return {"result": "unmapped", "stage": stage, "event": event, "confidence": "open",
                "source": f"no row in profile {self.name} matches"}


def _render(show: dict[str, Any], error_info: int | None) -> dict[str, Any]:
    from ..rdp.errinfo import describe_name  # deferred: the code table is data loaded on use

    out: dict[str, Any] = {}
    for key, value in show.items():
        if isinstance(value, str) and "{" in value and error_info is not None:
            value = value.format(
                error_info=f"{error_info:#x}",
                error_info_dec=error_info,
                error_info_name=describe_name(error_info),
            )
            if key == "exit":
                value = int(value)
        out[key] = value
    return out


def _fail(path: Path, field_name: str, what: str) -> ProfileError:
    return ProfileError(path, None, field_name, what)


def _protocols(path: Path, names: Any) -> int:
    if not isinstance(names, list) or not names:
        raise _fail(path, "client.requested_protocols", "a non-empty list such as [SSL, HYBRID]")
    flags = 0
    for name in names:
        flags |= Protocol[str(name)]  # the schema lists the names
    return flags


def _rows(rows: list[dict[str, Any]]) -> tuple[CodeRow, ...]:
    return tuple(CodeRow(str(row["stage"]), str(row["event"]), dict(row["show"]),
                         str(row["source"]), str(row["confidence"])) for row in rows)


def _raw(name_or_path: str, seen: tuple[Path, ...] = ()) -> tuple[Path, dict[str, Any]]:
    """A profile file checked against client-profile.schema.json, merged over the profile it
    `inherits` (its `client` settings key by key; its codes when it has none)."""
    path = Path(name_or_path)
    if not path.suffix:
        path = PROFILE_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in PROFILE_DIR.glob("*.yaml")))
        raise ProfileError(f"no client profile {name_or_path!r} (known: {known})")
    try:
        doc = load_checked(path, "client-profile")
    except ProfileError:
        raise
    except ConfigError as exc:
        raise ProfileError(exc.path, exc.line, exc.field, exc.message) from None
    data = dict(doc.data)
    parent = data.get("inherits")
    if parent:
        if path in seen:
            raise ProfileError(path, doc.line_of(("inherits",)), "inherits",
                               "profiles inherit from each other in a circle")
        try:
            _, base = _raw(str(parent), (*seen, path))
        except ProfileError as exc:
            if exc.path is None:  # no such profile: say where it was named
                raise ProfileError(path, doc.line_of(("inherits",)), "inherits",
                                   exc.message) from None
            raise
        merged = {**base, **{k: v for k, v in data.items() if k != "client"}}
        merged["client"] = {**base.get("client", {}), **data.get("client", {})}
        if "codes" not in data:
            merged["codes"] = base.get("codes", [])
        data = merged
    elif "client" not in data:
        raise ProfileError(path, 1, "client", "is missing (or give `inherits`)")
    return path, data


@cache
def load_profile(name_or_path: str) -> ClientProfile:
    """Load a profile by name (from the package data) or by path to a YAML file."""
    path, data = _raw(name_or_path)
    client = data["client"]
    policy = client.get("cert_policy", "warn")
    cssp = client.get("credssp_version")
    oracle = client.get("allow_encryption_oracle", 1)
    package = client.get("credssp_package", "ntlm")
    timeouts = client.get("timeouts", {})
    return ClientProfile(
        name=str(data.get("name", path.stem)),
        description=str(data.get("description", "")),
        requested_protocols=_protocols(path, client.get("requested_protocols")),
        cookie=client.get("cookie"),
        tls_min=str(client.get("tls_min", "TLSv1.2")),
        tls_max=str(client.get("tls_max", "TLSv1.3")),
        credssp_version=cssp,
        allow_encryption_oracle=int(oracle),
        cert_policy=policy,
        timeouts={str(k): float(v) for k, v in timeouts.items()},
        usable_min_bytes=int(client.get("usable_min_bytes", 16384)),
        codes=_rows(data.get("codes", [])),
        os_security=bool(client.get("os_security", False)),
        rdp_security=bool(client.get("rdp_security", True)),
        credssp_package=str(package),
    )


def profile_names() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


def bounded(profile: ClientProfile, stage_timeout: float) -> ClientProfile:
    """The profile with every stage timeout capped: a timeout is classified the same, sooner."""
    stages = [stage for stage in STAGES if stage != "usable"]  # the core's list, not a copy
    timeouts = {s: min(profile.timeout(s), stage_timeout) for s in stages}
    return profile.with_overrides(timeouts={**profile.timeouts, **timeouts})
