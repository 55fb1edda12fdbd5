"""The command table (cmdlets, aliases, native programs), parameter binding and the Ctx every
command implementation receives."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import CmdletError, ScriptError
from .errors import ScriptNotEmulated as NotEmulated
from .objects import PsObject, to_text
from .windows_names import parameter_not_found, real_parameter

if TYPE_CHECKING:
    from harness.windows.node import WindowsNode


class RebootRequested(Exception):
    """The node restarts: the rest of the script does not run."""


@dataclass
class Ctx:
    """What a command sees: the node, where it is in the script, and how to report."""

    node: WindowsNode
    file: str
    line: int
    command: str
    effects: list[str] = field(default_factory=list)
    output: list[str] = field(default_factory=list)

    def effect(self, text: str) -> None:
        self.effects.append(text)

    def out(self, text: str) -> None:
        self.output.extend(text.splitlines() or [""])

    def fail(self, message: str, category: str = "InvalidOperation") -> CmdletError:
        return CmdletError(message, category)

    def not_emulated(self, what: str, detail: str = "") -> NotEmulated:
        return NotEmulated(self.file, self.line, what, detail)

    def script_error(self, message: str) -> ScriptError:
        """A terminating error no -ErrorAction can turn off (command not found…)."""
        return ScriptError(self.file, self.line, message)

    def reboot(self, why: str) -> RebootRequested:
        self.effect(f"restart: {why}")
        self.node.reboot()
        return RebootRequested(why)


@dataclass(frozen=True)
class P:
    """A cmdlet parameter."""

    name: str
    switch: bool = False
    position: int | None = None
    aliases: tuple[str, ...] = ()
    pipeline: bool = False
    mandatory: bool = False
    remaining: bool = False  # ValueFromRemainingArguments: takes every extra positional value


@dataclass(frozen=True)
class CmdletSpec:
    name: str
    params: tuple[P, ...]
    run: Callable[[Ctx, dict[str, Any]], list[Any] | None]
    should_process: bool = False
    collect: bool = False  # pipeline input arrives as one list (Select-Object, Out-Null…)


Native = Callable[[Ctx, list[str]], int]

CMDLETS: dict[str, CmdletSpec] = {}
ALIASES: dict[str, str] = {}
NATIVES: dict[str, Native] = {}

COMMON = (P("ErrorAction", aliases=("ea",)), P("WarningAction", aliases=("wa",)),
          P("InformationAction", aliases=("infa",)), P("Verbose", True, aliases=("vb",)),
          P("Debug", True, aliases=("db",)))
SHOULD_PROCESS = (P("WhatIf", True, aliases=("wi",)), P("Confirm", True, aliases=("cf",)))


def cmdlet(name: str, *params: P, should_process: bool = False, aliases: tuple[str, ...] = (),
           collect: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        CMDLETS[name.lower()] = CmdletSpec(name, params, fn, should_process, collect)
        for alias in aliases:
            ALIASES[alias.lower()] = name
        return fn
    return register


def native(*names: str) -> Callable[[Native], Native]:
    def register(fn: Native) -> Native:
        for n in names:
            NATIVES[n.lower()] = fn
        return fn
    return register


@dataclass
class ParamToken:
    """-Name or -Name:value as written, value UNSET when none was attached."""

    name: str
    value: Any
    text: str
    line: int


UNSET = object()


def _resolve(spec: CmdletSpec, token: ParamToken, file: str) -> P:
    candidates = list(spec.params) + list(COMMON) + (list(SHOULD_PROCESS)
                                                     if spec.should_process else [])
    wanted = token.name.lower()
    for p in candidates:
        if wanted == p.name.lower() or wanted in (a.lower() for a in p.aliases):
            return p
    matches = [p for p in candidates if p.name.lower().startswith(wanted)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        names = ", ".join("-" + p.name for p in matches)
        raise ScriptError(file, token.line, f"Parameter cannot be processed because the "
                          f"parameter name '{token.name}' is ambiguous. Possible matches "
                          f"include: {names}.")
    if real_parameter(spec.name, token.name) == "":  # no such parameter on Windows either
        raise ScriptError(file, token.line, parameter_not_found(spec.name, token.name))
    raise NotEmulated(file, token.line, f"{spec.name} -{token.name}", "parameter")


def bind(spec: CmdletSpec, items: list[Any], file: str, line: int) -> dict[str, Any]:
    """Named parameters (exact, alias or unique prefix), then positional ones in order."""
    bound: dict[str, Any] = {}
    positional: list[Any] = []
    i = 0
    while i < len(items):
        item = items[i]
        i += 1
        if not isinstance(item, ParamToken):
            positional.append(item)
            continue
        p = _resolve(spec, item, file)
        if p.name in bound:
            raise ScriptError(file, item.line, f"Cannot bind parameter because parameter "
                              f"'{p.name}' is specified more than once.")
        if p.switch:
            bound[p.name] = True if item.value is UNSET else bool(item.value)
        elif item.value is not UNSET:
            bound[p.name] = item.value
        elif i < len(items) and not isinstance(items[i], ParamToken):
            bound[p.name] = items[i]
            i += 1
        else:
            raise ScriptError(file, item.line, f"Missing an argument for parameter '{p.name}'. "
                              "Specify a parameter of the expected type and try again.")
    slots = sorted((p for p in spec.params if p.position is not None and p.name not in bound),
                   key=lambda p: p.position or 0)
    for n, value in enumerate(positional):
        if slots and slots[0].remaining:
            rest = positional[n:]
            bound[slots.pop(0).name] = rest[0] if len(rest) == 1 else rest
            break
        if not slots:
            raise ScriptError(file, line, "A positional parameter cannot be found that accepts "
                              f"argument '{to_text(value)}'.")
        bound[slots.pop(0).name] = value
    return bound


def missing_mandatory(spec: CmdletSpec, bound: dict[str, Any]) -> list[str]:
    return [p.name for p in spec.params if p.mandatory and p.name not in bound]


# -- argument conversion helpers used by the command modules -------------------------------------

def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def as_str(value: Any) -> str:
    if isinstance(value, PsObject):
        return str(value.prop("PSPath") or value)
    return to_text(value)


def as_bool(value: Any, what: str) -> bool:
    if isinstance(value, bool):
        return value
    text = to_text(value).strip().lower()
    if text in ("true", "1", "yes", "$true"):
        return True
    if text in ("false", "0", "no", "$false"):
        return False
    raise CmdletError(f"Cannot convert value \"{to_text(value)}\" to type \"System.Boolean\" "
                      f"for {what}.", "InvalidArgument")


def as_int(value: Any, what: str) -> int:
    try:
        return value if isinstance(value, int) else int(to_text(value).strip(), 0)
    except ValueError as exc:
        raise CmdletError(f"Cannot convert value \"{to_text(value)}\" to type \"System.Int32\" "
                          f"for {what}.", "InvalidArgument") from exc
