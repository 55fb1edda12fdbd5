"""How Windows reads its effective settings from the registry and the OS patch level.

Group Policy values (HKLM\\SOFTWARE\\Policies\\...) win over the local ones; an absent SCHANNEL
value means the OS default; an unpatched CredSSP ignores AllowEncryptionOracle (it enforces
nothing, which is what "Vulnerable" means).
"""

from __future__ import annotations

from typing import Any

from .os_profiles import SCHANNEL_NAMES, TLS_ORDER, OsProfile
from .registry import CREDSSP_PARAMETERS, RDP_TCP, SCHANNEL_PROTOCOLS, TS_POLICY, Registry


def policy_dword(registry: Registry, name: str, local_path: str, default: int) -> int:
    """A Terminal Services setting: the Group Policy value if set, else the local one."""
    value = registry.value(TS_POLICY, name)
    if isinstance(value, int):
        return value
    value = registry.value(local_path, name)
    return value if isinstance(value, int) else default


def security_layer(registry: Registry) -> int:
    return policy_dword(registry, "SecurityLayer", RDP_TCP, 1)


def min_encryption_level(registry: Registry) -> int:
    """MinEncryptionLevel (Standard RDP Security): 1 low, 2 client compatible, 3 high, 4 FIPS."""
    return policy_dword(registry, "MinEncryptionLevel", RDP_TCP, 2)


def user_authentication(registry: Registry) -> bool:
    return policy_dword(registry, "UserAuthentication", RDP_TCP, 1) != 0


SchannelValues = dict[str, dict[str, Any]]


def capture_schannel(registry: Registry) -> SchannelValues:
    """The SCHANNEL\\Protocols values Schannel loaded: it reads them at boot only."""
    out: SchannelValues = {}
    for protocol in registry.subkeys(SCHANNEL_PROTOCOLS):
        for side in registry.subkeys(f"{SCHANNEL_PROTOCOLS}\\{protocol}"):
            key = f"{SCHANNEL_PROTOCOLS}\\{protocol}\\{side}"
            out[f"{protocol}\\{side}".lower()] = {v.name.lower(): v.data
                                                  for v in registry.values(key)}
    return out


def schannel_protocols(values: SchannelValues, profile: OsProfile, features: dict[str, Any],
                       side: str, rdp: bool = False) -> list[str]:
    """TLS versions Schannel will negotiate on `side` (Server|Client), in order.

    A protocol is used when the OS supports it (for the RDP listener: the RDP stack too),
    its `Enabled` is non-zero and its `DisabledByDefault` is zero, each defaulting per OS.
    `values` is what capture_schannel() read at the last boot.
    """
    supported = set(profile.tls_supported)
    if rdp:
        supported &= set(features.get("rdp_tls", profile.tls_supported))
    default_on = set(profile.tls_enabled_by_default[side.lower()])
    usable = []
    for version in TLS_ORDER:
        if version not in supported:
            continue
        found = values.get(f"{SCHANNEL_NAMES[version]}\\{side}".lower(), {})
        enabled = found.get("enabled")
        disabled_by_default = found.get("disabledbydefault")
        on = version in default_on
        if isinstance(enabled, int):
            on = enabled != 0 and (version in default_on or isinstance(disabled_by_default, int))
        if isinstance(disabled_by_default, int):
            on = on and disabled_by_default == 0
        if on:
            usable.append(version)
    return usable


def allow_encryption_oracle(registry: Registry, features: dict[str, Any]) -> int:
    """0 force updated clients, 1 mitigated, 2 vulnerable (also: an unpatched CredSSP)."""
    if not features["credssp_patched"]:
        return 2
    value = registry.value(CREDSSP_PARAMETERS, "AllowEncryptionOracle")
    if isinstance(value, int) and value in (0, 1, 2):
        return value
    return int(features["allow_encryption_oracle_default"])
