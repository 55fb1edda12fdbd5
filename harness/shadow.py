"""A real FreeRDP server for tests: freerdp-shadow-cli under Xvfb, with NLA from a SAM file.

Its TLS certificate and key are read from $XDG_CONFIG_HOME/freerdp/shadow/shadow.crt|key (created
only when missing), so a test can hand it an expired certificate or a broken key.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from .net.ports import free_port


class ShadowError(RuntimeError):
    pass


def sam_line(user: str, password: str, domain: str = "") -> str:
    """A SAM file line for user, made by winpr-hash (user:domain:LM:NT:::)."""
    exe = shutil.which("winpr-hash")
    if exe is None:
        raise ShadowError("winpr-hash is not installed (Debian package winpr-utils)")
    argv = [exe, "-u", user, "-p", password, "-f", "sam"]
    if domain:
        argv += ["-d", domain]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=True).stdout
    return out.strip().splitlines()[-1]


class ShadowServer:
    """freerdp-shadow-cli on 127.0.0.1:<free port>; stopped and cleaned up on exit."""

    def __init__(self, display: str, *, users: dict[str, str], domain: str = "",
                 cert_pem: bytes | None = None, key_pem: bytes | None = None,
                 security: str = "nla", timeout: float = 15.0) -> None:
        self.display, self.users, self.domain = display, users, domain
        self.cert_pem, self.key_pem = cert_pem, key_pem
        self.security, self.timeout = security, timeout
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.log_path: Path | None = None

    def __enter__(self) -> ShadowServer:
        exe = shutil.which("freerdp-shadow-cli")
        if exe is None:
            raise ShadowError("freerdp-shadow-cli is not installed (Debian freerdp2-shadow-x11)")
        self._tmp = tempfile.TemporaryDirectory(prefix="rdplab-shadow-")
        home = Path(self._tmp.name)
        sam = home / "sam"
        sam.write_text("".join(sam_line(u, p, self.domain) + "\n" for u, p in self.users.items()))
        if self.cert_pem is not None and self.key_pem is not None:
            conf = home / "config" / "freerdp" / "shadow"
            conf.mkdir(parents=True)
            (conf / "shadow.crt").write_bytes(self.cert_pem)
            (conf / "shadow.key").write_bytes(self.key_pem)
        self.port = free_port()
        self.log_path = home / "shadow.log"
        env = {"DISPLAY": self.display, "HOME": str(home), "XDG_CONFIG_HOME": str(home / "config"),
               "PATH": "/usr/bin:/bin"}
        argv = [exe, "/bind-address:127.0.0.1", f"/port:{self.port}", f"/sec:{self.security}",
                f"/sam-file:{sam}", "-auth" if self.security != "nla" else "+auth"]
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                          stderr=subprocess.STDOUT, cwd=home)
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise ShadowError(f"freerdp-shadow-cli exited {self._proc.returncode}: "
                                  f"{self.log_path.read_text(errors='replace')[-800:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.1)
        self.__exit__()
        raise ShadowError(f"freerdp-shadow-cli did not listen within {self.timeout:g} s")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=5)
        if self._tmp is not None:
            self._tmp.cleanup()
