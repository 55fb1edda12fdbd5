"""NLA against the emulated host with independent real clients, each as it authenticates to
Windows: aardwolf (PyPI; CredSSP with SPNEGO-wrapped NTLM, like mstsc off a domain), rdesktop
1.9 (CredSSP through MIT GSS-API: a raw Kerberos token, tickets from the domain lab's KDC), and
xfreerdp 2.11 `/sec:nla` (raw NTLM). Each client runs under `timeout`; the host's own record of
the logon (`HostStats.logons`) says which mechanism really authenticated."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.freerdp import can_use_private_hosts, private_hosts_argv, run_xfreerdp
from harness.lab.definition import load_lab
from harness.lab.factory import LabHandle
from harness.lab.kdc import missing_tools
from harness.net.state import STATE_ENV
from harness.pki import KeyPair
from harness.rdp import kerberos
from tests.helpers import PASSWORD, USER, policy_for, running_host

AARDWOLF_CLIENT = """
import asyncio, json, sys
from aardwolf.commons.factory import RDPConnectionFactory
from aardwolf.commons.iosettings import RDPIOSettings
from aardwolf.commons.queuedata.constants import VIDEO_FORMAT

async def main(url):
    ios = RDPIOSettings()
    ios.channels = []
    ios.video_width, ios.video_height = 1024, 768
    ios.video_bpp_min, ios.video_bpp_max = 15, 32
    ios.video_out_format = VIDEO_FORMAT.RAW
    ios.clipboard_use_pyperclip = False
    conn = RDPConnectionFactory.from_url(url, ios).get_connection(ios)
    _, err = await conn.connect()
    if err is not None:
        print(json.dumps({"connected": False, "error": repr(err)}), flush=True)
        return
    for _ in range(50):
        if conn.desktop_buffer_has_data:
            break
        await asyncio.sleep(0.1)
    print(json.dumps({"connected": True, "screen": bool(conn.desktop_buffer_has_data)}), flush=True)
    await conn.terminate()

asyncio.run(main(sys.argv[1]))
"""


def _aardwolf(port: int) -> dict:
    pytest.importorskip("aardwolf", reason="aardwolf (PyPI, the test extra)")
    url = f"rdp+ntlm-password://LAB\\{USER}:{PASSWORD}@127.0.0.1:{port}"
    done = subprocess.run(["timeout", "30", sys.executable, "-c", AARDWOLF_CLIENT, url],
                          capture_output=True, text=True, timeout=60)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    assert lines, f"aardwolf printed nothing (exit {done.returncode}): {done.stderr[-800:]}"
    return json.loads(lines[-1])


def test_aardwolf_logs_on_with_spnego_ntlm(host_pair: KeyPair) -> None:
    with running_host(policy_for(host_pair)) as (host, _):
        _aardwolf(host.address[1])
        assert host.stats.logons == ["spnego/ntlm"], host.stats


def test_aardwolf_session_has_screen_data(host_pair: KeyPair) -> None:
    with running_host(policy_for(host_pair)) as (host, _):
        result = _aardwolf(host.address[1])
        assert result == {"connected": True, "screen": True}, (result, host.stats)
        assert host.stats.activated == 1


def test_xfreerdp_nla_is_raw_ntlm(xfreerdp: str, xdisplay: str, host_pair: KeyPair) -> None:
    with running_host(policy_for(host_pair)) as (host, _):
        run = run_xfreerdp("localhost", host.address[1], display=xdisplay, username=USER,
                           password=PASSWORD, timeout=20)
        assert run.exit_code == 0
        assert host.stats.logons == ["ntlm"] and host.stats.activated == 1


# -- rdesktop 1.9, NLA through Kerberos on the domain lab ---------------------------------------


@pytest.fixture
def domain_lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator:
    if missing_tools():
        pytest.skip(f"MIT Kerberos tools missing: {missing_tools()}")
    if not kerberos.available():
        pytest.skip("python-gssapi missing (pip install rdplab[kerberos])")
    if shutil.which("rdesktop") is None:
        pytest.skip("rdesktop missing (Debian package rdesktop)")
    if not can_use_private_hosts():
        pytest.skip("rdesktop names the host by its DNS name: a private /etc/hosts needs root")
    monkeypatch.setenv(STATE_ENV, str(tmp_path / "state"))
    with LabHandle(load_lab("domain"), "loopback") as lab:
        yield lab


def _rdesktop(lab, home: Path, display: str, seconds: int = 8) -> tuple[str, list[str]]:
    """kinit against the lab's KDC, then rdesktop to the host by its name; (output, logons)."""
    user, password = lab.spec.user
    dc = lab.domain_controller()
    assert dc is not None
    home.mkdir(exist_ok=True)
    env = {**os.environ, "KRB5_CONFIG": str(dc.krb5_conf), "HOME": str(home),
           "KRB5CCNAME": f"FILE:{home / 'krb5cc'}", "DISPLAY": display}
    env.pop("KRB5_KDC_PROFILE", None)
    kinit = subprocess.run(["timeout", "10", "kinit", f"{user}@{dc.realm}"], env=env,
                           input=password + "\n", text=True, capture_output=True, timeout=20)
    assert kinit.returncode == 0, kinit.stderr
    endpoint = lab.client_endpoint()
    name = endpoint.server_name
    argv = ["timeout", str(seconds), "rdesktop", "-u", user, "-d", lab.spec.domain, "-p",
            password, f"{name}:{endpoint.port}"]
    argv = private_hosts_argv(home, {name: endpoint.address}, argv)
    # rdesktop asks on stdin whether to trust the lab CA's certificate: yes, as a user would.
    run = subprocess.run(argv, env=env, input="yes\n", text=True, capture_output=True,
                         timeout=seconds + 20)
    deadline = time.monotonic() + 2
    while not lab.host_server.stats.logons and time.monotonic() < deadline:
        time.sleep(0.05)
    return run.stdout + run.stderr, list(lab.host_server.stats.logons)


def test_rdesktop_nla_through_kerberos(domain_lab, tmp_path: Path, xdisplay: str) -> None:
    output, logons = _rdesktop(domain_lab, tmp_path / "home", xdisplay)
    assert "Connection established using CredSSP" in output, output[-800:]
    assert logons == ["kerberos"]
    log = domain_lab.domain_controller().kdc_log.read_text()
    assert "TERMSRV/rdhost.lab.test@LAB.TEST" in log  # the ticket came from the lab's KDC


def test_rdesktop_kerberos_session_activates(domain_lab, tmp_path: Path, xdisplay: str) -> None:
    _rdesktop(domain_lab, tmp_path / "home", xdisplay)
    assert domain_lab.host_server.stats.activated >= 1, domain_lab.host_server.stats
