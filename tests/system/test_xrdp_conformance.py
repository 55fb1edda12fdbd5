"""The probe against real xrdp 0.9 (Debian `xrdp`), a server that starts a licence exchange:
started by the test on a loopback port with its own configuration in a temporary directory
(`security_layer=tls` and `negotiate`). The probe must reach a usable session (xrdp's login
screen) where real xfreerdp 2.11 connects, and run the licensing xrdp starts (rdp-facts §10)."""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.freerdp import run_xfreerdp
from harness.net.ports import free_port
from harness.pki import KeyPair
from harness.probe.profiles import load_profile
from harness.probe.runner import ProbeOptions, ProbeTarget, run_probe
from tests.helpers import PASSWORD, USER

pytestmark = [pytest.mark.xdist_group("freerdp"), pytest.mark.timeout(120)]

XRDP_INI = Path("/etc/xrdp/xrdp.ini")


def _config(base: str, port: int, security_layer: str, cert: Path, key: Path, log: Path) -> str:
    values = {"port": f"tcp://127.0.0.1:{port}", "fork": "false",
              "security_layer": security_layer, "certificate": str(cert), "key_file": str(key),
              "LogFile": str(log), "EnableSyslog": "false"}
    for name, value in values.items():
        base, n = re.subn(rf"(?m)^{name}=.*$", f"{name}={value}", base, count=1)  # [Globals]
        assert n == 1, name
    return base


@contextlib.contextmanager
def running_xrdp(pair: KeyPair, security_layer: str, tmp: Path) -> Iterator[int]:
    exe = shutil.which("xrdp")
    if exe is None or not XRDP_INI.exists():
        pytest.skip("xrdp is not installed (Debian package xrdp)")
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    cert.write_bytes(pair.cert_pem)
    key.write_bytes(pair.key_pem)
    port = free_port()
    ini = tmp / "xrdp.ini"
    ini.write_text(_config(XRDP_INI.read_text(), port, security_layer, cert, key,
                           tmp / "xrdp.log"))
    proc = subprocess.Popen(["timeout", "100", exe, "--nodaemon", "--config", str(ini)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if proc.poll() is not None:
                pytest.fail(f"xrdp exited with {proc.returncode}: "
                            f"{(tmp / 'xrdp.log').read_text(errors='replace')[-2000:]}")
            time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("security_layer", ["tls", "negotiate"])
def test_probe_and_xfreerdp_agree_on_xrdp(security_layer: str, host_pair: KeyPair,
                                          lab_ca: KeyPair, xfreerdp: str, xdisplay: str,
                                          tmp_path: Path) -> None:
    with running_xrdp(host_pair, security_layer, tmp_path) as port:
        result = run_probe(ProbeTarget("127.0.0.1", port, USER, PASSWORD),
                           ProbeOptions(load_profile("freerdp2"), trust_pem=lab_ca.cert_pem,
                                        overall_timeout=20))
        time.sleep(0.5)  # xrdp without fork serves one connection at a time
        real = run_xfreerdp("127.0.0.1", port, display=xdisplay, username=USER,
                            password=PASSWORD, timeout=20)
    assert result.ok, result.failure
    assert real.exit_code == 0  # what the freerdp2 profile predicts for a usable session
    stages = {s.stage: s for s in result.stages}
    assert stages["negotiation"].detail["selected"] == "SSL"  # xrdp 0.9 has no NLA
    licensing = stages["licensing"].detail
    assert licensing["exchange"][0] == "License Request"  # xrdp starts the exchange
    assert result.update_bytes >= load_profile("freerdp2").usable_min_bytes  # its login screen
