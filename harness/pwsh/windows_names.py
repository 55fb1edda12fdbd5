"""The command and parameter names that exist on Windows (harness/data/pwsh/windows-commands.yaml).

They tell a misspelling, which Windows rejects (CommandNotFoundException,
ParameterBindingException: the fix does not happen), from a real name the lab does not model
(not emulated).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

DATA = Path(__file__).resolve().parents[1] / "data" / "pwsh" / "windows-commands.yaml"


@dataclass(frozen=True)
class RealCommand:
    name: str
    module: str
    params: frozenset[str] | None  # None: real, parameters not listed


@dataclass(frozen=True)
class WindowsNames:
    commands: dict[str, RealCommand]  # lower-case name -> command
    aliases: dict[str, str]  # lower-case alias -> command name
    functions: frozenset[str]
    programs: frozenset[str]
    common: tuple[str, ...]
    should_process: tuple[str, ...]
    cim: tuple[str, ...]
    cim_modules: frozenset[str]
    source: str

    def command(self, name: str) -> RealCommand | None:
        key = name.lower()
        return self.commands.get(self.aliases.get(key, key).lower())

    def is_real(self, name: str) -> bool:
        key = name.lower()
        return (key in self.aliases or key in self.commands or key in self.functions
                or key.removesuffix(".exe") in self.programs)

    def parameters(self, name: str) -> list[str] | None:
        """Every parameter name the command takes on Windows (common ones included), or None."""
        command = self.command(name)
        if command is None or command.params is None:
            return None
        extra = list(self.common) + list(self.should_process)
        if command.module in self.cim_modules:
            extra += list(self.cim)
        return sorted(command.params) + extra


@lru_cache(maxsize=1)
def windows_names() -> WindowsNames:
    data = yaml.safe_load(DATA.read_text())
    commands: dict[str, RealCommand] = {}
    provider = {k.lower(): v for k, v in (data.get("provider_parameters") or {}).items()}
    cim_modules = set()
    for module, spec in data["modules"].items():
        if spec.get("cim"):
            cim_modules.add(module)
        for name, params in (spec.get("commands") or {}).items():
            names = None if params is None else frozenset(
                list(params) + list(provider.get(name.lower(), [])))
            commands[name.lower()] = RealCommand(name, module, names)
    return WindowsNames(
        commands=commands,
        aliases={str(k).lower(): str(v) for k, v in data["aliases"].items()},
        functions=frozenset(f.lower() for f in data["functions"]),
        programs=frozenset(p.lower() for p in data["programs"]),
        common=tuple(data["common_parameters"]),
        should_process=tuple(data["should_process_parameters"]),
        cim=tuple(data["cim_parameters"]), cim_modules=frozenset(cim_modules),
        source=str(data["source"]))


def command_not_found(name: str) -> str:
    """Windows PowerShell's message for a name that is no command (CommandNotFoundException)."""
    return (f"CommandNotFoundException: The term '{name}' is not recognized as the name of a "
            "cmdlet, function, script file, or operable program. Check the spelling of the name, "
            "or if a path was included, verify that the path is correct and try again.")


def parameter_not_found(command: str, parameter: str) -> str:
    """Windows PowerShell's message for a parameter the command does not have
    (ParameterBindingException, NamedParameterNotFound)."""
    return (f"ParameterBindingException: {command} : A parameter cannot be found that matches "
            f"parameter name '{parameter}'.")


def real_parameter(command: str, written: str) -> str | None:
    """The real parameter `written` names (exact or unique prefix, as PowerShell binds), or None
    when the command is not listed with its parameters."""
    params = windows_names().parameters(command)
    if params is None:
        return None
    wanted = written.lower()
    exact = [p for p in params if p.lower() == wanted]
    if exact:
        return exact[0]
    prefixed = [p for p in params if p.lower().startswith(wanted)]
    return prefixed[0] if len(prefixed) == 1 else ""
