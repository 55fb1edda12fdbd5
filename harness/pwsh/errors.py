"""The two ways a remediation script stops: not emulated (the lab cannot say) or a script error."""

from __future__ import annotations


class PwshError(Exception):
    """Base of the interpreter's errors; always names the file and line."""

    def __init__(self, file: str, line: int, message: str) -> None:
        super().__init__(f"{file}:{line}: {message}")
        self.file, self.line, self.message = file, line, message


class NotEmulated(PwshError):
    """A command, parameter or syntax the interpreter does not model: the cell is marked
    "not emulated", never passed."""

    def __init__(self, file: str, line: int, command: str, detail: str = "") -> None:
        super().__init__(file, line, f"not emulated: {command}" + (f" ({detail})" if detail
                                                                     else ""))
        self.command, self.detail = command, detail


class ScriptError(PwshError):
    """What PowerShell would report as a terminating error (bad path, missing argument…)."""


class CmdletError(Exception):
    """A cmdlet's error before it is located; the interpreter turns it into ScriptError unless
    the error action says to continue."""

    def __init__(self, message: str, category: str = "InvalidOperation") -> None:
        super().__init__(message)
        self.message, self.category = message, category
