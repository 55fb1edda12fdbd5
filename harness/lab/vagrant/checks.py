"""What a remediation should leave on a real VM, checked after it with testinfra (winrm
backend): one PowerShell expression printing one value, and the value expected."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...windows.registry import (
    CREDSSP_PARAMETERS,
    MSTSC_DEFAULT,
    RDP_TCP,
    SCHANNEL_PROTOCOLS,
    TERMINAL_SERVER,
)
from .. import vagrant_faults
from ..base import RDP_PORT
from ..winrm_runner import ps_quote


@dataclass(frozen=True)
class StateCheck:
    """A PowerShell expression printing one value, and the value the remediation should leave.
    `role` is client, host, or "target" (every node the remediation ran on)."""

    role: str
    name: str
    script: str
    expect: str


def service_running(name: str, role: str = "host") -> StateCheck:
    return StateCheck(role, f"service {name} running",
                      f"(Get-Service -Name {ps_quote(name)}).Status", "Running")


def registry_value(path: str, name: str, expect: Any, role: str = "host") -> StateCheck:
    key = ps_quote("Registry::" + path)
    return StateCheck(role, f"{path}\\{name} = {expect}",
                      f"(Get-ItemProperty -LiteralPath {key} -Name {ps_quote(name)} "
                      f"-ErrorAction SilentlyContinue).{ps_quote(name)}", str(expect))


def rdp_listening(port: int = RDP_PORT) -> StateCheck:
    return StateCheck("host", f"TCP {port} listening",
                      f"[bool](netstat -an | Select-String -Pattern ':{port}\\s+\\S+\\s+LISTENING' "
                      "-Quiet)", "True")


RDP_CERTIFICATE_VALID = StateCheck(
    "host", "a valid certificate in LocalMachine\\Remote Desktop",
    "[bool](@(Get-ChildItem -Path 'Cert:\\LocalMachine\\Remote Desktop' | Where-Object "
    "{ $_.NotBefore -lt (Get-Date) -and $_.NotAfter -gt (Get-Date) }).Count)", "True")
RDP_KEY_READABLE = StateCheck(
    "host", "NETWORK SERVICE may read the RDP key",
    vagrant_faults.RDP_KEY_PRELUDE
    + "[bool]((icacls $keyFile) -match 'NETWORK SERVICE:.*\\((R|RX|M|F)\\)')", "True")
MACHINEKEYS_PRESENT = StateCheck(
    "host", "MachineKeys folder present",
    "Test-Path -LiteralPath \"$env:ProgramData\\Microsoft\\Crypto\\RSA\\MachineKeys\"", "True")
ALWAYS = (service_running("TermService"), rdp_listening())
# What each remediation should leave behind; the sidecars would be the better home (a `checks:`
# field), which needs the sidecar loader to accept it.
REMEDIATION_CHECKS: dict[str, tuple[StateCheck, ...]] = {
    "client-allow-vulnerable-credssp": (
        registry_value(CREDSSP_PARAMETERS, "AllowEncryptionOracle", 2, "client"),),
    "host-allow-vulnerable-credssp": (
        registry_value(CREDSSP_PARAMETERS, "AllowEncryptionOracle", 2),),
    "connect-by-ip": (registry_value(MSTSC_DEFAULT, "MRU0", "{host.address}", "client"),),
    "disable-nla": (registry_value(RDP_TCP, "UserAuthentication", 0),),
    "enable-rdp-firewall-rules": (StateCheck(
        "host", "Remote Desktop firewall rules enabled",
        "[bool](@(Get-NetFirewallRule -DisplayGroup 'Remote Desktop' | Where-Object "
        "{ $_.Enabled -eq 'True' }).Count)", "True"),),
    "enable-tls12-on-host": (
        registry_value(SCHANNEL_PROTOCOLS + "\\TLS 1.2\\Server", "Enabled", 1),),
    "lower-client-mtu": (StateCheck(
        "client", "VPN interface MTU 1400",
        "(Get-NetIPInterface -InterfaceAlias 'VPN' -AddressFamily IPv4).NlMtu", "1400"),),
    "raise-connection-limit": (
        registry_value(TERMINAL_SERVER, "MaxOutstandingConnections", 65536),),
    "reboot-both": (service_running("TermService"),),
    "rename-machinekeys-reboot": (MACHINEKEYS_PRESENT, RDP_CERTIFICATE_VALID),
    "renew-rdp-certificate": (RDP_CERTIFICATE_VALID,),
    "reset-machinekeys-acl": (RDP_KEY_READABLE,),
    "restart-rdp-service": (service_running("TermService"),),
    "resync-clock": (service_running("W32Time", "target"),),
    "update-client": (),
    "update-host": (),
}


__all__ = ["ALWAYS", "MACHINEKEYS_PRESENT", "RDP_CERTIFICATE_VALID", "RDP_KEY_READABLE",
           "REMEDIATION_CHECKS", "StateCheck", "rdp_listening", "registry_value",
           "service_running"]
