"""Running PowerShell on a real Windows VM over WinRM (pywinrm), every call bounded in time.

The Vagrant lab injects faults and runs remediation scripts through this module. One
`WinRMRunner` per VM; each call returns a `RunResult` whose `to_journal()` is the record a cell
journal keeps (what ran, where, for how long, stdout, stderr, exit code, reboot).

pywinrm's `Session.run_cmd` waits for the command without limit (WSMan receive timeouts are
retried forever), so commands run through the session's `Protocol` with a deadline checked
between receives; on expiry the command is signalled to terminate and the shell is closed.

A remediation file is uploaded byte for byte (base64 chunks), its SHA-256 checked on the VM, and
run with `powershell.exe -File`, as an administrator would run the script.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ..errors import LabError, LabTimeout

T = TypeVar("T")

POWERSHELL = "powershell.exe"
POWERSHELL_FLAGS = ("-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass")
REMOTE_DIR = "C:\\rdplab"
MAX_COMMAND_LINE = 8000  # cmd.exe's limit is 8191 characters
UPLOAD_CHUNK = 1800  # bytes per upload command (the encoded command stays under the limit)

# What makes a script restart the machine: always, or only when Windows Update wants it.
_REBOOT_ALWAYS = re.compile(r"\bRestart-Computer\b|\bshutdown(?:\.exe)?\s+[/-]r\b", re.I)
_REBOOT_MAYBE = re.compile(r"-AutoReboot\b", re.I)

BOOT_TIME_SCRIPT = (
    "$os = Get-WmiObject -Class Win32_OperatingSystem\n"
    "[Management.ManagementDateTimeConverter]::ToDateTime($os.LastBootUpTime)"
    ".ToUniversalTime().ToString('o')"
)


def call_with_deadline(fn: Callable[[], T], timeout: float, what: str,
                       on_timeout: Callable[[], None] | None = None) -> T:
    """fn() in a worker thread; LabTimeout naming `what` when it has not returned in time.

    For calls that cannot bound themselves (python-vagrant, testinfra); `on_timeout` may stop
    the work (kill a subprocess). The thread is a daemon: a call that never returns cannot
    keep the process alive.
    """
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    worker = threading.Thread(target=work, name=f"rdplab: {what}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        if on_timeout is not None:
            on_timeout()
        raise LabTimeout(f"{what}: no result after {timeout:g} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


def ps_quote(text: str) -> str:
    """A PowerShell single-quoted literal."""
    return "'" + str(text).replace("'", "''") + "'"


def encode_command(script: str) -> str:
    """What `powershell -EncodedCommand` takes: base64 of the UTF-16LE text."""
    return base64.b64encode(script.encode("utf-16-le")).decode("ascii")


def decode_clixml(data: bytes) -> str:
    """PowerShell's error stream as text (it arrives as CLIXML when the output is redirected)."""
    text = data.decode("utf-8", "replace")
    if not text.startswith("#< CLIXML"):
        return text
    body = re.sub(r'\sxmlns="[^"]*"', "", text.split("\n", 1)[1] if "\n" in text else "")
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return text
    lines = [(s.text or "").replace("_x000D__x000A_", "\n") for s in root.iter("S")
             if s.get("S") == "Error"]
    return "".join(lines).strip() or text


def expects_reboot(script: str) -> str | None:
    """'always' when the script restarts the machine, 'maybe' when Windows Update decides."""
    if _REBOOT_ALWAYS.search(script):
        return "always"
    if _REBOOT_MAYBE.search(script):
        return "maybe"
    return None


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class WinRMTarget:
    """One VM as WinRM reaches it; the password never appears in records."""

    role: str
    vm: str
    address: str
    user: str
    password: str = field(repr=False)
    port: int = 5985
    scheme: str = "http"
    transport: str = "ntlm"

    @property
    def endpoint(self) -> str:
        return f"{self.scheme}://{self.address}:{self.port}/wsman"


@dataclass
class RunResult:
    """One command on one VM; `to_journal()` is what the cell journal keeps."""

    role: str
    vm: str
    what: str  # "fault:<action>", "remediation:<id>", "check", "upload", ...
    command: str  # what was run, without encoded payloads or secrets
    started: str
    ended: str = ""
    duration: float = 0.0
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    timed_out: bool = False
    error: str | None = None  # transport failure (WinRM), not a script failure
    script: str | None = None  # the script's name (remediation file) or None
    script_sha256: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    reboot: str | None = None  # expected: always / maybe / None
    rebooted: bool = False
    boot_before: str | None = None
    boot_after: str | None = None

    @property
    def ok(self) -> bool:
        return not self.timed_out and self.error is None and self.exit_code == 0

    def to_journal(self) -> dict[str, Any]:
        record = asdict(self)
        record["ok"] = self.ok
        return record


class WinRMRunner:
    """Commands on one VM. `session_factory` defaults to pywinrm's `winrm.Session`."""

    def __init__(self, target: WinRMTarget, *, operation_timeout: int = 5,
                 read_timeout: int = 15, session_factory: Callable[..., Any] | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if operation_timeout >= read_timeout:
            raise ValueError("read_timeout must exceed operation_timeout (pywinrm's rule)")
        self.target = target
        self.operation_timeout = operation_timeout
        self.read_timeout = read_timeout
        self._session_factory = session_factory
        self._session: Any = None
        self.sleep = sleep
        self.clock = clock

    # -- the session ---------------------------------------------------------------------------

    def session(self) -> Any:
        if self._session is None:
            factory = self._session_factory
            if factory is None:
                try:
                    import winrm
                except ImportError as exc:
                    raise LabError("pywinrm is not installed: pip install 'rdplab[vagrant]'"
                                   ) from exc
                factory = winrm.Session
            self._session = factory(self.target.endpoint,
                                    auth=(self.target.user, self.target.password),
                                    transport=self.target.transport,
                                    server_cert_validation="ignore",
                                    operation_timeout_sec=self.operation_timeout,
                                    read_timeout_sec=self.read_timeout)
        return self._session

    def reset(self) -> None:
        """Forget the session (after a reboot the old one is useless)."""
        self._session = None

    # -- running -------------------------------------------------------------------------------

    def run_command(self, command: str, args: Iterable[str], timeout: float, *, what: str,
                    shown: str | None = None) -> RunResult:
        """Run one command line; never longer than `timeout` (plus one WSMan receive)."""
        args = list(args)
        result = RunResult(self.target.role, self.target.vm, what,
                           shown or " ".join([command, *args]), _now())
        start = self.clock()
        deadline = start + timeout
        out: list[bytes] = []
        err: list[bytes] = []
        try:
            protocol = self.session().protocol
            shell = protocol.open_shell()
            try:
                command_id = protocol.run_command(shell, command, args)
                done = False
                while not done:
                    if self.clock() >= deadline:
                        result.timed_out = True
                        break
                    try:
                        chunk_out, chunk_err, code, done = protocol.get_command_output_raw(
                            shell, command_id)
                    except Exception as exc:
                        if type(exc).__name__ == "WinRMOperationTimeoutError":
                            continue  # no output yet: the deadline decides
                        raise
                    out.append(chunk_out)
                    err.append(chunk_err)
                    if done:
                        result.exit_code = code
                try:  # terminates the command when it is still running
                    protocol.cleanup_command(shell, command_id)
                except Exception as exc:
                    if not result.timed_out:
                        raise
                    result.error = f"cleanup after timeout failed: {exc}"
            finally:
                try:
                    protocol.close_shell(shell)
                except Exception as exc:
                    result.error = result.error or f"close_shell failed: {exc}"
        except LabError:
            raise
        except Exception as exc:  # transport: refused, auth, HTTP errors
            result.error = f"{type(exc).__name__}: {exc}"
        result.stdout = b"".join(out).decode("utf-8", "replace")
        result.stderr = decode_clixml(b"".join(err))
        result.ended = _now()
        result.duration = round(self.clock() - start, 3)
        return result

    def run_ps(self, script: str, timeout: float, *, what: str = "powershell") -> RunResult:
        """Run PowerShell text (-EncodedCommand; uploaded as a file when too long)."""
        encoded = encode_command(script)
        args = [*POWERSHELL_FLAGS, "-EncodedCommand", encoded]
        if len(POWERSHELL) + sum(len(a) + 1 for a in args) <= MAX_COMMAND_LINE:
            result = self.run_command(POWERSHELL, args, timeout, what=what,
                                      shown=f"{POWERSHELL} -EncodedCommand <{len(script)} chars>")
        else:
            name = f"{what.replace(':', '-')}-{hashlib.sha256(script.encode()).hexdigest()[:12]}"
            remote = f"{REMOTE_DIR}\\scripts\\{_safe_name(name)}.ps1"
            self.upload(script.encode("utf-8-sig"), remote, timeout)
            result = self.run_command(POWERSHELL, [*POWERSHELL_FLAGS, "-File", f'"{remote}"'],
                                      timeout, what=what)
        result.script_sha256 = hashlib.sha256(script.encode("utf-8")).hexdigest()
        return result

    def upload(self, data: bytes, remote_path: str, timeout: float) -> str:
        """Write `data` to `remote_path` unchanged; returns its SHA-256 as the VM computed it."""
        deadline = self.clock() + timeout
        path = ps_quote(remote_path)
        chunks = [data[i:i + UPLOAD_CHUNK] for i in range(0, len(data), UPLOAD_CHUNK)] or [b""]
        for index, chunk in enumerate(chunks):
            mode = "Create" if index == 0 else "Append"
            script = (
                f"$p = {path}\n"
                "$d = [IO.Path]::GetDirectoryName($p)\n"
                "if (-not (Test-Path -LiteralPath $d)) "
                "{ New-Item -ItemType Directory -Path $d -Force | Out-Null }\n"
                f"$b = [Convert]::FromBase64String('{base64.b64encode(chunk).decode()}')\n"
                f"$f = [IO.File]::Open($p, [IO.FileMode]::{mode})\n"
                "$f.Write($b, 0, $b.Length)\n"
                "$f.Close()\n"
            )
            self._must(self._encoded(script, deadline, "upload"), f"upload to {remote_path}")
        check = (f"$p = {path}\n"
                 "$h = [Security.Cryptography.SHA256]::Create()"
                 ".ComputeHash([IO.File]::ReadAllBytes($p))\n"
                 "([BitConverter]::ToString($h) -replace '-', '').ToLower()\n")
        result = self._must(self._encoded(check, deadline, "upload"), f"hash of {remote_path}")
        remote_hash = result.stdout.strip().lower()
        local_hash = hashlib.sha256(data).hexdigest()
        if remote_hash != local_hash:
            raise LabError(f"{self.target.vm}: {remote_path} arrived changed "
                           f"(sha256 {remote_hash or 'none'}, sent {local_hash})")
        return remote_hash

    def run_file(self, path: Path, timeout: float, *, params: Mapping[str, Any] | None = None,
                 what: str | None = None, reboot_timeout: float = 900.0,
                 maybe_reboot_grace: float = 120.0) -> RunResult:
        """Upload a .ps1 file unchanged and run it with `powershell.exe -File` and its params.

        A script that restarts the machine (Restart-Computer) is followed until the VM is back
        with a new boot time; one that may restart (-AutoReboot) for `maybe_reboot_grace`.
        """
        path = Path(path)
        data = path.read_bytes()
        text = data.decode("utf-8-sig", "replace")
        remote = f"{REMOTE_DIR}\\remediations\\{_safe_name(path.name)}"
        args = [*POWERSHELL_FLAGS, "-File", f'"{remote}"']
        bound = {str(k): str(v) for k, v in (params or {}).items()}
        for name, value in bound.items():
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or '"' in value:
                raise LabError(f"{path.name}: parameter {name}={value!r} cannot be passed")
            args += [f"-{name}", f'"{value}"']
        reboot = expects_reboot(text)
        deadline = self.clock() + timeout
        before = self.boot_time(min(timeout, 60.0)) if reboot else None
        self.upload(data, remote, max(1.0, deadline - self.clock()))
        result = self.run_command(POWERSHELL, args, max(1.0, deadline - self.clock()),
                                  what=what or f"remediation:{path.stem}")
        result.script = path.name
        result.script_sha256 = hashlib.sha256(data).hexdigest()
        result.params = bound
        result.reboot = reboot
        result.boot_before = before
        if reboot and before is not None:
            if result.error and not result.timed_out:
                # The connection dropped because the machine went down: expected here.
                result.stderr = (result.stderr + f"\n[connection lost: {result.error}]").strip()
                result.error = None
                result.exit_code = 0 if result.exit_code is None else result.exit_code
            wait = reboot_timeout if reboot == "always" else maybe_reboot_grace
            after = self.wait_for_boot(before, wait, required=reboot == "always")
            result.boot_after = after
            result.rebooted = after is not None and after != before
        return result

    def restart(self, timeout: float) -> RunResult:
        """Restart-Computer -Force, then wait until WinRM answers with a new boot time."""
        before = self.boot_time(min(timeout, 60.0))
        result = self.run_ps("Restart-Computer -Force", min(timeout, 60.0), what="restart")
        if result.error and not result.timed_out:
            result.error = None
            result.exit_code = 0
        result.reboot, result.boot_before = "always", before
        result.boot_after = self.wait_for_boot(before, timeout, required=True)
        result.rebooted = True
        return result

    # -- machine state -------------------------------------------------------------------------

    def boot_time(self, timeout: float) -> str:
        result = self._must(self.run_ps(BOOT_TIME_SCRIPT, timeout, what="boot-time"),
                            "reading the boot time")
        return result.stdout.strip()

    def wait_until_up(self, timeout: float, interval: float = 5.0) -> str:
        """Poll until WinRM answers; the boot time then."""
        deadline = self.clock() + timeout
        last = "no attempt"
        while True:
            remaining = deadline - self.clock()
            if remaining <= 0:
                raise LabTimeout(f"{self.target.vm} ({self.target.endpoint}): WinRM did not "
                                 f"answer within {timeout:g} s (last: {last})")
            result = self.run_ps(BOOT_TIME_SCRIPT, min(remaining, 30.0), what="boot-time")
            if result.ok:
                return result.stdout.strip()
            last = result.error or result.stderr.strip() or f"exit {result.exit_code}"
            self.reset()
            self.sleep(min(interval, max(0.0, deadline - self.clock())))

    def wait_for_boot(self, before: str, timeout: float, *, required: bool,
                      interval: float = 5.0) -> str | None:
        """Wait for a boot time other than `before`; None (or LabTimeout when required)."""
        deadline = self.clock() + timeout
        seen = before
        while self.clock() < deadline:
            self.reset()
            result = self.run_ps(BOOT_TIME_SCRIPT, min(30.0, max(1.0, deadline - self.clock())),
                                 what="boot-time")
            if result.ok:
                seen = result.stdout.strip()
                if seen != before:
                    return seen
            self.sleep(min(interval, max(0.0, deadline - self.clock())))
        if required:
            raise LabTimeout(f"{self.target.vm}: did not come back from a restart within "
                             f"{timeout:g} s (boot time still {seen})")
        return None

    # -- helpers -------------------------------------------------------------------------------

    def _encoded(self, script: str, deadline: float, what: str) -> RunResult:
        remaining = deadline - self.clock()
        if remaining <= 0:
            raise LabTimeout(f"{self.target.vm}: {what} ran out of time")
        return self.run_command(POWERSHELL, [*POWERSHELL_FLAGS, "-EncodedCommand",
                                             encode_command(script)], remaining, what=what,
                                shown=f"{POWERSHELL} -EncodedCommand <{what}>")

    def _must(self, result: RunResult, doing: str) -> RunResult:
        if result.timed_out:
            raise LabTimeout(f"{self.target.vm}: {doing} timed out after {result.duration:g} s")
        if not result.ok:
            detail = result.error or result.stderr.strip() or result.stdout.strip()
            raise LabError(f"{self.target.vm}: {doing} failed (exit {result.exit_code}): "
                           f"{detail}")
        return result


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


__all__ = ["LabError", "LabTimeout", "RunResult", "WinRMRunner", "WinRMTarget",
           "call_with_deadline", "decode_clixml", "encode_command", "expects_reboot",
           "ps_quote"]
