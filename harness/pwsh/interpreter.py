"""Runs a parsed script against one WindowsNode: variables, pipelines, binding, effects.

The lab runs scripts as if `$ErrorActionPreference = 'Stop'`: a cmdlet error ends the script
with ScriptError unless the script asks to continue (-ErrorAction SilentlyContinue/Continue/
Ignore, or sets the preference), so a failed remediation step is never silently skipped.
Native programs behave as in PowerShell: a non-zero exit code sets $LASTEXITCODE and is
recorded, the script goes on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import (
    cmd_events,
    cmd_firewall,
    cmd_items,
    cmd_pki,
    cmd_rds,
    cmd_services,
    cmd_system,
    nat_certutil,
    nat_icacls,
    nat_misc,
    nat_netsh,
    nat_reg,
    nat_sessions,
)
from .commands import (
    ALIASES,
    CMDLETS,
    NATIVES,
    UNSET,
    CmdletSpec,
    Ctx,
    ParamToken,
    RebootRequested,
    bind,
    missing_mandatory,
)
from .errors import CmdletError, ScriptError
from .errors import ScriptNotEmulated as NotEmulated
from .objects import get_prop, to_text
from .parser import parse
from .result import Effect, ScriptResult
from .syntax import (
    ArrayExpr,
    Assignment,
    Command,
    Exit,
    ExprStage,
    Literal,
    Param,
    Pipeline,
    Script,
    SubExpr,
    Text,
    VarRef,
)
from .windows_names import command_not_found, windows_names

if TYPE_CHECKING:
    from harness.windows.node import WindowsNode

# Importing the command modules registers their cmdlets and programs.
_REGISTERED = (cmd_events, cmd_firewall, cmd_items, cmd_pki, cmd_rds, cmd_services, cmd_system,
               nat_certutil, nat_icacls, nat_misc, nat_netsh, nat_reg, nat_sessions)
CONTINUE_ACTIONS = ("continue", "silentlycontinue", "ignore")


class _Exit(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


def environment(node: WindowsNode) -> dict[str, str]:
    return {
        "ProgramData": "C:\\ProgramData", "ALLUSERSPROFILE": "C:\\ProgramData",
        "SystemRoot": "C:\\Windows", "windir": "C:\\Windows", "SystemDrive": "C:",
        "ProgramFiles": "C:\\Program Files", "COMPUTERNAME": node.computer_name,
        "USERNAME": "labadmin", "USERDOMAIN": node.computer_name,
        "USERPROFILE": "C:\\Users\\labadmin", "TEMP": "C:\\Windows\\TEMP",
        "TMP": "C:\\Windows\\TEMP", "PUBLIC": "C:\\Users\\Public",
    }


class Interpreter:
    def __init__(self, node: WindowsNode, file: str,
                 params: dict[str, Any] | None = None) -> None:
        self.node, self.file = node, file
        self.given = dict(params or {})
        self.params = {k.lower(): v for k, v in self.given.items()}
        self.vars: dict[str, Any] = {"true": True, "false": False, "null": None,
                                     "erroractionpreference": "Stop", "lastexitcode": None,
                                     "pwd": "C:\\Windows\\System32"}
        self.env = {k.lower(): v for k, v in environment(node).items()}
        self.result = ScriptResult(file, node.name)

    # -- statements ---------------------------------------------------------------------------

    def run(self, script: Script) -> ScriptResult:
        declared = {name.lower() for name, _ in script.params}
        for name in self.given:
            if name.lower() not in declared:
                raise ScriptError(self.file, 1, f"A parameter cannot be found that matches "
                                  f"parameter name '{name}'.")
        for name, default in script.params:
            value = self.params.get(name.lower(), UNSET)
            self.vars[name.lower()] = self.eval(default) if value is UNSET else value
        try:
            for statement in script.statements:
                self.execute(statement)
        except RebootRequested:
            self.result.rebooted = True
        except _Exit as done:
            self.result.exit_code = done.code
        return self.result

    def execute(self, statement: Any) -> None:
        if isinstance(statement, Assignment):
            value = self.unwrap(self.pipeline(statement.value))
            self.set_var(statement.name, value)
        elif isinstance(statement, Exit):
            code = 0 if statement.code is None else self.eval(statement.code)
            raise _Exit(int(code) if isinstance(code, int) else 0)
        else:
            outputs = self.pipeline(statement)
            if not statement.discard:
                for obj in outputs:
                    self.result.output.extend(to_text(obj).splitlines() or [""])

    def set_var(self, name: str, value: Any) -> None:
        key = name.lower()
        for scope in ("global:", "script:", "local:", "private:", "variable:"):
            key = key.removeprefix(scope)
        if key.startswith("env:"):
            self.env[key[4:]] = to_text(value)
        else:
            self.vars[key] = value

    def get_var(self, name: str) -> Any:
        key = name.lower()
        for scope in ("global:", "script:", "local:", "private:", "variable:", "using:"):
            key = key.removeprefix(scope)
        if key.startswith("env:"):
            return self.env.get(key[4:])
        return self.vars.get(key)

    # -- expressions --------------------------------------------------------------------------

    @staticmethod
    def unwrap(outputs: list[Any]) -> Any:
        if not outputs:
            return None
        return outputs[0] if len(outputs) == 1 else outputs

    def statements_output(self, statements: list[Any]) -> list[Any]:
        out: list[Any] = []
        for statement in statements:
            if isinstance(statement, Pipeline):
                if not statement.discard:
                    out.extend(self.pipeline(statement))
                else:
                    self.pipeline(statement)
            else:
                self.execute(statement)
        return out

    def eval(self, expr: Any) -> Any:
        if expr is None:
            return None
        if isinstance(expr, Literal):
            return expr.value
        if isinstance(expr, Text):
            return "".join(p if isinstance(p, str) else to_text(self.eval(p)) for p in expr.parts)
        if isinstance(expr, VarRef):
            value = self.get_var(expr.name)
            for prop in expr.props:
                value = get_prop(value, prop)
            return value
        if isinstance(expr, SubExpr):
            outputs = self.statements_output(expr.statements)
            value: Any = list(outputs) if expr.array else self.unwrap(outputs)
            for prop in expr.props:
                value = get_prop(value, prop)
            return value
        if isinstance(expr, ArrayExpr):
            return [self.eval(item) for item in expr.items]
        raise ScriptError(self.file, 0, f"cannot evaluate {expr!r}")

    # -- pipelines and commands ---------------------------------------------------------------

    def pipeline(self, pipeline: Pipeline) -> list[Any]:
        objects: list[Any] | None = None
        for stage in pipeline.stages:
            if isinstance(stage, ExprStage):
                value = self.eval(stage.expr)
                objects = list(value) if isinstance(value, list) else [value]
            else:
                objects = self.invoke(stage, objects)
        return objects or []

    def args(self, args: list[Any]) -> list[Any]:
        return [ParamToken(a.name, UNSET if a.value is None else self.eval(a.value), a.text,
                           a.line) if isinstance(a, Param) else self.eval(a) for a in args]

    def invoke(self, command: Command, objects: list[Any] | None) -> list[Any]:
        name = to_text(self.eval(command.name)).strip()
        base = name.replace("/", "\\").rsplit("\\", 1)[-1].lower()
        if base.endswith(".exe") or "\\" in name:
            program = base.removesuffix(".exe")
            if program in NATIVES:
                return self.run_native(program, command, objects)
            if "\\" not in name and program not in windows_names().programs:
                raise ScriptError(self.file, command.line, command_not_found(name))
            raise NotEmulated(self.file, command.line, name, "program")
        spec = CMDLETS.get(ALIASES.get(base, base).lower())
        if spec is not None:
            return self.run_cmdlet(spec, command, objects)
        if base in NATIVES and base != "sc":  # in PowerShell, sc is Set-Content
            return self.run_native(base, command, objects)
        if not windows_names().is_real(base):  # Windows has no such command either
            raise ScriptError(self.file, command.line, command_not_found(name))
        raise NotEmulated(self.file, command.line, name, "command")

    def _record(self, ctx: Ctx, effect: Effect, mark: int) -> None:
        effect.effects = ctx.effects
        effect.changes = [e.to_dict() for e in self.node.journal.since(mark)]
        self.result.effects.append(effect)

    def run_cmdlet(self, spec: CmdletSpec, command: Command,
                   objects: list[Any] | None) -> list[Any]:
        bound = bind(spec, self.args(command.args), self.file, command.line)
        action = to_text(bound.pop("ErrorAction", None)
                         or self.vars.get("erroractionpreference") or "Stop").lower()
        for common in ("Verbose", "Debug", "WarningAction", "InformationAction", "Confirm"):
            bound.pop(common, None)
        what_if = bound.pop("WhatIf", False)
        runs = [bound]
        if objects is not None:
            target = next((p for p in spec.params if p.pipeline), None)
            if target is None:
                raise ScriptError(self.file, command.line, "The input object cannot be bound to "
                                  f"any parameters for the command {spec.name}.")
            runs = ([{**bound, target.name: list(objects)}] if spec.collect
                    else [{**bound, target.name: obj} for obj in objects])
        outputs: list[Any] = []
        for args in runs:
            missing = missing_mandatory(spec, args)
            if missing:
                raise ScriptError(self.file, command.line, "Cannot process command because of "
                                  f"one or more missing mandatory parameters: "
                                  f"{' '.join(missing)}.")
            ctx = Ctx(self.node, self.file, command.line, command.text)
            effect = Effect(command.line, command.text)
            mark = len(self.node.journal)
            try:
                if what_if and spec.should_process:
                    ctx.effect("What if: no change made (-WhatIf)")
                    produced = []
                else:
                    produced = spec.run(ctx, args) or []
            except CmdletError as exc:
                effect.error = exc.message
                if action not in CONTINUE_ACTIONS:
                    raise ScriptError(self.file, command.line, exc.message) from exc
                if action == "continue":
                    self.result.output.append(f"{spec.name} : {exc.message}")
                self.result.errors.append(f"{self.file}:{command.line}: {exc.message}")
                produced = []
            finally:
                self._record(ctx, effect, mark)
                self.result.output.extend(ctx.output)
            outputs.extend(produced)
        return outputs

    def run_native(self, program: str, command: Command, objects: list[Any] | None) -> list[Any]:
        argv: list[str] = []
        for item in self.args(command.args):
            if isinstance(item, ParamToken):
                argv.append(item.text + ("" if item.value is UNSET else to_text(item.value)))
            elif isinstance(item, list):
                argv.extend(to_text(v) for v in item)
            else:
                argv.append(to_text(item))
        ctx = Ctx(self.node, self.file, command.line, command.text)
        effect = Effect(command.line, command.text)
        mark = len(self.node.journal)
        try:
            code = NATIVES[program](ctx, argv)
        finally:
            self._record(ctx, effect, mark)
        effect.exit_code = code
        self.vars["lastexitcode"] = code
        self.result.last_exit_code = code
        if code != 0:
            effect.error = "\n".join(ctx.output[-3:])
            self.result.errors.append(f"{self.file}:{command.line}: {program} exited with {code}")
        return list(ctx.output)


def run_source(text: str, node: WindowsNode, file: str = "<script>",
               params: dict[str, Any] | None = None) -> ScriptResult:
    """Parse and run script text on one node (holding the node's lock throughout)."""
    script = parse(text, file)
    with node.lock:
        return Interpreter(node, file, params).run(script)
