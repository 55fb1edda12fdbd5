"""Each remediation script, run by the interpreter on a model with the fault it is meant for:
what it really changes, and what it leaves broken."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.host.policy import CredentialUnavailable
from harness.pwsh import (
    RemediationResult,
    ScriptError,
    load_remediation,
    load_remediations,
    run_remediation,
    run_source,
)
from harness.pwsh.parser import parse
from harness.pwsh.remediation import RemediationError
from harness.windows import WindowsNode
from harness.windows.faults import inject
from harness.windows.machinekeys import MACHINEKEYS

DIRECTORY = Path(__file__).resolve().parents[2] / "scenarios" / "remediations"
REQUIRED_IDS = {
    "restart-rdp-service", "renew-rdp-certificate", "rename-machinekeys-reboot",
    "reset-machinekeys-acl", "disable-nla", "client-allow-vulnerable-credssp",
    "host-allow-vulnerable-credssp", "update-client", "update-host", "resync-clock",
    "lower-client-mtu", "enable-rdp-firewall-rules", "connect-by-ip", "reboot-both",
    "enable-tls12-on-host", "raise-connection-limit",
}
WEAKENING = {"disable-nla", "client-allow-vulnerable-credssp", "host-allow-vulnerable-credssp",
             "disable-client-firewall", "set-security-layer-rdp"}


def make_lab(tmp: Path, host_os: str | None = None,
             client_os: str | None = None) -> dict[str, WindowsNode]:
    host = WindowsNode("rdhost", "host", tmp, os_profile=host_os, addresses=["10.0.0.2"])
    client = WindowsNode("client1", "client", tmp, os_profile=client_os, addresses=["10.0.0.3"])
    client.network.set_dns_record(host.fqdn, "10.0.0.2")
    return {"host": host, "client": client}


@pytest.fixture
def lab(tmp_path: Path) -> dict[str, WindowsNode]:
    return make_lab(tmp_path)


def fix(lab: dict[str, WindowsNode], rid: str) -> RemediationResult:
    return run_remediation(DIRECTORY / f"{rid}.yaml", lab)


def credential_ok(node: WindowsNode) -> bool:
    try:
        node.host_policy().load_credential()
    except CredentialUnavailable:
        return False
    return True


# -- the catalogue -------------------------------------------------------------------------------

def test_catalogue_has_every_required_remediation_with_valid_sidecars() -> None:
    catalogue = load_remediations(DIRECTORY)
    assert set(catalogue) >= REQUIRED_IDS
    for rid, rem in catalogue.items():
        assert rem.sources and rem.title
        assert rem.security_impact == ("weakens" if rid in WEAKENING else "none"), rid
        if rem.target == "network":  # network devices: steps, no script
            assert rem.steps and not rem.script.exists(), rid
            continue
        assert rem.script.exists(), rid
        parse(rem.script.read_text(), rem.script.name)


@pytest.mark.parametrize("rid", sorted(REQUIRED_IDS))
def test_every_script_runs_on_a_healthy_lab(tmp_path: Path, rid: str) -> None:
    lab = make_lab(tmp_path)
    lab["client"].network.add_nic("VPN", 1500, ["10.8.0.2"], route=True)
    result = fix(lab, rid)
    assert result.results and all(r.effects for r in result.results)
    assert lab["host"].is_listening() and credential_ok(lab["host"])


def test_sidecar_errors_name_the_file_and_field(tmp_path: Path) -> None:
    (tmp_path / "bad.ps1").write_text("Restart-Computer -Force\n")
    (tmp_path / "bad.yaml").write_text("id: bad\ntitle: t\ntarget: server\nsource: x\n"
                                       "security_impact: none\nnotes: n\n")
    with pytest.raises(RemediationError, match="field 'target'"):
        load_remediation(tmp_path / "bad.yaml")
    rem = load_remediation(DIRECTORY / "reboot-both.yaml")
    with pytest.raises(RemediationError, match="no client node"):
        run_remediation(rem, {"host": make_lab(tmp_path)["host"]})


# -- certificate and key store -------------------------------------------------------------------

def test_restart_renews_an_expired_certificate_but_not_a_corrupt_key(
        lab: dict[str, WindowsNode]) -> None:
    host = lab["host"]
    inject(host, "expire_rdp_certificate")
    fix(lab, "restart-rdp-service")
    assert not host.certstore.rdp_certificate().expired(host.now())
    inject(host, "corrupt_rdp_key")
    fix(lab, "restart-rdp-service")
    assert not credential_ok(host)


def test_renew_certificate_fixes_a_corrupt_key(lab: dict[str, WindowsNode]) -> None:
    host = lab["host"]
    inject(host, "corrupt_rdp_key")
    old = host.certstore.rdp_certificate().thumbprint
    result = fix(lab, "renew-rdp-certificate")
    assert credential_ok(host) and host.certstore.rdp_certificate().thumbprint != old
    assert any("removed certificate" in e for eff in result.results[0].effects
               for e in eff.effects)


def test_renew_certificate_cannot_work_with_a_broken_key_store(
        lab: dict[str, WindowsNode]) -> None:
    host = lab["host"]
    inject(host, "expire_rdp_certificate")
    inject(host, "break_machinekeys_acl")
    fix(lab, "renew-rdp-certificate")
    assert host.certstore.rdp_certificate() is None
    assert "Access is denied" in host.eventlog.query(1057)[-1].message
    assert not credential_ok(host)


def test_rename_machinekeys_and_reboot_fixes_a_broken_store(
        lab: dict[str, WindowsNode]) -> None:
    host = lab["host"]
    inject(host, "expire_rdp_certificate")
    inject(host, "break_machinekeys_acl")
    result = fix(lab, "rename-machinekeys-reboot")
    assert result.rebooted and host.boot_count == 1
    assert host.fs.exists(MACHINEKEYS + "_old") and host.machinekeys.folder_usable()
    assert credential_ok(host) and not host.certstore.rdp_certificate().expired(host.now())


@pytest.mark.parametrize("fault", ["revoke_key_access", "deny_key_access",
                                   "break_machinekeys_acl"])
def test_reset_machinekeys_acl_restores_network_service_access(
        lab: dict[str, WindowsNode], fault: str) -> None:
    host = lab["host"]
    inject(host, fault)
    assert not credential_ok(host)
    fix(lab, "reset-machinekeys-acl")
    assert credential_ok(host)


def test_reset_machinekeys_acl_does_not_repair_a_corrupt_key(
        lab: dict[str, WindowsNode]) -> None:
    inject(lab["host"], "corrupt_rdp_key")
    fix(lab, "reset-machinekeys-acl")
    assert not credential_ok(lab["host"])


# -- registry policy -----------------------------------------------------------------------------

def test_disable_nla_unless_group_policy_says_otherwise(lab: dict[str, WindowsNode]) -> None:
    fix(lab, "disable-nla")
    assert lab["host"].host_policy().user_authentication is False
    inject(lab["host"], "set_nla", {"required": True, "policy": True})
    fix(lab, "disable-nla")
    assert lab["host"].host_policy().user_authentication is True


def test_allow_vulnerable_credssp_on_each_side(lab: dict[str, WindowsNode]) -> None:
    inject(lab["host"], "set_allow_encryption_oracle", {"value": 0})
    fix(lab, "client-allow-vulnerable-credssp")
    assert lab["client"].client_settings().allow_encryption_oracle == 2
    assert lab["host"].host_policy().allow_encryption_oracle == 0
    fix(lab, "host-allow-vulnerable-credssp")
    assert lab["host"].host_policy().allow_encryption_oracle == 2


def test_raise_connection_limit(lab: dict[str, WindowsNode]) -> None:
    host = lab["host"]
    inject(host, "set_incomplete_connections", {"count": 3000})
    fix(lab, "restart-rdp-service")
    assert host.host_policy().deny_error_info == 7  # the half-open connections stay
    fix(lab, "raise-connection-limit")
    assert host.host_policy().deny_error_info is None


# -- updates and TLS -----------------------------------------------------------------------------

def test_update_client_patches_an_unpatched_client(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, client_os="windows-10-1709")
    before = lab["client"].client_settings()
    assert before.credssp_version < 5
    result = fix(lab, "update-client")
    assert result.rebooted and lab["client"].patches.installed == ["KB4103727"]
    after = lab["client"].client_settings()
    assert (after.credssp_version, after.allow_encryption_oracle) == (6, 1)


def test_update_and_tls12_on_a_2008r2_host(tmp_path: Path) -> None:
    lab = make_lab(tmp_path, host_os="windows-server-2008r2")
    host = lab["host"]
    fix(lab, "enable-tls12-on-host")
    assert host.host_tls_versions() == ["TLSv1"]  # the RDP stack lacks KB3080079
    fix(lab, "update-host")
    policy = host.host_policy()
    assert set(host.patches.installed) == {"KB3080079", "KB4103718"}
    assert (policy.tls_max, policy.credssp_version) == ("TLSv1.2", 6)


def test_update_without_the_module_is_a_script_error(lab: dict[str, WindowsNode]) -> None:
    with pytest.raises(ScriptError, match="not recognized"):
        run_source("Install-WindowsUpdate -AcceptAll", lab["host"])


# -- clock, network, firewall, target ------------------------------------------------------------

def test_resync_clock_on_both(lab: dict[str, WindowsNode]) -> None:
    inject(lab["client"], "set_clock_offset", {"seconds": 900})
    inject(lab["host"], "set_clock_offset", {"seconds": -30 * 3600})
    result = fix(lab, "resync-clock")
    assert lab["client"].network.clock_offset == 0
    assert lab["host"].network.clock_offset == -30 * 3600  # beyond MaxPosPhaseCorrection
    host_run = result.results[0]
    assert host_run.last_exit_code == 1 and "too big" in host_run.output[-1]


def test_lower_client_mtu_persists(lab: dict[str, WindowsNode]) -> None:
    client = lab["client"]
    inject(client, "add_nic", {"alias": "VPN", "mtu": 1500, "addresses": ["10.8.0.2"]})
    fix(lab, "lower-client-mtu")
    client.reboot()
    assert client.client_settings().mtu == 1400


def test_lower_client_mtu_without_a_vpn_interface(lab: dict[str, WindowsNode]) -> None:
    result = fix(lab, "lower-client-mtu").results[0]
    assert result.last_exit_code == 1 and result.output == ["Element not found."]
    assert lab["client"].client_settings().mtu == 1500


@pytest.mark.parametrize(("fault", "args", "after"), [
    ("disable_firewall_group", {}, "allow"),
    ("add_block_rule", {"port": 3389}, "drop"),
    ("add_block_rule", {"port": 3389, "mode": "reject"}, "reject"),
])
def test_enable_rdp_firewall_rules(lab: dict[str, WindowsNode], fault: str,
                                   args: dict[str, object], after: str) -> None:
    inject(lab["host"], fault, args)
    assert lab["host"].firewall_verdict() != "allow"
    fix(lab, "enable-rdp-firewall-rules")
    assert lab["host"].firewall_verdict() == after


def test_connect_by_ip_bypasses_a_wrong_hosts_entry(lab: dict[str, WindowsNode]) -> None:
    client = lab["client"]
    inject(client, "set_hosts_entry", {"name": "rdhost.lab.test", "address": "10.9.9.9"})
    assert client.client_settings().resolve("rdhost.lab.test") == "10.9.9.9"
    fix(lab, "connect-by-ip")
    settings = client.client_settings()
    assert settings.connection_target == "10.0.0.2"
    assert settings.resolve(settings.connection_target) == "10.0.0.2"


def test_reboot_both(lab: dict[str, WindowsNode]) -> None:
    inject(lab["client"], "set_cached_dns", {"name": "rdhost.lab.test", "address": "10.9.9.9"})
    lab["host"].services.stop("TermService", force=True)
    result = fix(lab, "reboot-both")
    assert [r.node for r in result.results] == ["rdhost", "client1"]
    assert lab["host"].boot_count == lab["client"].boot_count == 1
    assert lab["host"].is_listening()
    assert lab["client"].client_settings().resolve("rdhost.lab.test") == "10.0.0.2"
