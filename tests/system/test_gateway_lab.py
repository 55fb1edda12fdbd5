"""The RD Gateway in the lab: the policy derived from the gateway node's model, the five gateway
faults reproduced through the emulated gateway, their five remediations run as matrix cells, the
probe's --gateway path, and real xfreerdp 2.11 through the lab's gateway to the lab's host."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.cli import main as rdplab
from harness.host.policy import CredentialUnavailable
from harness.lab.base import ADDRESSES, NotEmulated
from harness.lab.definition import load_lab
from harness.lab.factory import LabHandle
from harness.lab.loopback import LoopbackLab
from harness.matrix.cell import CellOptions, bounded, run_cell
from harness.pki import KeyPool
from harness.probe.profiles import load_profile
from harness.pwsh import NotEmulated as ScriptNotEmulated
from harness.pwsh import ScriptError, run_source
from harness.scenario.actions import apply_step
from harness.scenario.catalog import load_catalog
from harness.windows.faults import inject
from harness.windows.gateway import DEFAULT_GROUP
from harness.windows.node import WindowsNode

GATEWAY_FAULTS = ("gateway-cert-expired", "gateway-cert-name-mismatch",
                  "gateway-websocket-blocked", "gateway-resource-denied",
                  "gateway-to-host-blocked")
GATEWAY_STAGES = ["gateway_tcp", "gateway_tls", "gateway_http", "gateway_tunnel"]


@pytest.fixture(scope="module", autouse=True)
def key_pool() -> Iterator[KeyPool]:
    with KeyPool(4) as pool:
        yield pool


@pytest.fixture
def lab() -> Iterator[LoopbackLab]:
    handle = LabHandle(load_lab("default"), "loopback")
    with handle as running:
        assert isinstance(running, LoopbackLab)
        yield running


def probe(lab: LoopbackLab, profile: str = "mstsc-win11") -> object:
    return lab.probe(bounded(load_profile(profile), 3.0), usable_window=1.5)


def stages(result: object) -> list[tuple[str, str]]:
    return [(s.stage, s.outcome) for s in result.stages]  # type: ignore[attr-defined]


# -- the model: GatewayPolicy derived from the gateway node's state --------------------------------

def test_policy_derives_from_the_gateway_model(lab: LoopbackLab) -> None:
    gateway, host = lab.gateway, lab.host
    assert gateway is not None and gateway.role == "gateway"
    policy = gateway.gateway_policy()
    user = lab.spec.user[0]
    # CAP: Domain Users@LAB; RAP: the lab put the host's FQDN and NetBIOS name in its group
    assert policy.user_allowed(user, "LAB") and not policy.user_allowed("mallory", "EVIL")
    assert policy.resource_allowed(host.fqdn, 3389, user, "LAB")
    assert policy.resource_allowed(host.computer_name, 3389, user, "LAB")
    assert not policy.resource_allowed(host.fqdn, 3390, user, "LAB")
    assert not policy.resource_allowed(ADDRESSES["host"], 3389, user, "LAB")
    assert policy.websocket_allowed and policy.users == gateway.users
    # the certificate: lab CA, the gateway's FQDN, in LocalMachine\My, read per connection
    cred = policy.load_credential()
    bound = gateway.bound_gateway_certificate()
    assert bound is not None and bound.pem == cred.cert_pem
    assert bound.subject == f"CN={gateway.fqdn}" and bound.cert.issuer == gateway.ca.cert.subject
    assert not bound.expired(gateway.now())

    # every change to the model shows in the next policy, nothing is configured twice
    inject(gateway, "expire_gateway_certificate", {"days_ago": 30})
    assert gateway.bound_gateway_certificate().expired(gateway.now())
    assert policy.load_credential().cert_pem != cred.cert_pem  # the loader reads the store again
    inject(gateway, "remove_gateway_resource", {"name": host.fqdn})
    inject(gateway, "disable_firewall_group", {"group": "Remote Desktop (WebSocket)"})
    run_source('Set-Item -Path "RDS:\\GatewayServer\\CAP\\RDG_CAP_AllUsers\\Status" -Value 0',
               gateway)
    after = gateway.gateway_policy()
    assert not after.resource_allowed(host.fqdn, 3389, user, "LAB")
    assert after.resource_allowed(host.computer_name, 3389, user, "LAB")
    assert not after.websocket_allowed
    assert not after.user_allowed(user, "LAB")  # no enabled CAP: nobody


def test_unbound_or_unreadable_gateway_certificate_is_unavailable(tmp_path: Path) -> None:
    gateway = WindowsNode("RDGW", "gateway", tmp_path)
    gateway.gateway.bind_certificate("00" * 20)
    with pytest.raises(CredentialUnavailable):
        gateway.gateway_policy().load_credential()
    assert gateway.eventlog.query(36870)
    with pytest.raises(ValueError, match="not an RD Gateway"):
        WindowsNode("RDHOST", "host", tmp_path).gateway_policy()


def test_outbound_firewall_of_the_gateway(tmp_path: Path) -> None:
    gateway = WindowsNode("RDGW", "gateway", tmp_path)
    assert gateway.outbound_verdict("10.213.2.2", 3389) == "allow"
    inject(gateway, "set_firewall_outbound_default", {"action": "Block"})
    assert gateway.outbound_verdict("10.213.2.2", 3389) == "block"
    run_source('New-NetFirewallRule -DisplayName "out" -Direction Outbound -Protocol TCP '
               '-RemotePort 3389 -RemoteAddress 10.213.2.0/24 -Action Allow', gateway)
    assert gateway.outbound_verdict("10.213.2.2", 3389) == "allow"
    assert gateway.outbound_verdict("10.213.9.2", 3389) == "block"
    run_source('New-NetFirewallRule -DisplayName "no rdp" -Direction Outbound -Protocol TCP '
               '-RemotePort 3389 -Action Block', gateway)
    assert gateway.outbound_verdict("10.213.2.2", 3389) == "block"  # block beats allow


def test_rds_provider_subset_and_its_limits(tmp_path: Path) -> None:
    gateway = WindowsNode("RDGW", "gateway", tmp_path)
    result = run_source('Import-Module RemoteDesktopServices\n'
                        'Get-ChildItem "RDS:\\GatewayServer\\RAP" | Select-Object -ExpandProperty'
                        ' Name\n', gateway)
    assert result.output == ["RDG_RAP_SessionHosts"]
    with pytest.raises(ScriptNotEmulated):
        run_source('Set-Item "RDS:\\GatewayServer\\Transport\\UDP\\Enabled" -Value 0', gateway)
    with pytest.raises(ScriptNotEmulated):
        run_source("Set-RDCertificate -Role RDGateway -ImportPath C:\\x.pfx", gateway)
    with pytest.raises(ScriptError, match="RDS"):  # not a gateway: the RDS: drive does not exist
        run_source('Get-Item "RDS:\\GatewayServer\\SSLCertificate\\Thumbprint"',
                   WindowsNode("RDHOST", "host", tmp_path))
    with pytest.raises(ScriptError, match="UserGroups"):  # a dynamic parameter off the provider
        run_source('New-Item -Path "HKLM:\\SOFTWARE\\x" -UserGroups "a@b"', gateway)


# -- the five gateway faults, reproduced through the emulated gateway -----------------------------

@pytest.mark.parametrize("fault_id", GATEWAY_FAULTS)
def test_gateway_fault_reproduces_at_its_stage(lab: LoopbackLab, fault_id: str) -> None:
    fault = load_catalog().faults[fault_id]
    assert fault.requires == ("gateway",)
    baseline = probe(lab)
    assert baseline.symptom is None  # type: ignore[attr-defined]
    assert stages(baseline)[:4] == [(s, "ok") for s in GATEWAY_STAGES]
    for step in fault.inject:
        apply_step(lab, step)
    lab.sync()
    for profile, expected in fault.expected.items():
        seen = probe(lab, profile)
        want = None if expected["symptom"] == "none" else expected["symptom"]
        assert seen.symptom == want, (profile, stages(seen))  # type: ignore[attr-defined]
        if want is not None:  # the failed gateway stage is recorded once, right after the good ones
            stage = want.split("/")[0]
            trace = stages(seen)
            assert trace[-1] == (stage, "failed")
            assert trace[:-1] == [(s, "ok") for s in GATEWAY_STAGES[:GATEWAY_STAGES.index(stage)]]


def test_gateway_faults_land_in_the_gateway_event_log(lab: LoopbackLab) -> None:
    inject(lab.gateway, "remove_gateway_resource", {"name": lab.host.fqdn})
    assert probe(lab).symptom == "gateway_tunnel/tsgu:E_PROXY_RAP_ACCESSDENIED"
    assert lab.gateway.eventlog.query(301) and lab.gateway.eventlog.query(200)
    assert lab.host_server is not None and lab.host_server.stats.accepted == 0


def test_host_faults_act_through_the_gateway(lab: LoopbackLab) -> None:
    """The gateway reaches the host through the lab's own connect: host-side state applies."""
    inject(lab.host, "expire_rdp_certificate", {"days_ago": 30})
    seen = probe(lab, "freerdp2")
    assert seen.symptom == "tls/cert_rejected:10"
    assert stages(seen)[:5] == [*((s, "ok") for s in GATEWAY_STAGES), ("tcp", "ok")]
    inject(lab.host, "add_block_rule", {"port": 3389, "mode": "reject", "upstream": True})
    lab.sync()
    assert probe(lab).symptom == "gateway_tunnel/tsgu:E_PROXY_TS_CONNECTFAILED"
    # a stale DNS record misleads the gateway too: it asks the same DNS server as the client
    lab.host.firewall.clear_upstream(3389)
    lab.sync()
    inject(lab.client, "set_dns_record", {"name": lab.host.fqdn, "address": "10.213.2.99"})
    assert probe(lab).symptom == "gateway_tunnel/tsgu:E_PROXY_TS_CONNECTFAILED"


def test_gateway_firewall_drop_is_not_emulated_on_loopback(lab: LoopbackLab) -> None:
    inject(lab.gateway, "disable_firewall_group",
           {"group": "Secure World Wide Web Services (HTTPS)"})
    with pytest.raises(NotEmulated, match="netns"):
        probe(lab)


# -- the five remediations, each as a matrix cell on its fault -----------------------------------

REMEDIATION_OUTCOMES = [
    # A new self-signed certificate is trusted by no client (the lab's clients trust the lab CA),
    # and a gateway certificate cannot be clicked through: the run says not fixed.
    ("gateway-cert-expired", "renew-gateway-certificate", "not-fixed",
     "gateway_tls/cert_untrusted"),
    ("gateway-cert-name-mismatch", "connect-by-certificate-name", "fixed", None),
    ("gateway-websocket-blocked", "enable-websocket-firewall-rule", "fixed", None),
    ("gateway-resource-denied", "allow-host-in-resource-policy", "fixed", None),
    ("gateway-to-host-blocked", "open-gateway-to-host", "fixed", None),
]


@pytest.mark.parametrize(("fault", "remediation", "outcome", "still"), REMEDIATION_OUTCOMES)
def test_remediation_cell(fault: str, remediation: str, outcome: str, still: str | None) -> None:
    cell = run_cell(CellOptions(lab="default", backend="loopback"), fault, remediation)
    assert cell.outcome == outcome, cell.reason
    if still:
        assert cell.reason == f"still {still}"


def test_gateway_cells_in_a_lab_without_gateway_are_not_emulated() -> None:
    opts = CellOptions(lab="direct", backend="loopback")
    cell = run_cell(opts, "gateway-cert-expired", "renew-gateway-certificate")
    assert (cell.outcome, cell.reason) == ("not-emulated", "the lab has no RD Gateway node")
    cell = run_cell(opts, "expired-cert", "open-gateway-to-host")
    assert cell.outcome == "not-emulated" and "no gateway node" in cell.reason
    # a client script whose parameter is the gateway's name cannot run without a gateway either
    cell = run_cell(opts, "expired-cert", "connect-by-certificate-name")
    assert cell.outcome == "not-emulated" and "no gateway node" in cell.reason


# -- rdplab probe --gateway ---------------------------------------------------------------------

def test_probe_cli_through_the_gateway(lab: LoopbackLab, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    user, password = lab.spec.user
    monkeypatch.setenv("RDPLAB_TEST_PW", password)
    gw = f"https://127.0.0.1:{lab._gateway_port}"
    url = f"rdp://LAB%5C{user}@{lab.host.fqdn}"
    base = ["probe", url, "--gateway", gw, "--password-env", "RDPLAB_TEST_PW",
            "--profile", "freerdp2", "--timeout", "15", "--json"]
    assert rdplab([*base, "--cert-policy", "ignore"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [s["stage"] for s in out["stages"]][:5] == [*GATEWAY_STAGES, "tcp"]
    assert out["ok"] and out["stages"][-1]["stage"] == "usable"
    # verifying against the lab CA: the gateway's certificate is not for 127.0.0.1
    ca = lab.workdir / "ca.pem"
    ca.write_bytes(lab.client.client_settings().trusted_ca_pem)
    assert rdplab([*base, "--cafile", str(ca)]) == 21  # gateway_tls
    out = json.loads(capsys.readouterr().out)
    assert out["failure"]["event"] == "cert_name_mismatch"
    assert out["codes"]["freerdp2"]["exit"] == 143


# -- real xfreerdp 2.11 through the lab's gateway -----------------------------------------------

needs_xfreerdp = pytest.mark.skipif(
    not (shutil.which("xfreerdp") and shutil.which("Xvfb")), reason="needs xfreerdp and Xvfb")


@pytest.fixture(scope="module")
def display() -> Iterator[str]:
    from harness.xdisplay import Xvfb

    with Xvfb() as x:
        assert x.display
        yield x.display


def xfreerdp(lab: LoopbackLab, display: str, cert: str, transport: str = "http") -> object:
    from harness.freerdp import run_xfreerdp

    user, password = lab.spec.user
    ca = lab.workdir / "lab-ca.pem"
    ca.write_bytes(lab.client.client_settings().trusted_ca_pem)
    extra = [f"/g:127.0.0.1:{lab._gateway_port}", f"/gu:{user}", f"/gp:{password}", "/gd:LAB",
             f"/gt:{transport}"]
    return run_xfreerdp(lab.host.fqdn, 3389, display=display, username=user, password=password,
                        domain="LAB", cert=cert, cafile=ca, extra=extra, timeout=20)


@pytest.mark.freerdp
@needs_xfreerdp
def test_xfreerdp_reaches_activation_through_the_gateway(lab: LoopbackLab, display: str) -> None:
    run = xfreerdp(lab, display, "ignore")
    assert run.exit_code == 0, run.output[-2000:]  # type: ignore[attr-defined]
    assert lab.host_server is not None and lab.host_server.stats.activated == 1
    assert lab.gateway.eventlog.query(302)  # the gateway connected to the host


@pytest.mark.freerdp
@needs_xfreerdp
def test_xfreerdp_refuses_the_expired_gateway_certificate(lab: LoopbackLab,
                                                          display: str) -> None:
    inject(lab.gateway, "expire_gateway_certificate", {"days_ago": 30})
    run = xfreerdp(lab, display, "deny")
    assert run.exit_code == 143, run.output[-2000:]  # type: ignore[attr-defined]
    assert "certificate has expired (10)" in run.output  # type: ignore[attr-defined]
    assert "rdg_tls_connect" in run.output  # type: ignore[attr-defined]
    assert lab.host_server is not None and lab.host_server.stats.accepted == 0


@pytest.mark.freerdp
@needs_xfreerdp
@pytest.mark.parametrize("case", ["wrong-name", "gateway-stopped"])
def test_xfreerdp_other_gateway_failures_are_143(lab: LoopbackLab, display: str,
                                                  case: str) -> None:
    """Where the freerdp2 rows for gateway_tls (a name the certificate lacks: /g: by address)
    and gateway_tcp (nothing listens) come from: rdg_tls_connect fails both with 143."""
    if case == "gateway-stopped":
        inject(lab.gateway, "stop_service", {"name": "TSGateway"})
        lab.sync()
        assert lab.gateway_server is None
    run = xfreerdp(lab, display, "deny")
    assert run.exit_code == 143, run.output[-2000:]  # type: ignore[attr-defined]
    expired = "certificate has expired" in run.output  # type: ignore[attr-defined]
    wrong_name = "valid certificate for the wrong name" in run.output  # type: ignore[attr-defined]
    assert not expired and wrong_name == (case == "wrong-name")


@pytest.mark.freerdp
@needs_xfreerdp
def test_xfreerdp_falls_back_when_the_websocket_is_blocked(lab: LoopbackLab,
                                                           display: str) -> None:
    """Why freerdp2 expects no symptom for gateway-websocket-blocked."""
    inject(lab.gateway, "disable_firewall_group", {"group": "Remote Desktop (WebSocket)"})
    run = xfreerdp(lab, display, "ignore")
    assert run.exit_code == 0, run.output[-2000:]  # type: ignore[attr-defined]
    assert any("(HTTP transport)" in e.message for e in lab.gateway_server.log)


def test_client_gateway_setting_and_lab_wiring(lab: LoopbackLab) -> None:
    settings = lab.client.client_settings()
    assert settings.gateway == lab.gateway.fqdn
    assert settings.resolve(lab.gateway.fqdn) == ADDRESSES["gateway"]
    assert lab.gateway_resolve(lab.host.fqdn) == ADDRESSES["host"]
    group = lab.gateway.gateway.group(DEFAULT_GROUP)
    assert group is not None and group.computers == [lab.host.fqdn, lab.host.computer_name]
    assert lab.xfreerdp_gateway() == ("127.0.0.1", lab._gateway_port, lab.gateway.fqdn)
