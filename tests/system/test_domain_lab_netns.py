"""The domain lab on the netns backend: the DC's KDC in its own namespace."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.lab.definition import load_lab
from harness.lab.factory import LabHandle
from harness.lab.kdc import missing_tools
from harness.net.state import STATE_ENV, process_alive
from harness.probe.profiles import load_profile
from harness.rdp import kerberos

pytestmark = [pytest.mark.netns]


@pytest.fixture(autouse=True)
def _need_kerberos(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if missing_tools() or not kerberos.available():
        pytest.skip(f"MIT Kerberos tools or python-gssapi missing: {missing_tools()}")
    monkeypatch.setenv(STATE_ENV, str(tmp_path / "state"))


def _credssp(result) -> dict:
    return next(s.detail for s in result.stages if s.stage == "credssp")


def test_netns_dc_in_its_own_namespace(tmp_path: Path) -> None:
    """On netns the KDC runs in the DC's namespace on port 88 and sees the client's address."""
    from harness.net import netns_available

    ok, why = netns_available()
    if not ok:
        pytest.skip(f"network namespaces unavailable: {why}")
    with LabHandle(load_lab("domain"), "netns") as lab:
        assert (lab.kdc.address, lab.kdc.port) == ("10.213.4.2", 88)
        result = lab.probe(load_profile("mstsc-win11"))
        assert result.failure is None, result.failure
        assert _credssp(result)["mechanism"] == "kerberos"
        log = lab.domain_controller().kdc_log.read_text()
        assert "10.213.1.2: ISSUE" in log  # the AS/TGS requests came from the client's namespace
        lab.client.network.set_clock_offset(-10800)
        skewed = lab.probe(load_profile("mstsc-win11"))
        assert skewed.failure is not None and skewed.failure.event == "time_skew"
        pid = lab.kdc.process.pid if lab.kdc.process else 0
    assert not process_alive(pid, None)
