"""Bringing a lab up (a detached supervisor) and down (also after a kill -9 of it)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ..net.cleanup import down_all, teardown
from ..net.state import process_alive
from . import control
from .errors import LabFailed, TrainingError
from .labdir import LabDir

READY_TIMEOUT = 120.0
STOP_TIMEOUT = 15.0


def parse_publish(text: str) -> tuple[str, int]:
    """ADDR:PORT (PORT 0: any free port); TrainingError when malformed."""
    address, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535 or not address:
        raise TrainingError(f"--publish {text!r}: expected ADDR:PORT, e.g. 127.0.0.1:33890")
    return address.strip("[]"), int(port)


def supervisor_alive(record: dict[str, Any]) -> bool:
    sup = record.get("supervisor") or {}
    return bool(sup.get("pid")) and process_alive(int(sup["pid"]), sup.get("start"))


def spawn(labdir: LabDir, record: dict[str, Any], password: str) -> subprocess.Popen[bytes]:
    """Write the record and password, start the supervisor in its own session (it outlives
    this command, like `docker compose up -d`), and record its pid at once."""
    labdir.path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(labdir.path, 0o700)
    labdir.write_password(password)
    labdir.write({**record, "state": "starting"})
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    log = open(labdir.log_file, "ab")  # noqa: SIM115 - handed to the child
    try:
        proc = subprocess.Popen([sys.executable, "-m", "harness.training.supervisor",
                                 str(labdir.path)], stdin=subprocess.DEVNULL, stdout=log,
                                stderr=log, start_new_session=True, env=env, close_fds=True)
    finally:
        log.close()
    from ..net.state import process_start

    labdir.update(supervisor={"pid": proc.pid, "start": process_start(proc.pid)})
    return proc


def wait_ready(labdir: LabDir, proc: subprocess.Popen[bytes] | None,
               timeout: float = READY_TIMEOUT) -> dict[str, Any]:
    """Until the supervisor answers (its record says running) or fails."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = labdir.read()
        if record.get("state") == "running" and labdir.socket_path.exists():
            return record
        if record.get("state") == "failed":
            if proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=10)
            error = record.get("error", "the lab did not start")
            if record.get("error_usage"):
                raise TrainingError(error)
            raise LabFailed(f"{error} (log: {labdir.log_file})")
        if proc is not None and proc.poll() is not None:
            raise LabFailed(f"the supervisor exited with {proc.returncode}; log: "
                            f"{labdir.log_file}:\n{_tail(labdir.log_file)}")
        time.sleep(0.05)
    raise LabFailed(f"the lab was not ready within {timeout:g} s; log: {labdir.log_file}")


def _tail(path: Path, lines: int = 12) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def remove(labdir: LabDir, *, stop_timeout: float = STOP_TIMEOUT) -> list[str]:
    """Stop the supervisor (asking first, SIGKILL when it does not go), remove what the lab
    recorded (namespaces, processes), then the directory. Safe to repeat."""
    removed: list[str] = []
    record: dict[str, Any] = {}
    with contextlib.suppress(TrainingError):
        record = labdir.read()
    if record and supervisor_alive(record):
        with contextlib.suppress(TrainingError, LabFailed, OSError):
            control.call(labdir.socket_path, "stop", timeout=5.0)
        sup = record["supervisor"]
        deadline = time.monotonic() + stop_timeout
        while process_alive(int(sup["pid"]), sup.get("start")) and time.monotonic() < deadline:
            time.sleep(0.05)
        removed += teardown([{"kind": "pid", "pid": int(sup["pid"]), "start": sup.get("start")}])
    if labdir.net_state_dir.is_dir():
        removed += down_all(labdir.net_state_dir)
    if labdir.path.exists():
        shutil.rmtree(labdir.path, ignore_errors=True)
        removed.append(str(labdir.path))
    return removed
