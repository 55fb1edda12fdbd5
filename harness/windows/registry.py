"""The registry: typed values at real paths; key and value names case-insensitive."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from .journal import ActionJournal

TERMINAL_SERVER = r"HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Control\Terminal Server"
RDP_TCP = TERMINAL_SERVER + r"\WinStations\RDP-Tcp"
TS_POLICY = r"HKEY_LOCAL_MACHINE\SOFTWARE\Policies\Microsoft\Windows NT\Terminal Services"
CREDSSP_PARAMETERS = (r"HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows\CurrentVersion\Policies"
                      r"\System\CredSSP\Parameters")
SCHANNEL_PROTOCOLS = (r"HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Control\SecurityProviders"
                      r"\SCHANNEL\Protocols")
W32TIME_CONFIG = r"HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Services\W32Time\Config"
W32TIME_PARAMETERS = r"HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Services\W32Time\Parameters"
CRYPTOGRAPHY = r"HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Cryptography"
MSTSC_DEFAULT = r"HKEY_CURRENT_USER\Software\Microsoft\Terminal Server Client\Default"

HIVES = {
    "HKEY_LOCAL_MACHINE": "HKEY_LOCAL_MACHINE", "HKLM": "HKEY_LOCAL_MACHINE",
    "HKEY_CURRENT_USER": "HKEY_CURRENT_USER", "HKCU": "HKEY_CURRENT_USER",
    "HKEY_USERS": "HKEY_USERS", "HKU": "HKEY_USERS",
    "HKEY_CLASSES_ROOT": "HKEY_CLASSES_ROOT", "HKCR": "HKEY_CLASSES_ROOT",
    "HKEY_CURRENT_CONFIG": "HKEY_CURRENT_CONFIG", "HKCC": "HKEY_CURRENT_CONFIG",
}


class RegType(StrEnum):
    REG_SZ = "REG_SZ"
    REG_EXPAND_SZ = "REG_EXPAND_SZ"
    REG_MULTI_SZ = "REG_MULTI_SZ"
    REG_DWORD = "REG_DWORD"
    REG_QWORD = "REG_QWORD"
    REG_BINARY = "REG_BINARY"


# PowerShell's -Type / -PropertyType names
PS_TYPE_NAMES = {
    "string": RegType.REG_SZ, "expandstring": RegType.REG_EXPAND_SZ,
    "multistring": RegType.REG_MULTI_SZ, "dword": RegType.REG_DWORD,
    "qword": RegType.REG_QWORD, "binary": RegType.REG_BINARY,
}


class RegistryError(Exception):
    """A path or value the registry refuses (unknown hive, bad data for a type)."""


@dataclass(frozen=True)
class RegValue:
    name: str
    type: RegType
    data: int | str | tuple[str, ...] | bytes

    def to_json(self) -> dict[str, Any]:
        data = self.data
        if isinstance(data, bytes):
            data = data.hex()
        elif isinstance(data, tuple):
            data = list(data)
        return {"type": str(self.type), "data": data}


@dataclass
class _Key:
    name: str
    subkeys: dict[str, _Key] = field(default_factory=dict)
    values: dict[str, RegValue] = field(default_factory=dict)


def split_path(path: str) -> tuple[str, list[str]]:
    """Canonical hive and key names from any spelling Windows tools accept.

    HKLM:\\X, HKLM:X, HKLM\\X, HKEY_LOCAL_MACHINE\\X, Registry::HKEY_LOCAL_MACHINE\\X.
    """
    text = path.replace("/", "\\").strip()
    if "::" in text:
        provider, text = text.split("::", 1)
        if not provider.lower().endswith("registry"):
            raise RegistryError(f"not a registry path: {path}")
    head, _, rest = text.partition("\\")
    head = head.rstrip(":")
    if ":" in head:  # HKLM:SOFTWARE
        head, _, first = head.partition(":")
        rest = first + ("\\" + rest if rest else "")
    hive = HIVES.get(head.upper())
    if hive is None:
        raise RegistryError(f"unknown registry hive in {path!r}")
    return hive, [part for part in rest.split("\\") if part]


def canonical(path: str) -> str:
    hive, parts = split_path(path)
    return "\\".join([hive, *parts])


def coerce(reg_type: RegType | str, data: Any) -> int | str | tuple[str, ...] | bytes:
    """The data as Windows stores it for the type; RegistryError when it does not fit."""
    kind = RegType(str(reg_type).upper())
    try:
        if kind in (RegType.REG_DWORD, RegType.REG_QWORD):
            number = data if isinstance(data, int) else int(str(data).strip(), 0)
            bits = 32 if kind is RegType.REG_DWORD else 64
            if number < 0:
                number &= (1 << bits) - 1
            if number >= 1 << bits:
                raise RegistryError(f"{number} does not fit {kind}")
            return int(number)
        if kind is RegType.REG_MULTI_SZ:
            if isinstance(data, str):
                return tuple(part for part in data.split("\\0") if part)
            return tuple(str(part) for part in data)
        if kind is RegType.REG_BINARY:
            if isinstance(data, bytes | bytearray):
                return bytes(data)
            if isinstance(data, list | tuple):
                return bytes(int(b) for b in data)
            return bytes.fromhex(str(data).replace(",", "").replace(" ", ""))
        return str(data)
    except (TypeError, ValueError) as exc:
        raise RegistryError(f"{data!r} is not valid {kind} data") from exc


class Registry:
    """All hives of one node. Mutations are journaled."""

    def __init__(self, journal: ActionJournal | None = None) -> None:
        self._hives = {name: _Key(name) for name in set(HIVES.values())}
        self.journal = journal if journal is not None else ActionJournal()

    def _find(self, path: str, create: bool = False) -> _Key | None:
        hive, parts = split_path(path)
        key = self._hives[hive]
        for part in parts:
            child = key.subkeys.get(part.lower())
            if child is None:
                if not create:
                    return None
                child = key.subkeys[part.lower()] = _Key(part)
                self.journal.record("registry", "\\".join([hive, *parts]) + " (key)", None,
                                    "created")
            key = child
        return key

    def key_exists(self, path: str) -> bool:
        return self._find(path) is not None

    def create_key(self, path: str) -> bool:
        """Create the key and its parents; False when it existed."""
        existed = self.key_exists(path)
        self._find(path, create=True)
        return not existed

    def delete_key(self, path: str) -> bool:
        hive, parts = split_path(path)
        if not parts:
            raise RegistryError("a hive cannot be deleted")
        parent = self._find("\\".join([hive, *parts[:-1]]))
        if parent is None or parts[-1].lower() not in parent.subkeys:
            return False
        del parent.subkeys[parts[-1].lower()]
        self.journal.record("registry", canonical(path) + " (key)", "present", None)
        return True

    def get(self, path: str, name: str) -> RegValue | None:
        key = self._find(path)
        return None if key is None else key.values.get(name.lower())

    def value(self, path: str, name: str, default: Any = None) -> Any:
        """The data of a value, or default when the key or value is absent."""
        found = self.get(path, name)
        return default if found is None else found.data

    def set(self, path: str, name: str, data: Any, reg_type: RegType | str = RegType.REG_DWORD,
            ) -> RegValue:
        """Create or overwrite a value (and its key), as `reg add /f` does."""
        kind = RegType(str(reg_type).upper())
        value = RegValue(name, kind, coerce(kind, data))
        key = self._find(path, create=True)
        assert key is not None
        before = key.values.get(name.lower())
        key.values[name.lower()] = value
        if before != value:
            self.journal.record("registry", f"{canonical(path)}\\{name}",
                                before.to_json() if before else None, value.to_json())
        return value

    def delete_value(self, path: str, name: str) -> bool:
        key = self._find(path)
        if key is None or name.lower() not in key.values:
            return False
        before = key.values.pop(name.lower())
        self.journal.record("registry", f"{canonical(path)}\\{name}", before.to_json(), None)
        return True

    def values(self, path: str) -> list[RegValue]:
        key = self._find(path)
        return [] if key is None else list(key.values.values())

    def subkeys(self, path: str) -> list[str]:
        key = self._find(path)
        return [] if key is None else [k.name for k in key.subkeys.values()]

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Every key that holds values: {path: {name: {type, data}}}."""
        out: dict[str, dict[str, Any]] = {}

        def walk(key: _Key, path: str) -> None:
            if key.values:
                out[path] = {v.name: v.to_json() for v in key.values.values()}
            for child in key.subkeys.values():
                walk(child, f"{path}\\{child.name}")

        for hive in sorted(self._hives):
            walk(self._hives[hive], hive)
        return out
