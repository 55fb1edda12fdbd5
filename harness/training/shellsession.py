"""One interactive PowerShell session on a node of the model: the same interpreter as the
remediation scripts, keeping its variables from line to line."""

from __future__ import annotations

from typing import Any

from ..pwsh.commands import ALIASES, CMDLETS, NATIVES, RebootRequested
from ..pwsh.errors import NotEmulated, PwshError
from ..pwsh.interpreter import Interpreter, _Exit
from ..pwsh.parser import parse

FILE = "<shell>"


def command_names() -> list[str]:
    """Every cmdlet, alias and native program the shell knows (for tab completion)."""
    names = {spec.name for spec in CMDLETS.values()} | set(ALIASES) | set(NATIVES)
    return sorted(names, key=str.lower)


class ShellSession:
    def __init__(self, node: Any) -> None:
        self.node = node
        self.interp = Interpreter(node, FILE)

    def run_line(self, line: str) -> dict[str, Any]:
        """Run one line; its output, and an error message when it failed."""
        result = self.interp.result
        mark = len(result.output)
        error: str | None = None
        not_emulated = False
        try:
            script = parse(line, FILE)
            with self.node.lock:
                for statement in script.statements:
                    self.interp.execute(statement)
        except NotEmulated as exc:
            not_emulated = True
            what = exc.command + (f" ({exc.detail})" if exc.detail else "")
            error = (f"not emulated: {what} is outside the PowerShell/cmd subset this lab "
                     "models (the remediation scripts' subset)")
        except PwshError as exc:
            error = exc.message
        except RebootRequested as exc:
            result.output.append(f"{self.node.computer_name} is restarting ({exc}) ...")
        except _Exit:
            pass
        output = result.output[mark:]
        del result.output[mark:]
        return {"output": output, "error": error, "not_emulated": not_emulated}
