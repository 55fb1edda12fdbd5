"""Driving `rdplab` training commands as a trainer and a student would: the CLI in
subprocesses (always under a deadline), real xfreerdp with the args `status --json` gives, and
`rdplab shell` through a pty."""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


class Trainer:
    """The CLI with its own labs root (RDPLAB_LABS_DIR) and this worktree's code."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = {**os.environ, "RDPLAB_LABS_DIR": str(root / "labs"),
                    "PYTHONPATH": str(REPO)}

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "harness.cli", *args], env=self.env,
                              capture_output=True, text=True, timeout=timeout, check=False)

    def status(self, name: str) -> dict[str, Any]:
        proc = self.run("status", "--name", name, "--json", timeout=30)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    def labdir(self, name: str) -> Path:
        return self.root / "labs" / name

    def record(self, name: str) -> dict[str, Any]:
        return json.loads((self.labdir(name) / "lab.json").read_text())

    def down_all(self) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.run("down", "--all", "--force", timeout=60)


def student_xfreerdp(status: dict[str, Any], display: str, home: Path,
                     cert: str = "deny", timeout: float = 20) -> subprocess.CompletedProcess[str]:
    """Real xfreerdp as the student runs it: the status args and env, the password from the
    password file, /auth-only, under timeout."""
    password = Path(status["password_file"]).read_text().strip()
    connect = status["connect"]
    args = [*connect["xfreerdp"], f"/p:{password}", "/auth-only", f"/cert:{cert}",
            "/tune:FreeRDP_TcpConnectTimeout:5000"]
    if status["endpoints"]["gateway"]:
        args.append(f"/gp:{password}")
    home.mkdir(parents=True, exist_ok=True)
    env = {"PATH": "/usr/bin:/bin", "DISPLAY": display, "HOME": str(home), **connect["env"]}
    return subprocess.run(["timeout", "-k", "2", str(timeout), *args], env=env,
                          capture_output=True, text=True, timeout=timeout + 10, check=False)


class PtyShell:
    """`rdplab shell NODE` on a pseudo-terminal (readline on, as a student types)."""

    PROMPT = b"PS C:\\Windows\\system32> "

    def __init__(self, trainer: Trainer, node: str, name: str) -> None:
        master, slave = os.openpty()
        self.master = master
        self.proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "shell", node,
                                      "--name", name], env={**trainer.env, "TERM": "dumb"},
                                     stdin=slave, stdout=slave, stderr=slave,
                                     start_new_session=True)
        os.close(slave)
        self.transcript = self.read_until(self.PROMPT)

    def read_until(self, marker: bytes, deadline: float = 30) -> str:
        buf = b""
        end = time.monotonic() + deadline
        while marker not in buf:
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {marker!r} in {buf[-500:]!r}")
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                buf += chunk
        return buf.decode("utf-8", "replace")

    def type(self, line: str) -> str:
        os.write(self.master, line.encode() + b"\r")
        out = self.read_until(self.PROMPT)
        self.transcript += out
        return out

    def close(self) -> int:
        with contextlib.suppress(OSError):
            os.write(self.master, b"exit\r")
        try:
            code = self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(timeout=5)
        os.close(self.master)
        return code
