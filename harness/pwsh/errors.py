"""The two ways a remediation script stops: not emulated (the lab cannot say) or a script error.

The classes live in harness/errors.py; CmdletError is the interpreter's own, before it is located.
"""

from __future__ import annotations

from ..errors import PwshError, ScriptError, ScriptNotEmulated

NotEmulated = ScriptNotEmulated  # the name this package has always raised


class CmdletError(Exception):
    """A cmdlet's error before it is located; the interpreter turns it into ScriptError unless
    the error action says to continue."""

    def __init__(self, message: str, category: str = "InvalidOperation") -> None:
        super().__init__(message)
        self.message, self.category = message, category


__all__ = ["CmdletError", "NotEmulated", "PwshError", "ScriptError", "ScriptNotEmulated"]
