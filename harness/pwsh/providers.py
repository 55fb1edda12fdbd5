"""PowerShell provider paths: Registry (HKLM:, HKCU:, Registry::), Cert:, the C: drive and the
RemoteDesktopServices provider's RDS: drive (RDS:\\GatewayServer on an RD Gateway)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.windows.registry import HIVES, canonical

from .errors import CmdletError

CWD = "C:\\Windows\\System32"
_HIVE_DRIVE = re.compile(r"^(HKLM|HKCU|HKU|HKCR|HKCC):", re.IGNORECASE)


@dataclass(frozen=True)
class ProviderPath:
    kind: str  # registry | cert | fs | rds
    path: str  # canonical registry path, Windows file path, cert path text, or RDS path parts
    store: str | None = None  # cert: store name
    item: str | None = None  # cert: thumbprint

    def display(self) -> str:
        if self.kind == "registry":
            hive, _, rest = self.path.partition("\\")
            short = {v: k for k, v in HIVES.items() if len(k) <= 4}.get(hive, hive)
            return f"{short}:\\{rest}"
        if self.kind == "rds":
            return f"RDS:\\{self.path}"
        return self.path


class UnsupportedPath(Exception):
    """A provider the model has no state for (Env:, Function:, CurrentUser certs…)."""


def resolve(text: str, cwd: str = CWD) -> ProviderPath:
    raw = text.strip().strip('"')
    path = re.sub(r"^Microsoft\.PowerShell\.(Core|Security)\\", "", raw, flags=re.IGNORECASE)
    lower = path.lower()
    if lower.startswith("registry::") or _HIVE_DRIVE.match(path):
        try:
            return ProviderPath("registry", canonical(path))
        except ValueError as exc:
            raise CmdletError(f"Cannot find path '{raw}' because it does not exist.",
                              "ObjectNotFound") from exc
    if lower.startswith(("cert:", "certificate::")):
        rest = path.split(":", 1)[1].lstrip(":").replace("/", "\\").strip("\\")
        parts = [p for p in rest.split("\\") if p]
        if not parts or parts[0].lower() != "localmachine":
            raise UnsupportedPath(f"certificate path {raw} (only Cert:\\LocalMachine\\<store>)")
        if len(parts) == 1:
            raise UnsupportedPath(f"listing certificate stores ({raw})")
        return ProviderPath("cert", raw, parts[1], parts[2].upper() if len(parts) > 2 else None)
    if lower.startswith(("rds:", "remotedesktopservices::rds:")):
        rest = path[lower.index("rds:") + 4:]
        parts = [p for p in rest.replace("/", "\\").split("\\") if p]
        return ProviderPath("rds", "\\".join(parts))
    if re.match(r"^[A-Za-z]+:", path) and not re.match(r"^[A-Za-z]:", path):
        raise UnsupportedPath(f"provider drive {path.split(':', 1)[0]}:")
    if re.match(r"^[A-Za-z]:", path):
        return ProviderPath("fs", path.replace("/", "\\"))
    if path.startswith("\\\\"):
        raise UnsupportedPath(f"UNC path {raw}")
    return ProviderPath("fs", cwd.rstrip("\\") + "\\" + path.replace("/", "\\").lstrip(".\\"))
