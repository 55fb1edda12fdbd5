"""A private Xvfb display for FreeRDP binaries, which need X even with /auth-only."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

from .lifetime import child_dies_with_us


class XvfbError(RuntimeError):
    pass


class Xvfb:
    """Starts Xvfb on a free display number; stops it (and waits) on exit."""

    def __init__(self, width: int = 1024, height: int = 768, timeout: float = 10.0) -> None:
        self.width, self.height, self.timeout = width, height, timeout
        self.display: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Xvfb:
        exe = shutil.which("Xvfb")
        if exe is None:
            raise XvfbError("Xvfb is not installed (Debian package xvfb)")
        read_fd, write_fd = os.pipe()
        self._proc = subprocess.Popen(
            [exe, "-displayfd", str(write_fd), "-screen", "0", f"{self.width}x{self.height}x24",
             "-nolisten", "tcp", "-noreset"],
            pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            # Xvfb ends with the process that started it, even after kill -9 or a worker's
            # os._exit (which skips atexit): one per matrix worker was left running.
            preexec_fn=child_dies_with_us
            if threading.current_thread() is threading.main_thread() else None,
        )
        os.close(write_fd)
        deadline = time.monotonic() + self.timeout
        buf = b""
        try:
            os.set_blocking(read_fd, False)
            while time.monotonic() < deadline and not buf.endswith(b"\n"):
                if self._proc.poll() is not None:
                    raise XvfbError(f"Xvfb exited with {self._proc.returncode}")
                try:
                    chunk = os.read(read_fd, 32)
                except BlockingIOError:
                    time.sleep(0.02)
                    continue
                if not chunk:
                    break
                buf += chunk
        finally:
            os.close(read_fd)
        if not buf.strip().isdigit():
            self.__exit__()
            raise XvfbError(f"Xvfb did not report a display within {self.timeout:g} s")
        self.display = f":{buf.strip().decode()}"
        return self

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ if base is None else base)
        env["DISPLAY"] = self.display or ""
        return env

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=5)
        if self.display:
            Path(f"/tmp/.X11-unix/X{self.display[1:]}").unlink(missing_ok=True)
            Path(f"/tmp/.X{self.display[1:]}-lock").unlink(missing_ok=True)
