"""The domain lab on real VMs (a lab with a `dc` node): the DC VM's Active Directory is the
lab's KDC, as the MIT KDC is on the embedded backends.

The Vagrantfile makes the DC VM the forest root and joins the members (docs/vagrant.md, "The
domain lab on Vagrant"); this module is what rdplab does with it: the krb5.conf that points
the probe's Kerberos (harness/probe/kerberos.py) at the DC VM, the PowerShell that (re)applies
the lab's users as domain users at every start and lets the domain user log on over RDP, and
the checks after `vagrant up` (the DC answers Kerberos and LDAP, the members are members).
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from pathlib import Path

from ...errors import LabError
from ..definition import LabSpec
from ..kdc import krb5_conf_text
from ..winrm_runner import ps_quote

KERBEROS_PORT = 88
LDAP_PORT = 389
DC_PORTS = {KERBEROS_PORT: "Kerberos", LDAP_PORT: "LDAP"}
# One line, "<PartOfDomain>|<Domain>" (Win32_ComputerSystem, CIM: PowerShell 3.0 and later).
MEMBERSHIP_SCRIPT = (
    "$ErrorActionPreference = 'Stop'\n"
    "$system = Get-CimInstance -ClassName Win32_ComputerSystem\n"
    "'{0}|{1}' -f $system.PartOfDomain, $system.Domain\n"
)
# How long Active Directory may take to answer after a DC boots (AD Web Services starts late).
AD_READY_SECONDS = 600

Dial = Callable[..., socket.socket]


def write_krb5_conf(spec: LabSpec, kdc_address: str, directory: Path,
                    port: int = KERBEROS_PORT) -> Path:
    """The client machine's krb5.conf for the lab's realm with the DC VM as its KDC (the same
    text the embedded KDC writes for its clients, kdc.krb5_conf_text); returns its path."""
    members = {f"{node.name.lower()}.{spec.dns_domain}" for role, node in spec.nodes.items()
               if role != "client"}
    names = [*sorted(members), f".{spec.dns_domain}", spec.dns_domain]
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / "krb5.conf"
    path.write_text(krb5_conf_text(spec.realm, f"{kdc_address}:{port}", names))
    return path


def domain_users_script(users: Mapping[str, str], dns_domain: str, netbios: str,
                        admin_password: str, ready_seconds: int = AD_READY_SECONDS) -> str:
    """PowerShell for the DC VM: once Active Directory answers, every lab user is a domain
    user with the lab's password (created, or its password reset), enabled, password never
    expiring. Runs as the domain administrator (the WinRM user is only a builtin admin)."""
    lines = [
        "$ErrorActionPreference = 'Stop'",
        f"$credential = New-Object System.Management.Automation.PSCredential("
        f"{ps_quote(netbios + chr(92) + 'Administrator')}, "
        f"(ConvertTo-SecureString {ps_quote(admin_password)} -AsPlainText -Force))",
        f"$deadline = (Get-Date).AddSeconds({int(ready_seconds)})",
        "while ($true) {",
        "  try { Get-ADDomain -Credential $credential | Out-Null; break }",
        "  catch {",
        "    if ((Get-Date) -gt $deadline) { throw \"Active Directory did not answer within "
        f"{int(ready_seconds)} s: $_\" }}",
        "    Start-Sleep -Seconds 5",
        "  }",
        "}",
    ]
    for name, password in users.items():
        lines += [
            f"$name = {ps_quote(name)}",
            f"$password = ConvertTo-SecureString {ps_quote(password)} -AsPlainText -Force",
            "$existing = Get-ADUser -Credential $credential -Filter \"SamAccountName -eq '$name'\"",
            "if ($existing) {",
            "  Set-ADAccountPassword -Credential $credential -Identity $existing -Reset "
            "-NewPassword $password",
            "  Set-ADUser -Credential $credential -Identity $existing -Enabled $true "
            "-PasswordNeverExpires $true",
            "} else {",
            "  New-ADUser -Credential $credential -Name $name -SamAccountName $name "
            f"-UserPrincipalName \"$name@{dns_domain}\" -AccountPassword $password "
            "-Enabled $true -PasswordNeverExpires $true",
            "}",
        ]
    return "\n".join(lines) + "\n"


def domain_rdp_user_script(netbios: str, user: str) -> str:
    """PowerShell for a member that serves RDP: the domain user in Remote Desktop Users."""
    return "\n".join((
        "$ErrorActionPreference = 'Stop'",
        "$group = [ADSI]\"WinNT://$env:COMPUTERNAME/Remote Desktop Users,group\"",
        f"$member = {ps_quote(f'WinNT://{netbios}/{user}')}",
        "if (-not $group.IsMember($member)) { $group.Add($member) }",
    )) + "\n"


def parse_membership(stdout: str) -> tuple[bool, str]:
    """MEMBERSHIP_SCRIPT's line -> (part of a domain, the domain or workgroup name)."""
    part, _, domain = stdout.strip().partition("|")
    return part.strip().lower() == "true", domain.strip()


def membership_error(role: str, vm_name: str, stdout: str, dns_domain: str) -> str | None:
    """Why the VM is not a member of the lab's domain, or None when it is."""
    member, domain = parse_membership(stdout)
    if member and domain.lower() == dns_domain.lower():
        return None
    now = f"a member of {domain}" if member else f"not in a domain (workgroup {domain or '?'})"
    return (f"the {role} VM {vm_name} is {now}, not a member of {dns_domain}: the "
            f"Vagrantfile's domain-join provisioner did not finish (see its output in "
            f"vagrant.log); run `vagrant provision {role}`, or destroy the VMs and start again")


def check_dc_ports(address: str, vm_name: str, dial: Dial, wait: float,
                   sleep: Callable[[float], None], every: float = 5.0) -> dict[int, int]:
    """The DC VM answers on TCP 88 (Kerberos) and 389 (LDAP) from this machine, where the
    probe's Kerberos runs; a DC that has just booted gets `wait` seconds (a try every `every`
    seconds, each bounded by `every`). Returns the tries per port; LabError naming the port
    and what to do otherwise."""
    tries: dict[int, int] = {}
    attempts = max(1, int(wait // every))
    for port, service in DC_PORTS.items():
        for attempt in range(1, attempts + 1):
            try:
                dial((address, port), timeout=every).close()
            except OSError as exc:
                if attempt < attempts:
                    sleep(every)
                    continue
                raise LabError(
                    f"the DC VM {vm_name} does not answer on {address}:{port} ({service}: {exc}; "
                    f"{attempts} tries in {wait:g} s): Active Directory is not running there. The "
                    "Vagrantfile's ad-forest / ad-users provisioners did not finish (see "
                    "vagrant.log); run `vagrant provision dc`, or destroy the VMs and start "
                    "again") from None
            tries[port] = attempt
            break
    return tries


__all__ = ["AD_READY_SECONDS", "DC_PORTS", "KERBEROS_PORT", "LDAP_PORT", "MEMBERSHIP_SCRIPT",
           "check_dc_ports", "domain_rdp_user_script", "domain_users_script",
           "membership_error", "parse_membership", "write_krb5_conf"]
