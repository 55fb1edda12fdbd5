"""The Windows model: what Windows does with its registry, certificate and key stores, services,
firewall, clock and patch level, and the HostPolicy / ClientSettings derived from them."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding

from harness.host.policy import CredentialUnavailable
from harness.windows import WindowsNode, ace
from harness.windows.acl import AclTable
from harness.windows.faults import ACTIONS, FaultError, inject
from harness.windows.machinekeys import MACHINEKEYS
from harness.windows.registry import (
    CREDSSP_PARAMETERS,
    RDP_TCP,
    TERMINAL_SERVER,
    TS_POLICY,
    Registry,
    RegistryError,
    RegType,
)
from harness.windows.services import ServiceError


@pytest.fixture
def lab(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def host(lab: Path) -> WindowsNode:
    return WindowsNode("rdhost", "host", lab, addresses=["10.0.0.2"])


@pytest.fixture
def client(lab: Path) -> WindowsNode:
    return WindowsNode("client1", "client", lab, addresses=["10.0.0.3"])


def served_cert(node: WindowsNode) -> x509.Certificate:
    return x509.load_pem_x509_certificate(node.host_policy().load_credential().cert_pem)


def credential_error(node: WindowsNode) -> CredentialUnavailable:
    with pytest.raises(CredentialUnavailable) as info:
        node.host_policy().load_credential()
    return info.value


# -- derived host policy and the served certificate ---------------------------------------------

def test_default_host_policy_is_derived_from_the_model(host: WindowsNode) -> None:
    policy = host.host_policy()
    assert (policy.security_layer, policy.user_authentication) == (1, True)
    assert (policy.tls_min, policy.tls_max) == ("TLSv1.2", "TLSv1.3")
    assert (policy.credssp_version, policy.allow_encryption_oracle) == (6, 1)
    assert policy.deny_error_info is None
    assert policy.computer_name == "RDHOST" and policy.dns_domain == "lab.test"
    assert policy.users == host.users and "labadmin" in policy.users
    assert "20348" in policy.os_build
    assert host.is_listening() and host.listening_port() == 3389


def test_served_certificate_is_real_and_signed_by_the_lab_ca(host: WindowsNode) -> None:
    cred = host.host_policy().load_credential()
    cert = x509.load_pem_x509_certificate(cred.cert_pem)
    key = serialization.load_pem_private_key(cred.key_pem, None)
    assert key.key_size == 2048
    assert cert.subject.rfc4514_string() == "CN=rdhost.lab.test"
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "rdhost.lab.test" in san.get_values_for_type(x509.DNSName)
    assert 179 <= (cert.not_valid_after_utc - cert.not_valid_before_utc).days <= 180
    ca = host.ca.cert
    ca.public_key().verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(),
                           cert.signature_hash_algorithm)
    key_file = host.fs.real(f"{MACHINEKEYS}\\{host.machinekeys.rdp_key_name}")
    assert key_file.name.startswith("f686aace6942fb7f7ceb231212eef4a4_")
    assert key_file.read_bytes() == cred.key_pem


def test_lab_ca_is_created_once_per_lab(lab: Path, host: WindowsNode) -> None:
    ca_file = lab / "lab-ca" / "ca.crt"
    before = ca_file.read_bytes()
    other = WindowsNode("rdhost2", "host", lab)
    assert ca_file.read_bytes() == before == other.ca.cert_pem


def test_expired_certificate_is_renewed_at_restart_when_the_store_is_usable(
        host: WindowsNode) -> None:
    inject(host, "expire_rdp_certificate", {"days_ago": 10})
    old = served_cert(host)
    assert old.not_valid_after_utc < dt.datetime.now(dt.UTC)
    host.services.restart("TermService", force=True)
    new = served_cert(host)
    assert new.not_valid_after_utc > dt.datetime.now(dt.UTC) + dt.timedelta(days=170)
    assert new.serial_number != old.serial_number
    assert 1056 in host.eventlog.ids() and 1058 not in host.eventlog.ids()


def test_expired_certificate_with_broken_acl_logs_1058_and_credential_fails(
        host: WindowsNode) -> None:
    inject(host, "expire_rdp_certificate")
    inject(host, "break_machinekeys_acl")
    host.services.restart("TermService", force=True)
    [event] = host.eventlog.query(1058)
    assert "Access is denied" in event.message
    error = credential_error(host)
    assert (error.event_id, error.status) == (36870, "0x8009030D")
    assert "access denied" in error.reason
    assert host.eventlog.query(36870)
    assert host.certstore.rdp_certificate().expired(host.now())  # keeps the expired one


def test_missing_store_logs_1057_keyset_does_not_exist(host: WindowsNode) -> None:
    inject(host, "remove_rdp_certificate")
    inject(host, "rename_machinekeys")
    host.services.restart("TermService", force=True)
    [event] = host.eventlog.query(1057)
    assert "Keyset does not exist" in event.message
    error = credential_error(host)
    assert error.status == "0x8009030E"  # no certificate at all


def test_rename_machinekeys_and_reboot_rebuilds_store_and_certificate(host: WindowsNode) -> None:
    inject(host, "break_machinekeys_acl")
    credential_error(host)
    old = host.certstore.rdp_certificate().thumbprint
    host.machinekeys.rename_folder("MachineKeys_old")
    host.reboot()
    assert host.machinekeys.folder_usable()
    assert host.acl.allows(MACHINEKEYS, "SYSTEM", "write")
    assert host.certstore.rdp_certificate().thumbprint != old
    host.host_policy().load_credential()
    assert host.fs.exists(MACHINEKEYS + "_old")
    assert host.eventlog.query(6005) and host.eventlog.query(1056)


def test_corrupt_key_damages_the_real_file_and_restart_does_not_help(host: WindowsNode) -> None:
    real = host.fs.real(f"{MACHINEKEYS}\\{host.machinekeys.rdp_key_name}")
    before = real.read_bytes()
    inject(host, "corrupt_rdp_key")
    assert real.read_bytes() != before and len(real.read_bytes()) == len(before)
    assert "corrupt" in credential_error(host).reason
    host.services.restart("TermService", force=True)
    credential_error(host)
    host.certstore.remove_rdp_certificate()
    host.services.restart("TermService", force=True)
    host.host_policy().load_credential()


def test_key_readable_by_system_but_not_network_service(host: WindowsNode) -> None:
    inject(host, "revoke_key_access")
    assert "NETWORK SERVICE" in credential_error(host).reason
    host.services.restart("TermService", force=True)  # SYSTEM still reads it: no renewal
    credential_error(host)
    assert 1056 not in host.eventlog.ids()


def test_deny_ace_beats_a_grant_and_mismatched_key_is_refused(host: WindowsNode) -> None:
    inject(host, "deny_key_access", {"account": "NETWORK SERVICE", "rights": "R"})
    credential_error(host)
    path = f"{MACHINEKEYS}\\{host.machinekeys.rdp_key_name}"
    host.acl.reset(path)
    host.acl.grant(path, ace("NETWORK SERVICE", "R"))
    host.host_policy().load_credential()
    inject(host, "mismatch_rdp_key")
    assert "does not match" in credential_error(host).reason


# -- registry values flow into policy and client settings ----------------------------------------

def test_nla_and_security_layer_registry_values_flow_into_the_policy(host: WindowsNode) -> None:
    host.registry.set(RDP_TCP, "UserAuthentication", 0)
    host.registry.set(RDP_TCP, "SecurityLayer", 2)
    policy = host.host_policy()
    assert policy.user_authentication is False and policy.security_layer == 2
    inject(host, "set_nla", {"required": True, "policy": True})  # Group Policy wins
    assert host.host_policy().user_authentication is True


def test_encryption_oracle_flows_into_host_and_client(host: WindowsNode,
                                                      client: WindowsNode) -> None:
    assert host.registry.get(CREDSSP_PARAMETERS, "AllowEncryptionOracle") is None
    inject(host, "set_allow_encryption_oracle", {"value": 0})
    client.registry.set(CREDSSP_PARAMETERS, "AllowEncryptionOracle", 2)
    assert host.host_policy().allow_encryption_oracle == 0
    settings = client.client_settings()
    assert settings.allow_encryption_oracle == 2 and settings.credssp_version == 6


def test_unpatched_client_ignores_the_oracle_policy_until_updated(lab: Path) -> None:
    old = WindowsNode("legacy", "client", lab, os_profile="windows-10-1709")
    old.registry.set(CREDSSP_PARAMETERS, "AllowEncryptionOracle", 0)
    settings = old.client_settings()
    assert (settings.credssp_version, settings.allow_encryption_oracle) == (4, 2)
    assert old.install_update("KB4103727")
    assert old.client_settings().credssp_version == 4  # pending until the restart
    old.reboot()
    assert old.client_settings().credssp_version == 6
    assert old.client_settings().allow_encryption_oracle == 0


def test_2008r2_needs_the_update_and_schannel_for_tls12(lab: Path) -> None:
    old = WindowsNode("oldhost", "host", lab, os_profile="windows-server-2008r2")
    policy = old.host_policy()
    assert (policy.tls_min, policy.tls_max, policy.credssp_version) == ("TLSv1", "TLSv1", 3)
    inject(old, "set_schannel_protocol", {"version": "TLSv1.2", "enabled": True})
    assert old.host_tls_versions() == ["TLSv1"]  # the RDP stack: TLS 1.0 until KB3080079
    old.install_update("KB3080079")
    old.reboot()
    assert old.host_tls_versions() == ["TLSv1", "TLSv1.2"]


def test_schannel_registry_changes_wait_for_a_reboot(host: WindowsNode) -> None:
    host.registry.set(r"HKLM\SYSTEM\CurrentControlSet\Control\SecurityProviders\SCHANNEL"
                      r"\Protocols\TLS 1.3\Server", "Enabled", 0)
    assert host.host_policy().tls_max == "TLSv1.3"
    host.reboot()
    assert host.host_policy().tls_max == "TLSv1.2"


def test_no_tls_protocol_is_event_36871(host: WindowsNode) -> None:
    for version in ("TLSv1.2", "TLSv1.3"):
        inject(host, "set_schannel_protocol", {"version": version, "enabled": False})
    error = credential_error(host)
    assert (error.event_id, error.status) == (36871, "10013")


# -- services, listener, firewall, connection limit ----------------------------------------------

def test_termservice_stopped_or_rdp_denied_means_not_listening(host: WindowsNode) -> None:
    with pytest.raises(ServiceError) as info:
        host.services.stop("TermService")
    assert info.value.code == 1051  # UmRdpService depends on it
    host.services.stop("TermService", force=True)
    assert not host.is_listening() and host.listening_port() is None
    assert host.services.is_running("UmRdpService") is False
    host.services.start("TermService")
    assert host.is_listening()
    inject(host, "deny_ts_connections")
    assert not host.is_listening()
    assert host.eventlog.query(7036)[0].message.startswith("The Remote Desktop")


def test_port_number_takes_effect_at_service_restart(host: WindowsNode) -> None:
    host.registry.set(RDP_TCP, "PortNumber", 3390)
    assert host.listening_port() == 3389
    host.services.restart("TermService", force=True)
    assert host.listening_port() == 3390
    assert host.firewall_verdict() == "drop"  # the built-in rule covers 3389 only


def test_firewall_verdicts(host: WindowsNode) -> None:
    assert host.firewall_verdict(3389) == "allow"
    inject(host, "disable_firewall_group")
    assert host.firewall_verdict(3389) == "drop"
    host.firewall.set_group_enabled("Remote Desktop", True)
    inject(host, "add_block_rule", {"port": 3389})
    assert host.firewall_verdict(3389) == "drop"  # block beats allow
    host.firewall.set_state(False)
    assert host.firewall_verdict(3389) == "allow"
    inject(host, "add_block_rule", {"port": 3389, "mode": "reject"})
    assert host.firewall_verdict(3389) == "reject"  # upstream: the node's firewall is moot
    names = {r.display_name for r in host.firewall.find(display_group="Remote Desktop")}
    assert "Remote Desktop - User Mode (TCP-In)" in names
    assert host.firewall.find(display_group="Remote Desktop (WebSocket)")


def test_connection_limit_denies_with_errinfo_7_until_raised(host: WindowsNode) -> None:
    inject(host, "set_incomplete_connections", {"count": 3000})
    assert host.host_policy().deny_error_info == 7
    assert host.eventlog.query(1006)
    host.registry.set(TERMINAL_SERVER, "MaxOutstandingConnections", 65536)
    assert host.host_policy().deny_error_info == 7  # read at service start
    host.services.restart("TermService", force=True)
    assert host.host_policy().deny_error_info is None


# -- client side: clock, network, target ----------------------------------------------------------

def test_clock_offset_and_w32time_resync(client: WindowsNode) -> None:
    inject(client, "set_clock_offset", {"seconds": 600})
    assert client.client_settings().clock_offset == 600
    assert client.now() - dt.datetime.now(dt.UTC) > dt.timedelta(seconds=590)
    done, message = client.resync_time()
    assert not done and "0x80070426" in message  # W32Time is not running
    client.services.start("W32Time")
    inject(client, "set_time_source_reachable", {"reachable": False})
    assert client.resync_time() == (False, "The computer did not resync because no time data "
                                           "was available.")
    client.network.set_time_source_reachable(True)
    assert client.resync_time()[0] and client.client_settings().clock_offset == 0
    inject(client, "set_clock_offset", {"seconds": -20 * 3600})
    done, message = client.resync_time()
    assert not done and "too big" in message


def test_client_settings_mtu_dns_and_target(client: WindowsNode, host: WindowsNode) -> None:
    inject(client, "add_nic", {"alias": "VPN", "mtu": 1500, "addresses": ["10.8.0.2"]})
    client.network.set_mtu("VPN", 1300, persistent=False)
    client.network.set_dns_record("rdhost.lab.test", "10.0.0.2")
    inject(client, "set_cached_dns", {"name": "rdhost.lab.test", "address": "10.0.0.99"})
    settings = client.client_settings()
    assert settings.mtu == 1300 and settings.resolve("rdhost.lab.test") == "10.0.0.99"
    assert settings.trusted_ca_pem == host.ca.cert_pem and settings.nla_capable
    assert (settings.tls_min, settings.tls_max) == ("TLSv1.2", "TLSv1.3")
    inject(client, "set_hosts_entry", {"name": "RDHOST.lab.test", "address": "10.0.0.7"})
    assert client.client_settings().resolve("rdhost.lab.test") == "10.0.0.7"
    client.reboot()
    settings = client.client_settings()
    assert settings.mtu == 1500 and settings.dns_cache == {}
    assert settings.connection_target is None
    client.set_connection_target("10.0.0.2")
    assert client.client_settings().connection_target == "10.0.0.2"


# -- building blocks -----------------------------------------------------------------------------

def test_registry_is_case_insensitive_and_typed() -> None:
    reg = Registry()
    reg.set(r"HKLM:\SOFTWARE\Test", "Value", "0x10", RegType.REG_DWORD)
    assert reg.value(r"hkey_local_machine\software\TEST", "VALUE") == 16
    assert reg.value(r"Registry::HKEY_LOCAL_MACHINE\SOFTWARE\Test", "value") == 16
    reg.set(r"HKLM\SOFTWARE\Test", "Multi", ["a", "b"], "REG_MULTI_SZ")
    reg.set(r"HKLM\SOFTWARE\Test", "Bin", "01 ff", RegType.REG_BINARY)
    assert reg.value(r"HKLM\SOFTWARE\Test", "bin") == b"\x01\xff"
    assert reg.subkeys(r"HKLM\SOFTWARE") == ["Test"]
    with pytest.raises(RegistryError):
        reg.set(r"HKLM\SOFTWARE\Test", "Bad", "x", RegType.REG_DWORD)
    with pytest.raises(RegistryError):
        reg.set(r"HKXX\SOFTWARE", "Bad", 1)
    assert reg.journal.entries[-1].after == {"type": "REG_BINARY", "data": "01ff"}


def test_acl_inheritance_reset_and_deny() -> None:
    table = AclTable([ace("SYSTEM", "F"), ace("Administrators", "F")])
    folder, key = r"C:\Keys", r"C:\Keys\k1"
    table.set(folder, [ace("Administrators", "F")], protected=True)
    assert not table.allows(key, "SYSTEM", "read")  # the folder's ACEs are not inheritable
    assert table.allows(folder, "SYSTEM", "write")
    table.set(key, [ace("NETWORK SERVICE", "R")])
    assert table.allows(key, "NT AUTHORITY\\NETWORK SERVICE", "read")
    assert not table.allows(key, "NETWORK SERVICE", "write")
    table.grant(key, ace("Everyone", "R", deny=True))
    assert not table.allows(key, "NETWORK SERVICE", "read")
    table.reset(key)  # inherits from a protected folder with nothing inheritable
    assert table.effective(key) == []
    table.reset(folder)
    assert table.allows(key, "SYSTEM", "read") and not table.allows(key, "*S-1-5-20", "read")


def test_snapshot_is_json_and_journal_records_before_after(host: WindowsNode) -> None:
    mark = len(host.journal)
    host.registry.set(RDP_TCP, "UserAuthentication", 0)
    [entry] = host.journal.since(mark)
    assert entry.before == {"type": "REG_DWORD", "data": 1}
    assert entry.after == {"type": "REG_DWORD", "data": 0}
    snap = json.loads(json.dumps(host.snapshot()))
    assert snap["listening"] is True and snap["os"]["profile"] == "windows-server-2022"
    assert snap["machinekeys"]["files"][host.machinekeys.rdp_key_name]["network_service_can_read"]
    assert snap["registry"][RDP_TCP]["UserAuthentication"]["data"] == 0


def test_users_are_seeded_and_policy_can_use_given_users(lab: Path) -> None:
    a = WindowsNode("same", "client", lab / "a")
    b = WindowsNode("same", "client", lab / "b")
    assert a.users == b.users and len(a.users) == 4
    c = WindowsNode("given", "host", lab, users={"alice": "Pa55word!"})
    assert c.host_policy().users == {"alice": "Pa55word!"}


def test_fault_actions_are_checked(host: WindowsNode) -> None:
    with pytest.raises(FaultError, match="unknown fault action"):
        inject(host, "melt_cpu")
    with pytest.raises(FaultError):
        inject(host, "expire_rdp_certificate", {"weeks": 3})
    assert {"expire_rdp_certificate", "break_machinekeys_acl", "add_block_rule",
            "set_clock_offset", "set_incomplete_connections"} <= set(ACTIONS)
    inject(host, "set_registry", {"path": TS_POLICY, "name": "fDenyTSConnections", "value": 1})
    assert not host.is_listening()


def test_termservice_self_signed_certificate_when_the_model_says_so(lab: Path,
                                                                    host: WindowsNode) -> None:
    """TermService's own certificate (no lab CA deployment): CN and issuer the FQDN, no SAN,
    Server Authentication; a client trusting only the lab CA now gets a certificate problem,
    with the same name check as before."""
    from cryptography.x509.oid import ExtendedKeyUsageOID

    from harness.rdp.certverify import verify_certificate

    own = WindowsNode("rdhost3", "host", lab, rdp_certificate_issuer="self-signed")
    cert = x509.load_pem_x509_certificate(own.host_policy().load_credential().cert_pem)
    assert cert.subject == cert.issuer and cert.subject.rfc4514_string() == "CN=rdhost3.lab.test"
    cert.public_key().verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(),
                             cert.signature_hash_algorithm)
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    now = dt.datetime.now(dt.UTC)
    der = cert.public_bytes(serialization.Encoding.DER)
    report = verify_certificate(der, trust_anchors=[own.ca.cert], target_name="rdhost3.lab.test",
                                now=now)
    assert report.problems and not any("name" in p.message.lower() for p in report.problems)
    lab_issued = served_cert(host).public_bytes(serialization.Encoding.DER)
    assert not verify_certificate(lab_issued, trust_anchors=[host.ca.cert],
                                  target_name="rdhost.lab.test", now=now).problems
    with pytest.raises(ValueError):
        WindowsNode("rdhost4", "host", lab, rdp_certificate_issuer="someone")
