"""Objects that flow through pipelines, with the properties scripts read (case-insensitive)."""

from __future__ import annotations

from typing import Any


class PsObject:
    """Base: `props()` is what Select-Object / member access see; str() is the display."""

    type_name = "System.Object"

    def props(self) -> dict[str, Any]:
        return {}

    def prop(self, name: str) -> Any:
        for key, value in self.props().items():
            if key.lower() == name.lower():
                return value
        return None

    def __str__(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.props().items())


class ServiceObject(PsObject):
    type_name = "System.ServiceProcess.ServiceController"

    def __init__(self, service: Any) -> None:
        self.service = service

    def props(self) -> dict[str, Any]:
        s = self.service
        return {"Name": s.name, "ServiceName": s.name, "DisplayName": s.display_name,
                "Status": s.status, "StartType": s.start_type}

    def __str__(self) -> str:
        return f"{self.service.status:<8} {self.service.name:<16} {self.service.display_name}"


class CertObject(PsObject):
    type_name = "System.Security.Cryptography.X509Certificates.X509Certificate2"

    def __init__(self, item: Any, store: str) -> None:
        self.item, self.store = item, store

    @property
    def ps_path(self) -> str:
        return f"Cert:\\LocalMachine\\{self.store}\\{self.item.thumbprint}"

    def props(self) -> dict[str, Any]:
        return {"Thumbprint": self.item.thumbprint, "Subject": self.item.subject,
                "SerialNumber": self.item.serial.upper(), "NotBefore": self.item.not_before,
                "NotAfter": self.item.not_after, "HasPrivateKey": self.item.key_name is not None,
                "PSPath": self.ps_path, "PSParentPath": f"Cert:\\LocalMachine\\{self.store}"}

    def __str__(self) -> str:
        return f"{self.item.thumbprint}  {self.item.subject}"


class FileObject(PsObject):
    type_name = "System.IO.FileInfo"

    def __init__(self, path: str, is_dir: bool) -> None:
        self.path, self.is_dir = path, is_dir
        if is_dir:
            self.type_name = "System.IO.DirectoryInfo"

    @property
    def ps_path(self) -> str:
        return self.path

    def props(self) -> dict[str, Any]:
        return {"Name": self.path.rsplit("\\", 1)[-1], "FullName": self.path,
                "PSPath": self.path, "PSIsContainer": self.is_dir}

    def __str__(self) -> str:
        return self.path


class RegistryKeyObject(PsObject):
    type_name = "Microsoft.Win32.RegistryKey"

    def __init__(self, path: str) -> None:
        self.path = path

    @property
    def ps_path(self) -> str:
        return f"Registry::{self.path}"

    def props(self) -> dict[str, Any]:
        return {"Name": self.path, "PSPath": self.ps_path,
                "PSChildName": self.path.rsplit("\\", 1)[-1]}

    def __str__(self) -> str:
        return self.path


class ItemPropertyObject(PsObject):
    """Get-ItemProperty's result: one property per registry value, plus PSPath."""

    def __init__(self, path: str, values: dict[str, Any]) -> None:
        self.path, self.values = path, values

    def props(self) -> dict[str, Any]:
        return {**self.values, "PSPath": f"Registry::{self.path}"}

    def __str__(self) -> str:
        return "\n".join(f"{k} : {v}" for k, v in self.values.items())


class FirewallRuleObject(PsObject):
    type_name = "Microsoft.Management.Infrastructure.CimInstance#MSFT_NetFirewallRule"

    def __init__(self, rule: Any) -> None:
        self.rule = rule

    def props(self) -> dict[str, Any]:
        r = self.rule
        return {"Name": r.name, "DisplayName": r.display_name, "DisplayGroup": r.display_group,
                "Group": r.group, "Enabled": "True" if r.enabled else "False",
                "Action": r.action, "Direction": r.direction}

    def __str__(self) -> str:
        return f"{self.rule.display_name}  Enabled={self.rule.enabled}  {self.rule.action}"


class NicObject(PsObject):
    type_name = "Microsoft.Management.Infrastructure.CimInstance#MSFT_NetIPInterface"

    def __init__(self, nic: Any) -> None:
        self.nic = nic

    def props(self) -> dict[str, Any]:
        return {"InterfaceAlias": self.nic.alias, "NlMtu": self.nic.mtu,
                "AddressFamily": "IPv4"}

    def __str__(self) -> str:
        return f"{self.nic.alias}  NlMtu={self.nic.mtu}"


def to_text(value: Any) -> str:
    """How PowerShell turns a value into a string (in "…" and for native arguments)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, list | tuple):
        return " ".join(to_text(v) for v in value)
    if isinstance(value, bytes):
        return " ".join(str(b) for b in value)
    if isinstance(value, dict):  # Select-Object's output: Format-List, as the console shows it
        width = max((len(str(k)) for k in value), default=0)
        return "\n".join(f"{k!s:<{width}} : {to_text(v)}" for k, v in value.items())
    return str(value)


def get_prop(value: Any, name: str) -> Any:
    """Member access; on a collection, member enumeration (PowerShell 3+)."""
    if isinstance(value, list):
        found = [get_prop(v, name) for v in value]
        return [f for f in found if f is not None]
    if isinstance(value, PsObject):
        return value.prop(name)
    if isinstance(value, str) and name.lower() == "length":
        return len(value)
    if isinstance(value, dict):
        return next((v for k, v in value.items() if k.lower() == name.lower()), None)
    return None
