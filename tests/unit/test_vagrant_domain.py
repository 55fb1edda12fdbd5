"""The domain lab on the Vagrant backend: the Vagrantfile's DC and members, the preflight without
a local KDC, the probe's Kerberos pointed at the DC VM, the checks after `vagrant up`.

No Windows VM, hypervisor or `vagrant` binary exists here (and no `ruby` to load the
Vagrantfile): tests that drive a lab use the fakes of python-vagrant and pywinrm in
tests/vagrant_fakes.py and say "mock: no Windows VM can run here"; the Vagrantfile is checked as
text. tests/integration/test_vagrant_domain_kdc.py runs the krb5.conf written here against a
real MIT KDC.
"""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("vagrant")
pytest.importorskip("winrm")
pytest.importorskip("testinfra")

from harness.errors import BackendUnavailable
from harness.lab import contract, kdc
from harness.lab.definition import load_lab
from harness.lab.factory import build_nodes
from harness.lab.loopback import LoopbackLab
from harness.lab.vagrant import VagrantLab, VagrantUnavailable
from harness.lab.vagrant.options import (
    DEFAULT_DOMAIN_ADMIN_PASSWORD,
    DEFAULT_SAFE_MODE_PASSWORD,
)
from harness.lab.winrm_runner import LabError
from tests.vagrant_fakes import (
    CLIENT,
    DC,
    HOST,
    PAIR_LAB,
    World,
    make_options,
    vagrant_commands,
)

REPO = Path(__file__).resolve().parents[2]
VAGRANTFILE = (REPO / "Vagrantfile").read_text()
DOMAIN_LAB = PAIR_LAB.replace("name: vagrant-pair", "name: vagrant-domain").replace(
    "  host: {name: RDHOST, os: windows-server-2022}\n",
    "  host: {name: RDHOST, os: windows-server-2022}\n"
    "  dc: {name: DC01, os: windows-server-2022}\n").replace(
    "  - {name: alice}\n", "  - {name: alice}\n  - {name: bob, password: Bob-Pa55word!}\n")


class Dialer:
    """Stands in for socket.create_connection towards the VMs: records (address, port) and
    refuses the ports in `refused` (the first `refuse_first` tries of every port)."""

    def __init__(self, refused: tuple[int, ...] = (), refuse_first: int = 0) -> None:
        self.calls: list[tuple[str, int]] = []
        self.refused = refused
        self.refuse_first = refuse_first

    def __call__(self, endpoint: tuple[str, int], timeout: float) -> socket.socket:
        self.calls.append(endpoint)
        if endpoint[1] in self.refused or self.calls.count(endpoint) <= self.refuse_first:
            raise ConnectionRefusedError(111, "Connection refused")
        a, b = socket.socketpair()
        b.close()
        return a


def domain_lab(tmp_path: Path, dialer: Dialer | None = None, **overrides: Any) -> VagrantLab:
    path = tmp_path / "vagrant-domain.yaml"
    path.write_text(DOMAIN_LAB)
    spec = load_lab(path)
    workdir = tmp_path / "cell"
    return VagrantLab(spec, workdir, build_nodes(spec, workdir),
                      options=make_options(tmp_path / "root", **overrides),
                      sleep=lambda seconds: None, dial=dialer or Dialer())


def _block(name: str) -> str:
    """One PowerShell heredoc of the Vagrantfile."""
    found = re.search(rf"^{name} = <<~'PS1'\n(.*?)^PS1$", VAGRANTFILE, re.S | re.M)
    assert found, f"the Vagrantfile has no {name}"
    return found.group(1)


# -- the Vagrantfile (text: no ruby here) ---------------------------------------------------------

def test_the_vagrantfile_defines_the_dc_first_and_provisions_the_forest() -> None:
    """No mock: the Vagrantfile's text (no `ruby` on this machine to load it)."""
    # the VMs are defined in ORDERED_NODES' order, which puts the dc first
    assert 'ORDERED_NODES = NODES.partition { |role, _| role == "dc" }.flatten(1)' in VAGRANTFILE
    assert "ORDERED_NODES.each do |role, node|" in VAGRANTFILE
    assert "  NODES.each do |role, node|" not in VAGRANTFILE
    forest = _block("AD_FOREST_PS")
    assert "Install-WindowsFeature -Name AD-Domain-Services -IncludeManagementTools" in forest
    assert ("Install-ADDSForest -DomainName $DnsDomain -DomainNetbiosName $NetbiosName "
            "-SafeModeAdministratorPassword (ConvertTo-SecureString $SafeModePassword") in forest
    assert "-InstallDns -NoRebootOnCompletion -Force" in forest
    # idempotent: a DC already (DomainRole 4 backup / 5 primary) exits before anything
    assert forest.index("$system.DomainRole -ge 4") < forest.index("Install-ADDSForest")
    # secrets reach PowerShell base64-encoded (Vagrant's double-quoted args expand `$`)
    assert "$SafeModePassword = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String(" \
           "$SafeModeBase64))" in forest
    assert re.search(r"b64\(SAFE_MODE_PASSWORD\),\s+b64\(DOMAIN_ADMIN_PASSWORD\)", VAGRANTFILE)
    assert re.search(r'\[DNS_DOMAIN, NETBIOS_DOMAIN,\s+ADDRESSES.fetch\("dc"\),\s+'
                     r'b64\(DOMAIN_ADMIN_PASSWORD\)', VAGRANTFILE)  # the join
    # the same secrets' defaults as the Python side
    assert (f'ENV.fetch("RDPLAB_DC_SAFEMODE_PASSWORD", "{DEFAULT_SAFE_MODE_PASSWORD}")'
            in VAGRANTFILE)
    assert (f'ENV.fetch("RDPLAB_DOMAIN_ADMIN_PASSWORD", "{DEFAULT_DOMAIN_ADMIN_PASSWORD}")'
            in VAGRANTFILE)
    assert 'NETBIOS_DOMAIN = LAB.fetch("domain", "LAB")' in VAGRANTFILE
    users = _block("AD_USERS_PS")
    assert "New-ADUser -Credential $credential -Name $name -SamAccountName $name" in users
    assert "Set-ADAccountPassword -Credential $credential -Identity $existing -Reset" in users
    # the DC reboots between the forest and the users (Vagrant's reboot: true)
    start, end = VAGRANTFILE.index('if role == "dc"'), VAGRANTFILE.index("elsif DOMAIN_LAB")
    dc_branch = VAGRANTFILE[start:end]
    assert re.search(r'provision "ad-forest", type: "shell", inline: AD_FOREST_PS, reboot: true',
                     dc_branch)
    assert dc_branch.index('"ad-forest"') < dc_branch.index('"ad-users"')
    # nothing from the internet
    for word in ("Invoke-WebRequest", "DownloadFile", "Install-Module", "http://", "https://"):
        assert word not in forest + users


def test_the_vagrantfile_joins_the_members_and_lets_the_domain_user_in() -> None:
    """No mock: the Vagrantfile's text (no `ruby` on this machine to load it)."""
    join = _block("DOMAIN_JOIN_PS")
    assert "Set-DnsClientServerAddress -InterfaceIndex $config.InterfaceIndex " \
           "-ServerAddresses $DcAddress" in join
    assert "Add-Computer -DomainName $DnsDomain -Credential $credential -Force" in join
    assert '"$NetbiosName\\Administrator"' in join
    assert join.index("$system.PartOfDomain -and $system.Domain -eq $DnsDomain") \
        < join.index("Add-Computer")  # a member already: nothing changes
    member_branch = VAGRANTFILE[VAGRANTFILE.index("elsif DOMAIN_LAB"):]
    assert re.search(r'provision "domain-join", type: "shell", inline: DOMAIN_JOIN_PS, '
                     r'reboot: true', member_branch)
    # joined (and rebooted) before the RDP user goes into Remote Desktop Users
    assert member_branch.index('"domain-join"') < member_branch.index('"domain-rdp-user"')
    rdp_user = _block("DOMAIN_RDP_USER_PS")
    assert 'WinNT://$env:COMPUTERNAME/Remote Desktop Users,group' in rdp_user
    assert '$member = "WinNT://$NetbiosName/$User"' in rdp_user
    assert "if (-not $group.IsMember($member))" in rdp_user
    # what rdplab passes is what the Vagrantfile reads
    for var in ("RDPLAB_LAB_USERS", "RDPLAB_DOMAIN_ADMIN_PASSWORD",
                "RDPLAB_DC_SAFEMODE_PASSWORD", "RDPLAB_VM_ADDRESS_DC"):
        assert f'ENV["{var}"]' in VAGRANTFILE or f'ENV.fetch("{var}"' in VAGRANTFILE


def test_the_vagrant_env_carries_the_domain(tmp_path: Path, world: World) -> None:
    """mock: no Windows VM can run here; the environment python-vagrant would be given."""
    lab = domain_lab(tmp_path, domain_admin_password="Adm1n-Secret!")
    env = lab.vagrant_env()
    assert json.loads(env["RDPLAB_LAB_USERS"]) == {"alice": lab.spec.users["alice"],
                                                   "bob": "Bob-Pa55word!"}
    assert env["RDPLAB_DOMAIN_ADMIN_PASSWORD"] == "Adm1n-Secret!"
    assert env["RDPLAB_DC_SAFEMODE_PASSWORD"] == DEFAULT_SAFE_MODE_PASSWORD
    assert env["RDPLAB_VM_ADDRESS_DC"] == DC


# -- preflight: no local KDC for a DC that is a VM -----------------------------------------------

def test_preflight_of_the_domain_lab_needs_no_local_kdc(tmp_path: Path, world: World,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """mock: no Windows VM can run here; python-vagrant's `vagrant` binary is faked and the
    MIT KDC tools are reported missing."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "Vagrantfile").write_text("# the fake Vagrant does not read this\n")
    monkeypatch.setenv("RDPLAB_VAGRANT_ROOT", str(root))
    monkeypatch.setattr(kdc, "missing_tools", lambda: list(kdc.KDC_TOOLS))
    spec = load_lab(REPO / "labs" / "domain.yaml")
    assert spec.has_domain_controller
    # the embedded backends refuse (their DC is a local MIT KDC) ...
    assert "krb5kdc" in (contract.domain_controller_unavailable() or "")
    with pytest.raises(BackendUnavailable, match=r"needs MIT Kerberos"):
        LoopbackLab.preflight(spec)
    # ... the Vagrant backend does not: its DC is a VM
    VagrantLab.preflight(spec)


def test_preflight_still_names_the_probes_kerberos_client(tmp_path: Path, world: World,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """mock: no Windows VM can run here; kinit and kvno are reported missing."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "Vagrantfile").write_text("# the fake Vagrant does not read this\n")
    monkeypatch.setenv("RDPLAB_VAGRANT_ROOT", str(root))
    monkeypatch.setattr(kdc, "missing_client_tools", lambda: ["kinit", "kvno"])
    with pytest.raises(VagrantUnavailable, match=r"kinit, kvno missing: Debian package krb5-user"):
        VagrantLab.preflight(load_lab(REPO / "labs" / "domain.yaml"))
    VagrantLab.preflight(load_lab("default"))  # no domain: no Kerberos needed


# -- the probe's Kerberos against the DC VM --------------------------------------------------------

def test_kerberos_client_points_at_the_dc_vm(tmp_path: Path, world: World) -> None:
    """mock: no Windows VM can run here; nothing is started, the client is only built."""
    lab = domain_lab(tmp_path, addresses={"client": CLIENT, "host": HOST, "gateway": "10.213.3.2",
                                          "dc": "192.0.2.40"})
    client = lab.kerberos_client()
    assert client is not None
    assert client.realm == "LAB.TEST"
    assert client.krb5_conf == lab.workdir / "dc-krb5" / "krb5.conf"
    assert client.clock_offset == 0.0
    text = client.krb5_conf.read_text()
    assert text == kdc.krb5_conf_text("LAB.TEST", "192.0.2.40:88",
                                      ["dc01.lab.test", "rdhost.lab.test", ".lab.test",
                                       "lab.test"])
    assert "\n default_realm = LAB.TEST\n" in text
    assert "  kdc = 192.0.2.40:88\n" in text
    assert f"\n clockskew = {kdc.CLOCKSKEW}\n" in text and kdc.CLOCKSKEW == 300
    # the client machine's clock (a clock fault on the client) goes with it
    lab.inject("client", "set_clock_offset", {"seconds": -10800})
    assert lab.kerberos_client().clock_offset == -10800
    # the probe gets it: mstsc profiles start Kerberos against the DC VM
    from harness.probe.profiles import load_profile

    _, options = lab.probe_setup(load_profile("mstsc-win11"))
    assert options.kerberos is not None and options.kerberos.krb5_conf == client.krb5_conf


def test_a_lab_without_a_dc_has_no_kerberos(tmp_path: Path, world: World) -> None:
    """mock: no Windows VM can run here; nothing is started."""
    from tests.vagrant_fakes import make_lab

    assert make_lab(tmp_path).kerberos_client() is None


# -- after `vagrant up`: the DC answers, the members are members ---------------------------------

def test_a_domain_lab_comes_up_with_its_checks_and_domain_users(tmp_path: Path,
                                                                 world: World) -> None:
    """mock: no Windows VM can run here; python-vagrant and pywinrm are fakes, the DC's ports
    answer through a fake dialer."""
    world.machines["dc"] = "not_created"
    dialer = Dialer()
    lab = domain_lab(tmp_path, dialer)
    lab.start()
    assert dialer.calls == [(DC, 88), (DC, 389)]
    assert vagrant_commands(world)[-1] == "snapshot_save"
    checks = [r for r in lab.records if r["step"] == "domain"]
    assert [(r["role"], r["ok"]) for r in checks] == [("dc", True), ("client", True),
                                                      ("host", True)]
    dc_scripts = world.scripts_to(DC)
    users = next(s for s in dc_scripts if "New-ADUser" in s)
    assert f"ConvertTo-SecureString '{lab.spec.users['alice']}'" in users
    assert "$name = 'bob'" in users and "-UserPrincipalName \"$name@lab.test\"" in users
    assert "PSCredential('LAB\\Administrator', (ConvertTo-SecureString " \
           f"'{DEFAULT_DOMAIN_ADMIN_PASSWORD}'" in users
    host = world.scripts_to(HOST)
    assert any("$member = 'WinNT://LAB/alice'" in s for s in host)
    assert not any(".Create('User'" in s for s in host)  # no local user of that name
    # the checks come before the users, both before the baseline snapshot
    order = [r["step"] for r in lab.records]
    assert order.index("domain") < order.index("domain-users")
    lab.close()


def test_a_host_outside_the_domain_is_a_named_error(tmp_path: Path, world: World) -> None:
    """mock: no Windows VM can run here; the fake host VM says PartOfDomain False."""
    world.machines["dc"] = "not_created"
    world.membership[HOST] = "False|WORKGROUP"
    lab = domain_lab(tmp_path)
    with pytest.raises(LabError) as caught:
        lab.start()
    message = str(caught.value)
    assert "the host VM RDHOST is not in a domain (workgroup WORKGROUP)" in message
    assert "not a member of lab.test" in message
    assert "vagrant provision host" in message
    lab.close()
    assert "snapshot_save" not in vagrant_commands(world)  # no baseline of a broken lab
    assert not any("New-ADUser" in s for s in world.scripts_to(DC))


def test_a_member_of_another_domain_is_a_named_error(tmp_path: Path, world: World) -> None:
    """mock: no Windows VM can run here; the fake client VM is in another domain."""
    world.machines["dc"] = "not_created"
    world.membership[CLIENT] = "True|corp.example"
    lab = domain_lab(tmp_path)
    with pytest.raises(LabError, match=r"the client VM WS01 is a member of corp.example, "
                                       r"not a member of lab.test"):
        lab.start()
    lab.close()


def test_a_dc_without_kerberos_is_a_named_error(tmp_path: Path, world: World) -> None:
    """mock: no Windows VM can run here; the fake dialer refuses TCP 88 on the DC."""
    world.machines["dc"] = "not_created"
    dialer = Dialer(refused=(88,))
    lab = domain_lab(tmp_path, dialer, check_timeout=20.0)
    with pytest.raises(LabError, match=r"the DC VM DC01 does not answer on 10.213.4.2:88 "
                                       r"\(Kerberos: .*4 tries in 20 s.*vagrant provision dc"):
        lab.start()
    lab.close()
    assert dialer.calls == [(DC, 88)] * 4
    assert "snapshot_save" not in vagrant_commands(world)


def test_a_dc_that_has_just_booted_gets_time(tmp_path: Path, world: World) -> None:
    """mock: no Windows VM can run here; the fake dialer refuses each DC port twice first."""
    world.machines["dc"] = "not_created"
    dialer = Dialer(refuse_first=2)
    lab = domain_lab(tmp_path, dialer, check_timeout=20.0)
    lab.start()
    assert dialer.calls == [(DC, 88)] * 3 + [(DC, 389)] * 3
    assert next(r for r in lab.records if r["step"] == "domain")["tries"] == {88: 3, 389: 3}
    lab.close()


# -- faults on the DC ----------------------------------------------------------------------------

def test_no_fault_of_the_catalog_injects_on_the_dc() -> None:
    """No mock: the scenario files. The Vagrant faults module maps actions per node; none of the
    catalog's targets the dc node today. A fault that does must get its PowerShell for a DC
    (or a reason it is not emulated) in harness/lab/vagrant_faults.py, and this test updated."""
    import yaml

    on_dc = []
    for path in sorted((REPO / "scenarios").glob("*.yaml")):
        data = yaml.safe_load(path.read_text()) or {}
        steps = list(data.get("inject") or [])
        for variant in data.get("variants") or []:
            steps += list(variant.get("inject") or [])
        on_dc += [f"{path.name}: {s.get('action')}" for s in steps
                  if isinstance(s, dict) and s.get("node") == "dc"]
    assert on_dc == []
