"""The Vagrant backend (harness/lab/vagrant/, vagrant_faults.py, winrm_runner.py).

The fakes, and why they stand in for Windows VMs, are in tests/vagrant_fakes.py; each test that
uses them says "mock: no Windows VM can run here" in its docstring.
"""

from __future__ import annotations

import collections
import hashlib
import re
import shutil
import sys
import threading
import time
import types
from pathlib import Path
from typing import Any

import pytest

vagrant = pytest.importorskip("vagrant")
winrm = pytest.importorskip("winrm")
winrm_protocol = pytest.importorskip("winrm.protocol")
pytest.importorskip("testinfra")


from harness.lab import vagrant_faults  # noqa: E402
from harness.lab.base import NotEmulated  # noqa: E402
from harness.lab.definition import load_lab  # noqa: E402
from harness.lab.factory import LabHandle  # noqa: E402
from harness.lab.vagrant import (  # noqa: E402
    DEFAULT_BOXES,
    SNAPSHOT,
    VagrantControl,
    VagrantOptions,
    VagrantUnavailable,
    VmLock,
    parse_mstsc_events,
    required_boxes,
)
from harness.lab.winrm_runner import (  # noqa: E402
    LabError,
    LabTimeout,
    WinRMRunner,
    WinRMTarget,
    decode_clixml,
    expects_reboot,
)
from harness.probe.profiles import load_profile  # noqa: E402
from harness.pwsh.remediation import load_remediation  # noqa: E402
from harness.windows.faults import ACTIONS, FaultError  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
REMEDIATIONS = REPO / "scenarios" / "remediations"
Status = collections.namedtuple("Status", ["name", "state", "provider"])
Box = collections.namedtuple("Box", ["name", "provider", "version"])


from tests.vagrant_fakes import (  # noqa: E402
    CLIENT,
    GATEWAY,
    GATEWAY_LAB,
    HOST,
    World,
    make_lab,
    vagrant_commands,
)

# -- refusing clearly on this machine -------------------------------------------------------------

def test_refuses_without_the_vagrant_binary(tmp_path: Path) -> None:
    """No mock: this machine has no `vagrant`, and the backend says so instead of failing later.

    The lab is built the way the matrix builds it (LabHandle with the backend's name)."""
    if shutil.which("vagrant"):
        pytest.skip("this machine has a vagrant binary")
    spec = load_lab("default")
    handle = LabHandle(spec, "vagrant", workdir=tmp_path / "lab")
    with pytest.raises(VagrantUnavailable, match=r"the `vagrant` binary is not on PATH"):
        handle.__enter__()
    handle.__exit__(None, None, None)


def test_refuses_without_python_vagrant(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """mock: no Windows VM can run here; python-vagrant is hidden from the import system."""
    monkeypatch.setitem(sys.modules, "vagrant", None)
    lab = make_lab(tmp_path)
    with pytest.raises(VagrantUnavailable, match=r"python-vagrant is not installed"):
        lab.start()
    lab.close()


def test_refuses_without_pywinrm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """mock: no Windows VM can run here; pywinrm is hidden from the import system."""
    monkeypatch.setitem(sys.modules, "winrm", None)
    lab = make_lab(tmp_path)
    with pytest.raises(VagrantUnavailable, match=r"pywinrm is not installed"):
        lab.start()


def test_refuses_a_missing_box(tmp_path: Path, world: World) -> None:
    """mock: no Windows VM can run here; the fake Vagrant lists only the Windows 11 box."""
    world.boxes = [b for b in world.boxes if "windows-11" in b.name]
    lab = make_lab(tmp_path)
    with pytest.raises(VagrantUnavailable) as caught:
        lab.start()
    message = str(caught.value)
    assert "gusztavvargadr/windows-server-2022-standard" in message
    assert "vagrant box add gusztavvargadr/windows-server-2022-standard" in message
    assert "host node RDHOST" in message
    lab.close()
    assert "up" not in vagrant_commands(world)


def test_an_os_without_a_public_box_names_its_variable() -> None:
    """No mock: the box mapping alone (the legacy lab's OS builds have no public box)."""
    options = VagrantOptions.from_env({})
    with pytest.raises(VagrantUnavailable, match=r"set \$RDPLAB_BOX_WINDOWS_10_1709"):
        required_boxes(load_lab("legacy"), options)
    options = VagrantOptions.from_env({"RDPLAB_BOX_WINDOWS_10_1709": "me/win10-1709",
                                       "RDPLAB_BOX_WINDOWS_SERVER_2008R2": "me/2008r2"})
    assert required_boxes(load_lab("legacy"), options) == {"client": "me/win10-1709",
                                                           "host": "me/2008r2"}


def test_the_vagrantfile_and_the_backend_agree_on_boxes_and_addresses() -> None:
    """No mock: the Ruby file's defaults are the Python ones (both decide which box is used)."""
    text = (REPO / "Vagrantfile").read_text()
    for os_id, box in DEFAULT_BOXES.items():
        assert f'"{os_id}" => "{box}"' in text
    for role, address in VagrantOptions.from_env({}).addresses.items():
        assert f'"RDPLAB_VM_ADDRESS_{role.upper()}", "{address}"' in text
    assert 'config.vm.communicator = "winrm"' in text
    assert "UserAuthentication' -Value 1" in text and "fDenyTSConnections' -Value 0" in text


# -- the lifecycle: up / snapshot / restore per cell ----------------------------------------------

def test_first_cell_brings_the_vms_up_and_takes_the_baseline(tmp_path: Path, world: World) -> None:
    """mock: no Windows VM can run here; python-vagrant and pywinrm are fakes."""
    lab = make_lab(tmp_path)
    lab.start()
    assert vagrant_commands(world) == ["box_list", "status", "up", "snapshot_save"]
    assert world.vagrant_calls[-1] == ("snapshot_save", (SNAPSHOT,))
    env = world.vagrant_env
    assert env["RDPLAB_LAB"] == str(lab.spec.path)
    assert env["RDPLAB_LAB_USER"] == "alice"
    assert env["RDPLAB_LAB_PASSWORD"] == lab.spec.user[1]
    assert env["VAGRANT_DOTFILE_PATH"].endswith(".vagrant/rdplab-vagrant-pair")
    assert env["RDPLAB_GATEWAY"] == "0"
    # each VM restarted once (DNS suffix, autologon), the host's certificate renewed for its
    # FQDN, the clocks set, the lab user made, the listener checked, its certificate pinned
    for address in (HOST, CLIENT):
        assert sum("Restart-Computer" in s for s in world.scripts_to(address)) == 1
        assert any("Set-Date -Date" in s for s in world.scripts_to(address))
    host = world.scripts_to(HOST)
    renew = next(i for i, s in enumerate(host) if "Restart-Service -Name 'TermService'" in s)
    user = next(i for i, s in enumerate(host) if "Remote Desktop Users,group" in s)
    assert renew < user
    assert any("(Get-Service -Name 'TermService').Status" in s for s in host)
    assert b"BEGIN CERTIFICATE" in lab.pinned_pem
    _, options = lab.probe_setup(load_profile("mstsc-win11"))
    assert lab.pinned_pem in options.trust_pem
    assert world.sessions[0][0] == f"http://{CLIENT}:5985/wsman"
    assert world.sessions[0][1] == ("vagrant", "vagrant")
    lab.close()
    assert vagrant_commands(world)[-1] == "snapshot_save"  # nothing changed: no restore


def test_each_cell_starts_from_the_baseline_snapshot(tmp_path: Path, world: World) -> None:
    """mock: no Windows VM can run here; python-vagrant and pywinrm are fakes.

    A cell that changed something restores the snapshot when it closes; the next cell then
    reuses the running VMs as they are. After a crash (state file still dirty) the next cell
    restores first."""
    first = make_lab(tmp_path, "cell1")
    first.start()
    first.inject("host", "set_allow_encryption_oracle", {"value": 0})
    first.close()
    assert vagrant_commands(world)[-1] == "snapshot_restore"
    world.vagrant_calls.clear()

    second = make_lab(tmp_path, "cell2")
    second.start()
    assert vagrant_commands(world) == ["box_list", "status", "snapshot_list"]
    assert any(r.get("skipped") for r in second.records if r["step"] == "vagrant")
    second.inject("host", "stop_service", {"name": "TermService"})
    second._closed = True  # the process dies here: close() never runs
    second._lock.release()
    world.vagrant_calls.clear()

    third = make_lab(tmp_path, "cell3")
    third.start()
    assert vagrant_commands(world) == ["box_list", "status", "snapshot_list",
                                       "snapshot_restore"]
    assert world.vagrant_calls[-1] == ("snapshot_restore", (SNAPSHOT,))
    third.close()


def test_close_halts_or_keeps_per_option(tmp_path: Path, world: World) -> None:
    """mock: no Windows VM can run here; python-vagrant and pywinrm are fakes."""
    lab = make_lab(tmp_path, "a", on_close="halt")
    lab.start()
    lab.close()
    lab.close()  # twice is fine
    assert vagrant_commands(world)[-1] == "halt"
    world.vagrant_calls.clear()
    kept = make_lab(tmp_path, "b", on_close="keep")
    kept.start()
    kept.inject("host", "deny_ts_connections", {"deny": True})
    kept.close()
    # the halted VMs come back through the snapshot at start; "keep" leaves them changed
    assert vagrant_commands(world) == ["box_list", "status", "snapshot_list", "snapshot_restore"]
    assert world.machines == {"client": "running", "host": "running"}


def test_a_gateway_lab_drives_the_gateway_vm(tmp_path: Path, world: World) -> None:
    """mock: no Windows VM can run here; python-vagrant and pywinrm are fakes."""
    world.machines["gateway"] = "not_created"
    lab = make_lab(tmp_path, lab=GATEWAY_LAB)
    lab.start()
    assert world.vagrant_env["RDPLAB_GATEWAY"] == "1"
    gateway = world.scripts_to(GATEWAY)
    assert any("Remote Desktop Users,group" in s for s in gateway)  # the lab user
    assert any("RDS:\\GatewayServer\\SSLCertificate\\Thumbprint" in s for s in gateway)
    assert lab.pinned_pem.count(b"BEGIN CERTIFICATE") == 2  # host and gateway pinned
    lab.inject("gateway", "expire_gateway_certificate", {"days_ago": 10})
    assert world.commands[-1]["address"] == GATEWAY
    assert world.commands[-1]["script"].endswith(
        "Set-Item -Path 'RDS:\\GatewayServer\\SSLCertificate\\Thumbprint' -Value $thumbprint\n")
    with pytest.raises(FaultError, match=r"not an RD Gateway"):
        lab.inject("host", "expire_gateway_certificate", {})
    lab.close()


def test_a_gateway_the_vagrantfile_lacks_is_named(tmp_path: Path, world: World) -> None:
    """mock: no Windows VM can run here; the fake Vagrant defines no gateway VM."""
    lab = make_lab(tmp_path, lab=GATEWAY_LAB)
    with pytest.raises(LabError, match=r"defines no VM for gateway"):
        lab.start()
    lab.close()


# -- faults as real PowerShell --------------------------------------------------------------------

CTX = vagrant_faults.FaultContext("host", "windows-server-2022", HOST)
KEY_PRELUDE = (
    "$ts = Get-WmiObject -Namespace 'root\\cimv2\\TerminalServices' -Class "
    "'Win32_TSGeneralSetting' -Filter \"TerminalName='RDP-Tcp'\"\n"
    "$certs = @(Get-ChildItem -Path 'Cert:\\LocalMachine\\Remote Desktop')\n"
    "$cert = $certs | Where-Object { $_.Thumbprint -eq $ts.SSLCertificateSHA1Hash } | "
    "Select-Object -First 1\n"
    "if (-not $cert) { $cert = $certs | Select-Object -First 1 }\n"
    "if (-not $cert) { throw 'no certificate in LocalMachine\\Remote Desktop' }\n"
    "$info = $cert.PrivateKey.CspKeyContainerInfo\n"
    "if (-not $info) { throw \"certificate $($cert.Thumbprint) has no CryptoAPI key in "
    "MachineKeys\" }\n"
    "$keyFile = Join-Path \"$env:ProgramData\\Microsoft\\Crypto\\RSA\\MachineKeys\" "
    "$info.UniqueKeyContainerName\n"
)

EXPECTED_SCRIPTS = {
    ("set_allow_encryption_oracle", (("value", 0),)): (
        "$ErrorActionPreference = 'Stop'\n"
        "$key = 'Registry::HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion"
        "\\Policies\\System\\CredSSP\\Parameters'\n"
        "if (-not (Test-Path -LiteralPath $key)) { New-Item -Path $key -Force | Out-Null }\n"
        "New-ItemProperty -LiteralPath $key -Name 'AllowEncryptionOracle' -PropertyType DWord "
        "-Value 0 -Force | Out-Null\n"
    ),
    ("break_machinekeys_acl", ()): (
        "$ErrorActionPreference = 'Stop'\n"
        "$mk = \"$env:ProgramData\\Microsoft\\Crypto\\RSA\\MachineKeys\"\n"
        "$ErrorActionPreference = 'Continue'\n"
        "icacls $mk /remove:g '*S-1-1-0' '*S-1-5-18' '*S-1-5-19' '*S-1-5-20' '*S-1-5-32-545' "
        "'*S-1-5-11' /T /C /Q\n"
        "$code = $LASTEXITCODE\n"
        "$ErrorActionPreference = 'Stop'\n"
        "if ($code -ne 0) { throw \"icacls exited $code\" }\n"
        "$ErrorActionPreference = 'Continue'\n"
        "icacls $mk /inheritance:r /grant:r '*S-1-5-32-544:(R)' /T /C /Q\n"
        "$code = $LASTEXITCODE\n"
        "$ErrorActionPreference = 'Stop'\n"
        "if ($code -ne 0) { throw \"icacls exited $code\" }\n"
    ),
    ("add_block_rule", ()): (
        "$ErrorActionPreference = 'Stop'\n"
        "$ErrorActionPreference = 'Continue'\n"
        "netsh advfirewall firewall add rule 'name=Block RDP (TCP 3389)' dir=in action=block "
        "protocol=TCP localport=3389\n"
        "$code = $LASTEXITCODE\n"
        "$ErrorActionPreference = 'Stop'\n"
        "if ($code -ne 0) { throw \"netsh exited $code\" }\n"
    ),
    ("disable_firewall_group", (("group", "Remote Desktop"),)): (
        "$ErrorActionPreference = 'Stop'\n"
        "$ErrorActionPreference = 'Continue'\n"
        "netsh advfirewall firewall set rule 'group=Remote Desktop' new enable=no\n"
        "$code = $LASTEXITCODE\n"
        "$ErrorActionPreference = 'Stop'\n"
        "if ($code -ne 0) { throw \"netsh exited $code\" }\n"
    ),
    ("expire_rdp_certificate", (("days_ago", 30),)): (
        "$ErrorActionPreference = 'Stop'\n" + KEY_PRELUDE
        + "$key = New-Object -ComObject X509Enrollment.CX509PrivateKey\n"
        "$key.ProviderName = $info.ProviderName\n"
        "$key.ContainerName = $info.KeyContainerName\n"
        "$key.KeySpec = [int]$info.KeyNumber\n"
        "$key.MachineContext = $true\n"
        "$key.Existing = $true\n"
        "$request = New-Object -ComObject X509Enrollment.CX509CertificateRequestCertificate\n"
        "$request.InitializeFromPrivateKey(2, $key, '')\n"
        "$name = New-Object -ComObject X509Enrollment.CX500DistinguishedName\n"
        "$name.Encode($cert.Subject, 0)\n"
        "$request.Subject = $name\n"
        "$request.Issuer = $name\n"
        "$request.NotBefore = (Get-Date).ToUniversalTime().AddDays(-212)\n"
        "$request.NotAfter = (Get-Date).ToUniversalTime().AddDays(-30)\n"
        "$usage = New-Object -ComObject X509Enrollment.CObjectIds\n"
        "$serverAuth = New-Object -ComObject X509Enrollment.CObjectId\n"
        "$serverAuth.InitializeFromValue('1.3.6.1.5.5.7.3.1')\n"
        "$usage.Add($serverAuth)\n"
        "$extension = New-Object -ComObject X509Enrollment.CX509ExtensionEnhancedKeyUsage\n"
        "$extension.InitializeEncode($usage)\n"
        "$request.X509Extensions.Add($extension)\n"
        "$request.Encode()\n"
        "$enrollment = New-Object -ComObject X509Enrollment.CX509Enrollment\n"
        "$enrollment.InitializeFromRequest($request)\n"
        "$encoded = $enrollment.CreateRequest(1)\n"
        "$enrollment.InstallResponse(2, $encoded, 1, '')\n"
        "$thumbprint = (New-Object System.Security.Cryptography.X509Certificates.X509Certificate2"
        "(@(, [Convert]::FromBase64String($encoded)))).Thumbprint\n"
        "$issued = Get-Item -Path ('Cert:\\LocalMachine\\My\\' + $thumbprint)\n"
        "$store = New-Object System.Security.Cryptography.X509Certificates.X509Store("
        "'Remote Desktop', 'LocalMachine')\n"
        "$store.Open('ReadWrite')\n"
        "foreach ($c in @($store.Certificates)) { $store.Remove($c) }\n"
        "$store.Add($issued)\n"
        "$store.Close()\n"
        "Remove-Item -Path ('Cert:\\LocalMachine\\My\\' + $thumbprint)\n"
        "Set-WmiInstance -Path $ts.__PATH -Arguments @{SSLCertificateSHA1Hash = $thumbprint} "
        "| Out-Null\n"
    ),
}


@pytest.mark.parametrize("key", list(EXPECTED_SCRIPTS), ids=[k[0] for k in EXPECTED_SCRIPTS])
def test_fault_powershell_is_exactly(key: tuple[str, tuple[tuple[str, Any], ...]]) -> None:
    """No mock: the table itself (expire certificate, break MachineKeys ACL, set
    AllowEncryptionOracle, block the firewall two ways)."""
    action, args = key
    plan = vagrant_faults.plan(action, dict(args), CTX)
    assert plan.kind == "powershell"
    assert plan.script == EXPECTED_SCRIPTS[key]


def test_every_model_fault_action_has_a_real_injection_or_a_reason() -> None:
    """No mock: the Vagrant table covers harness/windows/faults.py completely."""
    table = vagrant_faults.coverage()
    assert set(table) == set(ACTIONS)
    assert table["set_incomplete_connections"] == "runner"
    for name, how in table.items():
        if how.startswith("not real"):
            with pytest.raises(NotEmulated) as caught:
                args = ({"name": "h", "address": "10.0.0.1"} if "dns" in name else {})
                vagrant_faults.plan(name, args, CTX)
            assert caught.value.reason
    with pytest.raises(NotEmulated, match=r"no command that plants a resolver-cache entry"):
        vagrant_faults.plan("set_cached_dns", {"name": "h", "address": "10.0.0.1"}, CTX)
    with pytest.raises(NotEmulated, match=r"no reject action") as caught:
        vagrant_faults.plan("add_block_rule", {"mode": "reject", "upstream": True}, CTX)
    assert caught.value.needs == "netns"
    with pytest.raises(NotEmulated, match=r"cumulative update"):
        vagrant_faults.plan("uninstall_update", {"kb": "KB4103727"}, CTX)
    legacy = vagrant_faults.FaultContext("host", "windows-server-2008r2", HOST)
    assert "wusa.exe" in vagrant_faults.plan("uninstall_update", {"kb": "KB3080079"},
                                             legacy).script
    with pytest.raises(NotEmulated, match=r"Rename-NetAdapter"):
        vagrant_faults.plan("add_nic", {"alias": "VPN"}, legacy)


def test_fault_arguments_are_checked_as_the_model_checks_them() -> None:
    """No mock: same defaults and the same FaultError as harness/windows/faults.inject."""
    with pytest.raises(FaultError, match=r"unknown fault action"):
        vagrant_faults.plan("melt_cpu", {}, CTX)
    with pytest.raises(FaultError, match=r"set_nla"):
        vagrant_faults.plan("set_nla", {"required": True, "colour": "red"}, CTX)
    assert vagrant_faults.plan("expire_rdp_certificate", {}, CTX).args == {"days_ago": 30}
    plan = vagrant_faults.plan("set_schannel_protocol",
                               {"version": "TLSv1.2", "enabled": False}, CTX)
    assert plan.restart and "\\TLS 1.2\\Server'" in plan.script


def test_inject_sends_the_script_and_mirrors_the_model(tmp_path: Path, world: World) -> None:
    """mock: no Windows VM can run here; python-vagrant and pywinrm are fakes."""
    lab = make_lab(tmp_path)
    lab.start()
    sent_before = len(world.commands)
    entry = lab.inject("host", "set_allow_encryption_oracle", {"value": 0})
    new = world.commands[sent_before:]
    assert [c["address"] for c in new] == [HOST]
    assert new[0]["script"] == EXPECTED_SCRIPTS[("set_allow_encryption_oracle",
                                                 (("value", 0),))]
    assert new[0]["line"].startswith("powershell.exe -NoProfile -NonInteractive "
                                     "-ExecutionPolicy Bypass -EncodedCommand ")
    assert entry["ok"] and entry["model"] == "applied"
    assert lab.host.host_policy().allow_encryption_oracle == 0  # the model followed
    assert any(e.component == "vm" for e in lab.host.journal.entries)
    lab.inject("client", "set_connection_target", {"target": HOST})
    assert world.commands[-1]["address"] == CLIENT
    assert "HKEY_CURRENT_USER\\Software\\Microsoft\\Terminal Server Client\\Default" in \
        world.commands[-1]["script"]
    lab.close()


def test_restarts_a_fault_needs_happen_once_at_sync(tmp_path: Path, world: World) -> None:
    """mock: no Windows VM can run here; python-vagrant and pywinrm are fakes."""
    lab = make_lab(tmp_path)
    lab.start()
    boots = world.boot[HOST]
    for version in ("TLSv1.2", "TLSv1.3"):
        lab.inject("host", "set_schannel_protocol", {"version": version, "enabled": False})
    assert world.boot[HOST] == boots
    lab.sync()
    assert world.boot[HOST] == boots + 1
    lab.sync()
    assert world.boot[HOST] == boots + 1
    lab.close()


def test_faults_a_vm_cannot_do_are_refused_before_anything_runs(tmp_path: Path,
                                                                world: World) -> None:
    """mock: no Windows VM can run here; python-vagrant and pywinrm are fakes."""
    lab = make_lab(tmp_path)
    lab.start()
    sent = len(world.commands)
    with pytest.raises(NotEmulated, match=r"no DNS server"):
        lab.inject("client", "set_dns_record", {"name": "rdhost.lab.test",
                                                "address": "10.213.2.99"})
    with pytest.raises(NotEmulated, match=r"not reinstalled per cell"):
        lab.install_os("host", "windows-server-2016-1607")
    with pytest.raises(NotEmulated, match=r"no VPN path") as caught:
        lab.apply_network_fault("mtu_blackhole", {"mtu": 1300})
    assert caught.value.needs == "netns"
    assert len(world.commands) == sent
    assert lab.unsupported("netns") is None  # drops and resets are real on the VMs
    assert "no RD Gateway" in (lab.unsupported("gateway") or "")
    lab.close()


# -- remediations, run for real -------------------------------------------------------------------

@pytest.mark.parametrize("rem_id, roles", [
    ("disable-nla", [HOST]),
    ("connect-by-ip", [CLIENT]),
    ("resync-clock", [HOST, CLIENT]),
])
def test_remediation_file_is_sent_unchanged_to_its_target(tmp_path: Path, world: World,
                                                          rem_id: str, roles: list[str]) -> None:
    """mock: no Windows VM can run here; python-vagrant and pywinrm are fakes."""
    lab = make_lab(tmp_path)
    lab.start()
    start = len(world.commands)
    result = lab.run_remediation(REMEDIATIONS / f"{rem_id}.yaml")
    runs = [c for c in world.commands[start:] if "file" in c]
    assert [c["address"] for c in runs] == roles
    original = (REMEDIATIONS / f"{rem_id}.ps1").read_bytes()
    for run in runs:
        assert run["content"] == original
        assert run["file"] == f"C:\\rdplab\\remediations\\{rem_id}.ps1"
        assert run["line"].startswith("powershell.exe -NoProfile -NonInteractive "
                                      "-ExecutionPolicy Bypass -File ")
    if rem_id == "connect-by-ip":
        assert runs[0]["params"] == {"HostAddress": HOST}
    assert [r.exit_code for r in result.results] == [0] * len(roles)
    assert result.results[0].output == ["done"]
    records = [r for r in lab.records if r["step"] == "remediation"]
    assert [r["script_sha256"] for r in records] == \
        [hashlib.sha256(original).hexdigest()] * len(roles)
    assert any(r["step"] == "model" and "prediction" in r for r in lab.records)
    lab.close()


def test_a_restarting_remediation_is_followed_until_the_vm_is_back(tmp_path: Path,
                                                                   world: World) -> None:
    """mock: no Windows VM can run here; python-vagrant and pywinrm are fakes."""
    lab = make_lab(tmp_path)
    lab.start()
    result = lab.run_remediation(load_remediation(REMEDIATIONS / "reboot-both.yaml"))
    assert [r.rebooted for r in result.results] == [True, True]
    record = next(r for r in lab.records if r["step"] == "remediation")
    assert record["reboot"] == "always" and record["boot_before"] != record["boot_after"]
    lab.close()


def test_a_failing_script_is_a_result_not_a_lab_error(tmp_path: Path, world: World) -> None:
    """mock: no Windows VM can run here; python-vagrant and pywinrm are fakes."""
    lab = make_lab(tmp_path)
    lab.start()
    world.file_result = (b"", b"Restart-Service : Service 'TermService' cannot be stopped\r\n", 1)
    result = lab.run_remediation(REMEDIATIONS / "restart-rdp-service.yaml")
    assert result.results[0].exit_code == 1
    assert "cannot be stopped" in result.results[0].errors[0]
    lab.close()


# -- timeouts and errors --------------------------------------------------------------------------

def test_a_hanging_fault_script_is_stopped_at_its_timeout(tmp_path: Path, world: World) -> None:
    """mock: no Windows VM can run here; the fake VM never finishes the script."""
    lab = make_lab(tmp_path, fault_timeout=0.3)
    lab.start()
    world.hang_markers.add("AllowEncryptionOracle")
    started = time.monotonic()
    with pytest.raises(LabTimeout, match=r"fault set_allow_encryption_oracle on the host VM"):
        lab.inject("host", "set_allow_encryption_oracle", {"value": 2})
    assert time.monotonic() - started < 3
    assert world.cleanups, "the command was not signalled to terminate"
    assert lab.records[-1]["run"]["timed_out"] is True
    lab.close()


def test_a_hanging_remediation_is_a_lab_timeout(tmp_path: Path, world: World) -> None:
    """mock: no Windows VM can run here; the fake VM never finishes the script."""
    lab = make_lab(tmp_path, remediation_timeout=0.5)
    lab.start()
    world.hang_markers.add(" -File ")
    with pytest.raises(LabTimeout, match=r"remediation disable-nla on the host VM"):
        lab.run_remediation(REMEDIATIONS / "disable-nla.yaml")
    lab.close()


def test_a_hanging_vagrant_up_is_a_lab_timeout(tmp_path: Path, world: World) -> None:
    """mock: no Windows VM can run here; the fake `vagrant up` takes longer than allowed."""
    world.vagrant_delay["up"] = 3.0
    lab = make_lab(tmp_path, up_timeout=0.3)
    started = time.monotonic()
    with pytest.raises(LabTimeout, match=r"`vagrant up` did not finish within 0.3 s"):
        lab.start()
    assert time.monotonic() - started < 2
    lab.close()


def test_the_vagrant_process_group_is_killed_at_the_deadline(tmp_path: Path) -> None:
    """No VM, but a real subprocess: python-vagrant's class runs `sleep 30` instead of vagrant
    (the test's stand-in overrides how it builds the command line), and the bounded call stops
    that process, found as a new child of this one."""

    class SleepyVagrant(vagrant.Vagrant):
        def _make_vagrant_command(self, args: list[Any]) -> list[str]:
            return ["sleep", "30"]

    module = types.SimpleNamespace(Vagrant=SleepyVagrant, make_file_cm=vagrant.make_file_cm)
    records: list[dict[str, Any]] = []
    control = VagrantControl(module, tmp_path, {"PATH": "/usr/bin:/bin"}, tmp_path / "v.log",
                             lambda step, **data: records.append(data) or data)
    with pytest.raises(LabTimeout, match=r"vagrant up"):
        control.up(timeout=0.5)
    assert len(control.killed) == 1  # the `sleep` python-vagrant started, nothing else
    deadline = time.monotonic() + 5
    while Path(f"/proc/{control.killed[0]}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # python-vagrant's own thread reaps it
    assert not Path(f"/proc/{control.killed[0]}").exists()
    assert records[-1]["timed_out"] is True


def test_errors_surface_as_lab_errors(tmp_path: Path, world: World) -> None:
    """mock: no Windows VM can run here; the fakes fail a script, refuse WinRM, fail vagrant."""
    lab = make_lab(tmp_path)
    lab.start()
    world.fail_markers["icacls $mk"] = (b"", b"icacls: Access is denied.\r\n", 1)
    with pytest.raises(LabError, match=r"exit code 1: icacls: Access is denied"):
        lab.inject("host", "break_machinekeys_acl")
    world.refuse.add(HOST)
    lab.runner("host").reset()
    with pytest.raises(LabError, match=r"WinRM failed: ConnectionRefusedError"):
        lab.inject("host", "stop_service")
    lab.close()
    world.vagrant_fail.add("status")
    other = make_lab(tmp_path, "other")
    with pytest.raises(LabError, match=r"`vagrant status` failed with exit code 1"):
        other.start()
    other.close()


def test_winrm_runner_bounds_and_decodes(world: World) -> None:
    """mock: no Windows VM can run here; pywinrm's Session is a fake."""
    runner = WinRMRunner(WinRMTarget("host", "host", HOST, "vagrant", "secret"))
    world.hang_markers.add("Start-Sleep")
    result = runner.run_ps("Start-Sleep -Seconds 600", timeout=0.2, what="sleep")
    assert result.timed_out and not result.ok and result.exit_code is None
    assert "secret" not in str(result.to_journal())
    assert world.sessions[-1][2]["operation_timeout_sec"] < world.sessions[-1][2][
        "read_timeout_sec"]
    long_script = "Write-Output 'x'\n" * 400  # too long for one command line: uploaded
    result = runner.run_ps(long_script, timeout=5, what="long")
    assert result.ok
    uploaded = [v for (address, path), v in world.files.items() if path.startswith(
        "C:\\rdplab\\scripts\\long-")]
    assert uploaded == [long_script.encode("utf-8-sig")]
    clixml = (b'#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/'
              b'powershell/2004/04"><S S="Error">Access is denied_x000D__x000A_</S></Objs>')
    assert decode_clixml(clixml) == "Access is denied"
    assert expects_reboot("Restart-Computer -Force") == "always"
    assert expects_reboot("Install-WindowsUpdate -AcceptAll -AutoReboot") == "maybe"
    assert expects_reboot("Restart-Service TermService") is None


# -- state checks with testinfra -------------------------------------------------------------------

def test_verify_checks_state_through_testinfra(tmp_path: Path, world: World) -> None:
    """mock: no Windows VM can run here; testinfra's winrm backend talks to a fake Protocol."""
    lab = make_lab(tmp_path)
    lab.start()
    world.check_answers["-Name 'UserAuthentication'"] = "0"
    results = lab.verify(load_remediation(REMEDIATIONS / "disable-nla.yaml"))
    assert [(r["check"], r["ok"]) for r in results] == [
        ("service TermService running", True),
        ("TCP 3389 listening", True),
        ("HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server\\WinStations"
         "\\RDP-Tcp\\UserAuthentication = 0", True),
    ]
    testinfra_protocols = [p for p in world.protocols if p.kwargs.get("username") == "vagrant"
                           and "operation_timeout_sec" in p.kwargs
                           and p.kwargs["operation_timeout_sec"] == "20"]
    assert testinfra_protocols, "the checks did not go through testinfra's winrm backend"
    assert testinfra_protocols[0].kwargs["password"] == "vagrant"
    checks = [r for r in lab.records if r["step"] == "check"]
    assert len(checks) == 3 and all(r["via"] == "testinfra winrm" for r in checks)
    world.check_answers["-Name 'UserAuthentication'"] = "1"
    assert not lab.verify("disable-nla")[-1]["ok"]
    lab.close()


# -- the rest -------------------------------------------------------------------------------------

def test_mstsc_events_give_the_disconnect_reason() -> None:
    """No mock: parsing what the client VM's RDP client log returns."""
    out = ("EVENT|1024|2026-11-21T10:00:00Z|RDP ClientActiveX is trying to connect to the server "
           "(rdhost.lab.test)\r\n"
           "EVENT|1026|2026-11-21T10:00:03Z|RDP ClientActiveX has been disconnected "
           "(Reason= 2308)\r\n")
    found = parse_mstsc_events(out)
    assert found["disconnect_reason"] == 2308 and found["disconnect_hex"] == "0x904"
    assert found["extended_reason"] is None
    assert parse_mstsc_events("")["disconnect_reason"] is None


def test_options_come_from_the_environment() -> None:
    """No mock: the documented variables."""
    options = VagrantOptions.from_env({
        "RDPLAB_WINRM_USER": "admin", "RDPLAB_WINRM_PASSWORD": "pw",
        "RDPLAB_WINRM_PASSWORD_HOST": "hostpw", "RDPLAB_VM_ADDRESS_HOST": "10.9.9.9",
        "RDPLAB_VAGRANT_ON_CLOSE": "halt", "RDPLAB_VAGRANT_UP_TIMEOUT": "60",
    })
    assert options.credentials_for("client") == ("admin", "pw")
    assert options.credentials_for("host") == ("admin", "hostpw")
    assert options.addresses["host"] == "10.9.9.9"
    assert options.on_close == "halt" and options.up_timeout == 60.0
    with pytest.raises(LabError, match=r"RDPLAB_VAGRANT_ON_CLOSE"):
        VagrantOptions.from_env({"RDPLAB_VAGRANT_ON_CLOSE": "explode"})
    with pytest.raises(LabError, match=r"RDPLAB_VAGRANT_FAULT_TIMEOUT"):
        VagrantOptions.from_env({"RDPLAB_VAGRANT_FAULT_TIMEOUT": "soon"})


def test_one_cell_at_a_time_on_the_vms(tmp_path: Path) -> None:
    """No mock: the flock that serialises the matrix's worker processes on one set of VMs."""
    first, second = VmLock(tmp_path / "lock"), VmLock(tmp_path / "lock")
    first.acquire(1.0)
    errors: list[BaseException] = []

    def contend() -> None:
        try:
            second.acquire(0.3, sleep=lambda s: time.sleep(0.05))
        except LabTimeout as exc:
            errors.append(exc)

    worker = threading.Thread(target=contend)
    worker.start()
    worker.join(5)
    assert errors and "--jobs 1" in str(errors[0])
    first.release()
    assert second.acquire(1.0) >= 0
    second.release()


def test_a_fault_snapshot_is_a_real_vm_snapshot(tmp_path: Path, world: World) -> None:
    """mock: no Windows VM can run here; python-vagrant and pywinrm are fakes.

    The snapshot lifecycle on VMs: `vagrant snapshot save` after the fault, `snapshot restore`
    before each later remediation cell (WinRM waited for, each VM's clock set to its model's,
    which carries a clock fault's skew), the model restored with it, the snapshot deleted when
    the lab closes."""
    lab = make_lab(tmp_path)
    lab.start()
    lab.inject("client", "set_clock_offset", {"seconds": 3600})
    lab.inject("host", "set_allow_encryption_oracle", {"value": 0})
    world.vagrant_calls.clear()
    snap = lab.snapshot("vagrant-pair/credssp@reproduce")
    name = "rdplab-vagrant-pair-vagrant-pair-credssp-reproduce"
    assert world.vagrant_calls == [("snapshot_save", (name,))] and name in world.snapshots
    assert snap.state["vm_snapshot"] == name
    lab.run_remediation(load_remediation(REMEDIATIONS / "host-allow-vulnerable-credssp.yaml"))
    world.commands.clear()
    world.vagrant_calls.clear()
    lab.restore(snap)
    assert world.vagrant_calls == [("snapshot_restore", (name,))]
    clock = [s for s in world.scripts_to(CLIENT) if "Set-Date -Date" in s]
    assert clock, "the client VM's clock is set after the restore"
    set_ms = int(re.search(r"AddMilliseconds\((\d+)\)", clock[-1]).group(1))
    assert abs(set_ms / 1000 - (time.time() + 3600)) < 60  # the fault's skew, not real time
    from harness.windows.registry import CREDSSP_PARAMETERS

    oracle = lab.host.registry.value(CREDSSP_PARAMETERS, "AllowEncryptionOracle", None)
    assert oracle == 0  # the model is back at the fault too
    assert [r["step"] for r in lab.records][-1] == "restore"
    lab.close()
    assert ("snapshot_delete", (name,)) in world.vagrant_calls
    assert name not in world.snapshots
