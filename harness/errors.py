"""Every error above the protocol core (the sans-IO core keeps its own in `harness/rdp/errors.py`).

    RdplabError
    ├── ConfigError          a file the user wrote cannot be used: `file:line: field 'x': what`
    │   ├── ProfileError     a client profile or an OS profile
    │   ├── HostConfigError  a `rdplab host --config` file
    │   └── RemediationError a remediation sidecar, or a lab without its target node
    ├── FaultError           a fault action that does not exist or arguments it does not take
    ├── NotEmulated          this lab cannot do something faithfully: the cell says so
    │   └── ScriptNotEmulated  (also a PwshError) a command the interpreter does not model
    ├── PwshError            a remediation script stopped: file and line
    │   └── ScriptError      what PowerShell itself would report as a terminating error
    └── LabError             the lab's own machinery failed (not a cell result)
        ├── LabTimeout       a bounded operation did not finish in time
        └── BackendUnavailable  a backend cannot run on this machine (named what is missing)

Callers catch these classes from here; the old homes (`lab.base.NotEmulated`,
`lab.winrm_runner.LabError`, `probe.profiles.ProfileError`, ...) re-export them.
"""

from __future__ import annotations

from pathlib import Path


class RdplabError(Exception):
    """Base of rdplab's own errors above the protocol core."""


class ConfigError(RdplabError, ValueError):
    """A file that cannot be used: the message names the file, line and field and what is wrong.

    `ConfigError(path, line, field, message)`; path, line and field may be None when unknown.
    """

    def __init__(self, path: Path | str | None, line: int | None = None,
                 fieldname: str | None = None, message: str = "") -> None:
        if not message and fieldname is None and line is None and path is not None:
            path, message = None, str(path)  # ConfigError("what is wrong"): no file known
        where = f"{path}:{line}" if path is not None and line else (
            str(path) if path is not None else "")
        what = f" field '{fieldname}':" if fieldname else ""
        text = f"{where}:{what} {message}" if where else f"{what.strip()} {message}".strip()
        super().__init__(text)
        self.path = Path(path) if path is not None else None
        self.line = line
        self.field = fieldname
        self.message = message


class ProfileError(ConfigError):
    """A client profile (harness/data/profiles) or OS profile (harness/data/os) that is unknown,
    missing or malformed."""


class HostConfigError(ConfigError):
    """A host config file (`rdplab host --config`) that cannot be used."""


class RemediationError(ConfigError):
    """A remediation sidecar that cannot be used, or a lab that lacks its target node.

    Kept with the historical argument order `(file, field, message)`."""

    def __init__(self, file: str, field_name: str | None, message: str) -> None:
        super().__init__(file, None, field_name, message)
        self.file = file


class FaultError(RdplabError, ValueError):
    """An unknown fault action, or arguments the action does not take."""


class NotEmulated(RdplabError):
    """This lab cannot reproduce something faithfully; the cell says "not emulated" and why
    (`needs`: what would, e.g. "netns"), never passes."""

    def __init__(self, reason: str, needs: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.needs = needs


class PwshError(RdplabError):
    """A remediation script stopped; always names the file and line."""

    def __init__(self, file: str, line: int, message: str) -> None:
        super().__init__(f"{file}:{line}: {message}")
        self.file, self.line, self.message = file, line, message


class ScriptError(PwshError):
    """What PowerShell would report as a terminating error (bad path, missing argument...)."""


class ScriptNotEmulated(PwshError, NotEmulated):
    """A command, parameter or syntax the PowerShell interpreter does not model: the cell is
    "not emulated", naming file, line and command."""

    def __init__(self, file: str, line: int, command: str, detail: str = "") -> None:
        PwshError.__init__(self, file, line, f"not emulated: {command}"
                           + (f" ({detail})" if detail else ""))
        self.reason = str(self)
        self.needs = None
        self.command, self.detail = command, detail


class LabError(RdplabError, RuntimeError):
    """The lab's machinery failed (WinRM, Vagrant, a fault script on a VM): not a cell result."""


class LabTimeout(LabError):
    """A bounded operation on the lab did not finish in time."""


class BackendUnavailable(LabError):
    """A backend cannot run on this machine; the message names what is missing."""


__all__ = ["BackendUnavailable", "ConfigError", "FaultError", "HostConfigError", "LabError",
           "LabTimeout", "NotEmulated", "ProfileError", "PwshError", "RdplabError",
           "RemediationError", "ScriptError", "ScriptNotEmulated"]
