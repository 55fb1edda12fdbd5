"""The domain lab: a real MIT KDC made from the lab model, Kerberos in SPNEGO through the probe
and the emulated host, the client's clock judged by the KDC, Negotiate's NTLM fallback, and
cleanup of the KDC's process and folder (also after a kill -9)."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.lab.definition import load_lab
from harness.lab.factory import LabHandle
from harness.lab.kdc import Kdc, missing_tools
from harness.matrix.cell import CellOptions, run_cell
from harness.net.cleanup import down_all
from harness.net.state import STATE_ENV, process_alive
from harness.probe.profiles import load_profile
from harness.rdp import kerberos

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _need_kerberos(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = missing_tools()
    if missing:
        pytest.skip(f"MIT Kerberos tools missing: {missing} (krb5-kdc krb5-admin-server krb5-user)")
    if not kerberos.available():
        pytest.skip("python-gssapi missing (pip install rdplab[kerberos])")
    monkeypatch.setenv(STATE_ENV, str(tmp_path / "state"))


@pytest.fixture
def lab(tmp_path: Path) -> Iterator:
    with LabHandle(load_lab("domain"), "loopback") as running:
        yield running


def _credssp(result) -> dict:
    return next(s.detail for s in result.stages if s.stage == "credssp")


def test_kdc_is_made_from_the_model(lab) -> None:
    kdc = lab.kdc
    assert kdc is not None and kdc.realm == "LAB.TEST"
    assert kdc.keytab(lab.host.fqdn).stat().st_size > 0
    listed = subprocess.run(["klist", "-k", str(kdc.keytab(lab.host.fqdn))], text=True,
                            capture_output=True, timeout=10).stdout
    assert "TERMSRV/rdhost.lab.test@LAB.TEST" in listed
    state = kdc.state
    assert state is not None
    kinds = {r["kind"] for r in state.resources}
    assert kinds == {"tempdir", "pid"}


def test_mstsc_uses_kerberos_and_freerdp_raw_ntlm(lab) -> None:
    mstsc = lab.probe(load_profile("mstsc-win11"))
    assert mstsc.failure is None, mstsc.failure
    detail = _credssp(mstsc)
    assert detail["mechanism"] == "kerberos" and detail["spnego"] is True
    freerdp = lab.probe(load_profile("freerdp2"))
    assert freerdp.failure is None, freerdp.failure
    assert _credssp(freerdp)["mechanism"] == "ntlm" and _credssp(freerdp)["spnego"] is False


def test_clock_skew_is_judged_by_the_kdc(lab) -> None:
    profile = load_profile("mstsc-win11").with_overrides(cert_policy="ignore")
    lab.client.network.set_clock_offset(-200)  # inside the realm's 300 s clockskew
    assert lab.probe(profile).failure is None
    lab.client.network.set_clock_offset(-400)
    result = lab.probe(profile)
    assert result.failure is not None
    assert (result.failure.stage, result.failure.event) == ("credssp", "time_skew")
    assert "KRB_AP_ERR_SKEW" in result.failure.reason
    assert result.codes["mstsc-win11"]["message"].endswith("(Code: 0x80090324)")
    dc = lab.domain_controller()
    assert dc is not None and (dc.realm, dc.kdc_address) == ("LAB.TEST", "127.0.0.1")
    assert "Clock skew too great" in dc.kdc_log.read_text()  # the KDC itself refused


def test_negotiate_falls_back_to_ntlm_by_address(lab) -> None:
    """No SPN names an IP address: Windows' Negotiate offers NTLM alone."""
    from harness.lab.base import ADDRESSES

    target, options = lab.probe_setup(load_profile("mstsc-win11"))
    target.host = ADDRESSES["host"]
    options = options.__class__(**{**options.__dict__, "cert_policy": "ignore"})
    from harness.probe.runner import run_probe

    result = run_probe(target, options)
    assert result.failure is None, result.failure
    detail = _credssp(result)
    assert detail["mechanism"] == "ntlm" and detail["spnego"] is True
    assert "IP address" in detail["kerberos_fallback"]


def test_wrong_password_is_refused_by_the_kdc(lab) -> None:
    target, options = lab.probe_setup(load_profile("mstsc-win11"))
    target.password = "not-the-password"
    from harness.probe.runner import run_probe

    result = run_probe(target, options)
    assert result.failure is not None
    assert (result.failure.stage, result.failure.event) == ("credssp", "logon_failure")


def test_clock_skew_cell_on_the_domain_lab() -> None:
    """The matrix cell: reproduced through the KDC, fixed by resync-clock."""
    opts = CellOptions(lab="domain", backend="loopback")
    fixed = run_cell(opts, "clock-skew@3h", "resync-clock")
    assert fixed.symptoms["mstsc-win11"] == "credssp/time_skew"
    assert fixed.codes["mstsc-win11"]["message"].endswith("0x80090324)")
    assert fixed.outcome == "fixed", fixed.reason
    not_fixed = run_cell(opts, "clock-skew@3h", "disable-nla")
    assert not_fixed.outcome == "not-fixed"


CHILD = """
import sys, time
from harness.lab.kdc import Kdc
kdc = Kdc("LAB.TEST", {"alice": "Secret1!"}, ["rdhost.lab.test"]).start()
print(kdc.process.pid, kdc.dir, flush=True)
time.sleep(600)
"""


def test_down_all_after_kill_9(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", CHILD], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        assert ready, "the child did not start its KDC"
        pid_text, _, folder = proc.stdout.readline().strip().partition(" ")
        kdc_pid = int(pid_text)
        assert Path(folder).is_dir() and process_alive(kdc_pid, None)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 5
        while process_alive(kdc_pid, None) and time.monotonic() < deadline:
            time.sleep(0.05)  # PR_SET_PDEATHSIG: the KDC dies with its parent
        assert not process_alive(kdc_pid, None)
        assert Path(folder).is_dir()  # nobody cleaned up yet
        removed = down_all()
        assert not Path(folder).exists() and any(folder in r for r in removed)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_preflight_names_what_a_domain_lab_lacks(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.errors import BackendUnavailable
    from harness.lab import contract, kdc
    from harness.lab.loopback import LoopbackLab

    LoopbackLab.preflight(load_lab("domain"))  # everything is here
    monkeypatch.setattr(kdc, "missing_tools", lambda: ["krb5kdc"])
    with pytest.raises(BackendUnavailable, match="krb5-kdc"):
        LoopbackLab.preflight(load_lab("domain"))
    LoopbackLab.preflight(load_lab("direct"))  # no DC: nothing more needed
    assert contract.domain_controller_unavailable() is not None


def test_kdc_stop_removes_everything(tmp_path: Path) -> None:
    kdc = Kdc("EXAMPLE.TEST", {"bob": "Pa55word!"}, ["h.example.test"], parent=tmp_path)
    with kdc:
        folder, pid = kdc.dir, kdc.process.pid if kdc.process else 0
        state_file = kdc.state.path if kdc.state else None
        assert folder is not None and folder.is_dir() and state_file and state_file.exists()
    assert not folder.exists() and not process_alive(pid, None)
    assert state_file is not None and not state_file.exists()



def test_kdc_takes_another_port_when_its_port_is_taken_first(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process binds the picked port before krb5kdc does (CI saw a connection take it):
    krb5kdc's "Address already in use" makes start() pick again, and the KDC serves kinit."""
    import socket

    import harness.lab.kdc as kdc_module
    from harness.net.ports import free_port

    squatter = socket.socket()  # bound like an outgoing connection's source port
    squatter.bind(("127.0.0.1", 0))
    picks = iter([squatter.getsockname()[1], free_port(udp=True)])
    monkeypatch.setattr(kdc_module, "free_port", lambda *a, **k: next(picks))
    with squatter, Kdc("EXAMPLE.TEST", {"bob": "Pa55word!"}, ["h.example.test"],
                       parent=tmp_path) as kdc:
        assert kdc.port != squatter.getsockname()[1]
        assert str(kdc.port) in kdc.krb5_conf.read_text()
        assert [r for r in kdc.state.resources if r.get("kind") == "pid"] == [
            r for r in kdc.state.resources if r.get("kind") == "pid"
            and r.get("pid") == kdc.process.pid]
        done = subprocess.run(["kinit", "bob@EXAMPLE.TEST"], input="Pa55word!\n", text=True,
                              capture_output=True, timeout=20, env=kdc.env())
        assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("spnego_wrapped", [False, True])
def test_hostile_kerberos_tokens_end_typed(lab, spnego_wrapped: bool) -> None:
    """Garbage where an AP-REQ belongs (raw, as rdesktop sends it, or inside SPNEGO) is a
    typed failure (a refusal with an errorCode, or a ParseError for a broken token), never a
    crash."""
    from harness.rdp import ntlm
    from harness.rdp.credssp import CredSspFailure, CredSspServer, TSRequest
    from harness.rdp.errors import ParseError, RdpError
    from harness.rdp.kerberos import KerberosAcceptor
    from harness.rdp.spnego import KRB5_OID, MS_KRB5_OID, NegTokenInit

    keytab = lab.kdc.keytab(lab.host.fqdn)
    for junk in (b"\x60\x0b\x06\x09\x2a\x86\x48\x86\xf7\x12\x01\x02\x02",
                 b"\x60\x0d\x06\x09\x2a\x86\x48\x86\xf7\x12\x01\x02\x02\x01\x00",
                 bytes.fromhex("6082ffff06092a864886f712010202") + b"\x00" * 40):
        token = NegTokenInit((MS_KRB5_OID, KRB5_OID), junk).encode() if spnego_wrapped else junk
        acceptor = ntlm.NtlmAcceptor({"alice": "x"}, nb_domain="LAB", nb_computer="RDHOST",
                                     dns_domain="lab.test", dns_computer="rdhost.lab.test")
        server = CredSspServer(acceptor, public_key=b"k",
                               kerberos=lambda: KerberosAcceptor(keytab))
        with pytest.raises(RdpError) as err:
            server.receive(TSRequest(6, nego_tokens=[token]).encode())
        if isinstance(err.value, CredSspFailure):
            assert err.value.status is not None and server.pending_error_reply is not None
        else:
            assert isinstance(err.value, ParseError)
