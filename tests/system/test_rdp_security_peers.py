"""Standard RDP Security (SecurityLayer 0) against real clients: xfreerdp 2.11 and rdesktop 1.9
connect to the emulated host to an activated session, at every MinEncryptionLevel the host
serves. Each client runs under `timeout`, is ended once the host reports activation, and must
still be running then (a client that rejected the session would have exited)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time

import pytest

from harness.pki import KeyPair
from tests.helpers import PASSWORD, USER, policy_for, running_host

pytestmark = [pytest.mark.freerdp, pytest.mark.xdist_group("freerdp")]

DEADLINE = 20.0


def _session(argv: list[str], display: str, host: object) -> tuple[bool, str]:
    """Run a client until the host activates it (True) or it exits / the deadline passes."""
    with tempfile.TemporaryDirectory(prefix="rdplab-rdpsec-") as home:
        proc = subprocess.Popen(["timeout", "-k", "2", f"{DEADLINE:g}", *argv],
                                env={"DISPLAY": display, "HOME": home, "PATH": "/usr/bin:/bin"},
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        try:
            end = time.monotonic() + DEADLINE
            while time.monotonic() < end and proc.poll() is None and \
                    host.stats.activated == 0:  # type: ignore[attr-defined]
                time.sleep(0.05)
            time.sleep(0.5)  # the first updates and fast-path input are decrypted and checked
            alive = proc.poll() is None
        finally:
            proc.terminate()
            out = proc.communicate(timeout=10)[0].decode("utf-8", "replace")
    return alive and host.stats.activated == 1, out[-2000:]  # type: ignore[attr-defined]


@pytest.mark.parametrize("level", [1, 2, 3])
@pytest.mark.parametrize("sec", ["/sec:rdp", None])
def test_xfreerdp_standard_rdp_security_session(xfreerdp: str, xdisplay: str,
                                                host_pair: KeyPair, level: int,
                                                sec: str | None) -> None:
    """`/sec:rdp`, and xfreerdp's default (offers TLS+NLA, is refused with
    SSL_NOT_ALLOWED_BY_SERVER, retries with RDP security as it does against Windows)."""
    policy = policy_for(host_pair, security_layer=0, user_authentication=False,
                        min_encryption_level=level)
    with running_host(policy) as (host, log):
        argv = [xfreerdp, f"/v:localhost:{host.address[1]}", f"/u:{USER}", f"/p:{PASSWORD}",
                "/cert:ignore", "/log-level:INFO", *([sec] if sec else [])]
        ok, out = _session(argv, xdisplay, host)
        assert ok, out
    keyed = [e for e in log if e.message.startswith("Security Exchange")]
    assert keyed and keyed[0].detail["level"] == level


@pytest.mark.skipif(shutil.which("rdesktop") is None, reason="rdesktop is not installed")
@pytest.mark.parametrize("level", [1, 2, 3])
def test_rdesktop_standard_rdp_security_session(xdisplay: str, host_pair: KeyPair,
                                                level: int) -> None:
    """rdesktop 1.9 offers TLS, is refused with SSL_NOT_ALLOWED_BY_SERVER and retries with
    plain RDP (its own message: "Retrying with plain RDP.")."""
    policy = policy_for(host_pair, security_layer=0, user_authentication=False,
                        min_encryption_level=level)
    with running_host(policy) as (host, _):
        argv = ["rdesktop", "-u", USER, "-p", PASSWORD, f"localhost:{host.address[1]}"]
        ok, out = _session(argv, xdisplay, host)
        assert ok, out
