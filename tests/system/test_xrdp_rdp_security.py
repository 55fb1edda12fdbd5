"""The probe against xrdp 0.9 (Debian) with `security_layer=rdp`: Standard RDP Security chosen
by the server for any request, then xrdp's licence exchange (License Request, our New License
Request, its answer), to a usable session with encrypted fast-path updates, as real xfreerdp
gets. xrdp runs on a loopback port with its own xrdp.ini in a temporary directory."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.net.ports import free_port
from harness.probe.profiles import load_profile
from harness.probe.runner import ProbeOptions, ProbeTarget, run_probe

XRDP = shutil.which("xrdp")
pytestmark = pytest.mark.skipif(XRDP is None or not Path("/etc/xrdp/xrdp.ini").exists(),
                                reason="xrdp is not installed (Debian package xrdp)")


@pytest.fixture
def xrdp(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[int]:
    """xrdp --nodaemon on 127.0.0.1:<free port>, security layer from the test's parameter."""
    port = free_port()
    layer = getattr(request, "param", "rdp")
    changes = {"port": f"tcp://127.0.0.1:{port}", "security_layer": layer, "fork": "false",
               "LogFile": str(tmp_path / "xrdp.log"), "EnableSyslog": "false"}
    lines = []
    for line in Path("/etc/xrdp/xrdp.ini").read_text().splitlines():
        key = line.split("=", 1)[0]
        lines.append(f"{key}={changes[key]}" if "=" in line and key in changes else line)
    ini = tmp_path / "xrdp.ini"
    ini.write_text("\n".join(lines) + "\n")
    proc = subprocess.Popen(["timeout", "-k", "2", "120", str(XRDP), "--nodaemon", "--config",
                             str(ini)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        else:
            pytest.fail(f"xrdp did not listen on {port}: {(tmp_path / 'xrdp.log').read_text()}")
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize("xrdp", ["rdp"], indirect=True)
@pytest.mark.parametrize("profile", ["freerdp2", "mstsc-win11"])
def test_probe_gets_a_usable_session_from_xrdp_with_rdp_security(xrdp: int, profile: str) -> None:
    result = run_probe(ProbeTarget("127.0.0.1", xrdp, "user", "x"),
                       ProbeOptions(load_profile(profile), cert_policy="ignore",
                                    overall_timeout=20))
    assert result.ok, result.as_dict()
    stages = {s.stage: s.detail for s in result.stages}
    assert stages["negotiation"]["selected"] == "RDP"
    assert stages["licensing"]["exchange"]  # xrdp started it: License Request
    assert result.update_bytes > 0  # RC4-encrypted fast-path updates, MACs checked


@pytest.mark.parametrize("xrdp", ["negotiate"], indirect=True)
def test_probe_passes_xrdp_licensing_under_tls(xrdp: int) -> None:
    result = run_probe(ProbeTarget("127.0.0.1", xrdp, "user", "x"),
                       ProbeOptions(load_profile("freerdp2"), cert_policy="ignore",
                                    overall_timeout=20))
    assert result.ok, result.as_dict()
    assert {s.stage: s.detail for s in result.stages}["licensing"]["exchange"]


@pytest.mark.parametrize("xrdp", ["rdp"], indirect=True)
def test_real_xfreerdp_against_the_same_xrdp(xrdp: int, xfreerdp: str, xdisplay: str,
                                             tmp_path: Path) -> None:
    """The control, measured: xfreerdp 2.11 `/sec:rdp` against the same xrdp 0.9.21 is dropped
    by xrdp ("MAC checksum error for non-FIPS PDU") and exits 131, where the probe (whose MACs
    xrdp accepts) reaches a session. A FreeRDP/xrdp incompatibility, not a lab choice:
    rdp-facts §14. If a new FreeRDP or xrdp fixes it, this test says so."""
    from harness.freerdp import run_xfreerdp

    run = run_xfreerdp("127.0.0.1", xrdp, display=xdisplay, username="user", password="x",
                       security="rdp", timeout=20)
    log = (tmp_path / "xrdp.log").read_text(errors="replace")
    assert run.exit_code == 131 and "MAC checksum error" in log, (run.exit_code, log[-1500:])
