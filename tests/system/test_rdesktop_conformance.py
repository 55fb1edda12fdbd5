"""The emulated host against real rdesktop 1.9 (Debian `rdesktop`) with TLS: it must reach a
session and draw the host's first update burst on its X display, as it does against Windows
(rdp-facts §10: its Erect Domain Request variant and its finalisation order)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from harness.pki import KeyPair
from tests.helpers import PASSWORD, USER, policy_for, running_host

pytestmark = [pytest.mark.xdist_group("freerdp"), pytest.mark.timeout(90)]

RDESKTOP_TIMEOUT = 25


@pytest.fixture(scope="module")
def rdesktop() -> str:
    exe = shutil.which("rdesktop")
    if exe is None:
        pytest.skip("rdesktop is not installed (Debian package rdesktop)")
    return exe


def _screen_colours(display: str) -> int:
    """How many distinct colours the Xvfb root window shows (1 when nothing was drawn)."""
    grab = pytest.importorskip("PIL.ImageGrab")
    image = grab.grab(xdisplay=display)
    return len(image.getcolors(maxcolors=1 << 16) or range(1 << 16))


def _run_until_activated(rdesktop: str, port: int, display: str, home: Path, host: object,
                         *extra: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, DISPLAY=display, HOME=str(home))  # a fresh certificate store
    proc = subprocess.Popen(
        ["timeout", str(RDESKTOP_TIMEOUT), rdesktop, "-u", USER, "-p", PASSWORD, "-g", "640x480",
         *extra, f"127.0.0.1:{port}"],
        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdin is not None
    proc.stdin.write(b"yes\n")  # accept the lab certificate at rdesktop's prompt
    proc.stdin.close()
    proc.stdin = None  # communicate() must not flush it again
    deadline = time.monotonic() + RDESKTOP_TIMEOUT
    while time.monotonic() < deadline and proc.poll() is None:
        if host.stats.activated:  # type: ignore[attr-defined]
            break
        time.sleep(0.1)
    return proc


def _stop(proc: subprocess.Popen[bytes]) -> str:
    if proc.poll() is None:
        proc.terminate()
    try:
        out, _ = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out.decode(errors="replace")


def test_rdesktop_tls_reaches_a_session_with_screen_data(rdesktop: str, xdisplay: str,
                                                         host_pair: KeyPair,
                                                         tmp_path: Path) -> None:
    policy = policy_for(host_pair, user_authentication=False, update_burst_bytes=640 * 480 * 2)
    with running_host(policy) as (host, _):
        before = _screen_colours(xdisplay)
        proc = _run_until_activated(rdesktop, host.address[1], xdisplay, tmp_path, host)
        try:
            assert host.stats.activated == 1, (host.stats, _stop(proc))
            colours = 0
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and colours < 16:
                time.sleep(0.3)
                colours = _screen_colours(xdisplay)
            assert proc.poll() is None  # still connected: a usable session
        finally:
            output = _stop(proc)
    assert before <= 2
    assert colours >= 16, output  # the host's tiles, drawn by rdesktop
    assert host.stats.failed == 0, host.stats.reasons


def test_rdesktop_against_an_nla_host_fails_as_against_windows(rdesktop: str, xdisplay: str,
                                                               host_pair: KeyPair,
                                                               tmp_path: Path) -> None:
    """rdesktop does CredSSP only through GSSAPI Kerberos: with NLA required and no ticket it
    cannot log on, against Windows as here (rdp-facts §10), and says so."""
    with running_host(policy_for(host_pair)) as (host, _):
        proc = _run_until_activated(rdesktop, host.address[1], xdisplay, tmp_path, host)
        output = _stop(proc)
    assert host.stats.activated == 0
    assert proc.returncode not in (0, None)
    assert "CredSSP" in output, output
