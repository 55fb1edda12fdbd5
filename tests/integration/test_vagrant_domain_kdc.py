"""The Vagrant backend's Kerberos client against a real KDC: the krb5.conf VagrantLab writes for
its DC VM is read by MIT's own kinit/kvno, which log on, get the host's TERMSRV ticket, and
are refused for a client clock 400 s off (KRB_AP_ERR_SKEW), as an Active Directory KDC refuses.

mock: no Windows VM can run here, so a real MIT KDC (Debian krb5-kdc) on loopback stands in for
the DC VM's Active Directory KDC; nothing of python-vagrant or WinRM is used.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("vagrant")
pytest.importorskip("winrm")

from harness.lab.definition import load_lab
from harness.lab.factory import build_nodes
from harness.lab.kdc import Kdc, missing_tools
from harness.lab.vagrant import VagrantLab, VagrantOptions
from harness.net.state import STATE_ENV
from harness.rdp import kerberos
from harness.rdp.kerberos import KRB_AP_ERR_SKEW, KerberosFailure, KerberosInitiator


@pytest.fixture(autouse=True)
def _need_kerberos(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if missing_tools():
        pytest.skip(f"MIT Kerberos tools missing: {missing_tools()}")
    if not kerberos.available():
        pytest.skip("python-gssapi missing (pip install rdplab[kerberos])")
    monkeypatch.setenv(STATE_ENV, str(tmp_path / "state"))


def test_the_vagrant_kerberos_client_logs_on_and_meets_the_skew(tmp_path: Path) -> None:
    """mock: no Windows VM can run here; a real MIT KDC on loopback plays the DC VM's KDC."""
    spec = load_lab("domain")
    options = VagrantOptions.from_env({"RDPLAB_VM_ADDRESS_DC": "127.0.0.1"})
    workdir = tmp_path / "cell"
    lab = VagrantLab(spec, workdir, build_nodes(spec, workdir), options=options)
    user, password = spec.user
    with Kdc(spec.realm, spec.users, ["rdhost.lab.test"], parent=tmp_path) as dc:
        lab.kdc_port = dc.port
        client = lab.kerberos_client()
        assert client is not None and client.realm == "LAB.TEST"
        initiator = client.initiator(user, password, "rdhost.lab.test")
        assert isinstance(initiator, KerberosInitiator)
        ap_req = initiator.step(None)  # the AP-REQ for TERMSRV/rdhost.lab.test, from the ticket
        assert ap_req and len(ap_req) > 100
        lab.client.network.set_clock_offset(-400)  # beyond the realm's 300 s
        skewed = lab.kerberos_client()
        assert skewed is not None and skewed.clock_offset == -400
        with pytest.raises(KerberosFailure) as caught:
            skewed.initiator(user, password, "rdhost.lab.test")
        assert caught.value.krb_error == KRB_AP_ERR_SKEW
