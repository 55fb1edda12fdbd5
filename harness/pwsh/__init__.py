"""Interpreter of the PowerShell and cmd subset remediation scripts use, acting on the Windows
model. Unknown commands, parameters and syntax raise NotEmulated (never a silent pass); what
PowerShell would refuse raises ScriptError; every command's effect is recorded."""

from .errors import NotEmulated, PwshError, ScriptError
from .interpreter import run_source
from .remediation import (
    Remediation,
    RemediationError,
    load_remediation,
    load_remediations,
    run_remediation,
    run_script,
)
from .result import Effect, RemediationResult, ScriptResult

__all__ = ["Effect", "NotEmulated", "PwshError", "Remediation", "RemediationError",
           "RemediationResult", "ScriptError", "ScriptResult", "load_remediation",
           "load_remediations", "run_remediation", "run_script", "run_source"]
