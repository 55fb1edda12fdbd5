"""Running the real FreeRDP client (xfreerdp 2.x), always bounded by `timeout`."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .lifetime import child_dies_with_us

# xfreerdp 2.x exit codes (client/X11/xf_client.h) that the lab meets.
EXIT_NAMES = {
    0: "SUCCESS",
    7: "CONN_DENIED (error-info 7 after activation)",
    124: "TIMEOUT (killed by timeout(1))",
    131: "CONN_FAILED",
    132: "AUTH_FAILURE",
    133: "NEGO_FAILURE",
    134: "LOGON_FAILURE",
    141: "CONNECT_FAILED",
    143: "TLS_CONNECT_FAILED",
    147: "CONNECT_TRANSPORT_FAILED",
}


def can_use_private_hosts() -> bool:
    """Root with unshare(1): a process can get its own /etc/hosts in a private mount namespace."""
    return os.geteuid() == 0 and shutil.which("unshare") is not None


def private_hosts_argv(folder: Path, hosts: dict[str, str], argv: list[str]) -> list[str]:
    """argv run with /etc/hosts replaced, for that process only, by the lab's names.

    This is how xfreerdp resolves the lab's host and gateway names on the loopback backend, so
    that its certificate name checks are real; nothing outside the new mount namespace changes.
    """
    if not can_use_private_hosts():
        raise PermissionError("a private /etc/hosts needs root and unshare(1)")
    hosts_file = folder / "hosts"
    lines = ["127.0.0.1 localhost"] + [f"{addr} {name}" for name, addr in hosts.items()]
    hosts_file.write_text("\n".join(lines) + "\n")
    script = 'mount --bind "$0" /etc/hosts && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script,
            str(hosts_file), *argv]


def xfreerdp_path() -> str | None:
    return shutil.which("xfreerdp")


@dataclass
class XfreerdpRun:
    argv: list[str]
    exit_code: int
    seconds: float
    output: str = field(repr=False, default="")

    @property
    def exit_name(self) -> str:
        return EXIT_NAMES.get(self.exit_code, "?")


def run_xfreerdp(
    host: str,
    port: int,
    *,
    display: str,
    username: str = "",
    password: str = "",
    domain: str = "",
    security: str | None = None,  # nla | tls | rdp
    cert: str = "ignore",  # ignore | deny | tofu
    cafile: Path | None = None,
    extra: list[str] | None = None,
    timeout: float = 20.0,
    prefix: list[str] | None = None,
    hosts: dict[str, str] | None = None,
    clock_offset: float = 0.0,
) -> XfreerdpRun:
    """`xfreerdp /auth-only` against host:port under `timeout`; never waits past timeout + 5 s."""
    exe = xfreerdp_path()
    if exe is None:
        raise FileNotFoundError("xfreerdp is not installed (Debian package freerdp2-x11)")
    args = [exe, f"/v:{host}:{port}", "/auth-only", f"/cert:{cert}", "/log-level:INFO"]
    if username:
        args.append(f"/u:{username}")
    if password:
        args.append(f"/p:{password}")
    if domain:
        args.append(f"/d:{domain}")
    if security:
        args.append(f"/sec:{security}")
    args += extra or []
    if clock_offset:
        # The client machine's clock (libfaketime), so certificate validity is judged as there.
        if shutil.which("faketime") is None:
            raise FileNotFoundError("faketime is not installed (Debian package faketime)")
        args = ["faketime", "-f", f"{clock_offset:+.0f}s", *args]
    argv = [*(prefix or []), "timeout", "-k", "2", f"{timeout:g}", *args]
    with tempfile.TemporaryDirectory(prefix="rdplab-xfreerdp-") as home:
        if hosts:
            argv = private_hosts_argv(Path(home), hosts, argv)
        env = {"DISPLAY": display, "HOME": home, "PATH": "/usr/bin:/bin:/usr/sbin:/sbin"}
        if cafile is not None:
            # FreeRDP 2 verifies against OpenSSL's default store plus $HOME/.config/freerdp/certs
            certs = Path(home, ".config", "freerdp", "certs")
            certs.mkdir(parents=True)
            env["SSL_CERT_FILE"] = str(cafile)
        t0 = time.monotonic()
        # Its own process group (`timeout` and the xfreerdp it runs), killed as a whole when
        # this process stops waiting for any reason; `timeout` itself ends with the process
        # that started it (a killed matrix worker), and passes that on to xfreerdp.
        proc = subprocess.Popen(
            argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=child_dies_with_us
            if threading.current_thread() is threading.main_thread() else None)
        try:
            output, _ = proc.communicate(timeout=timeout + 10)
        except BaseException:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.communicate(timeout=5)
            raise
        seconds = time.monotonic() - t0
    masked = [a if not a.startswith("/p:") else "/p:***" for a in argv]
    return XfreerdpRun(masked, proc.returncode, seconds, output.decode("utf-8", "replace"))
