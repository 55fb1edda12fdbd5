"""The fault actions of harness/windows/faults.py as real PowerShell for a Windows VM.

`plan(action, args, context)` returns what the Vagrant lab runs to inject the same fault on a
real machine: a PowerShell script (run over WinRM), possibly followed by a restart, or a step
the lab's runner takes itself (holding TCP connections open). An action a real VM cannot do
faithfully raises NotEmulated with the reason, before anything is changed.

Arguments are bound against the model's own signature, so defaults and argument errors are the
same as in the embedded lab. Where the real injection differs from the model's, `FaultPlan.note`
says how; the lab records it in the journal.

Scripts stay within Windows PowerShell 2.0 (Server 2008 R2) except where a newer cmdlet is
needed; those actions name the OS they need (MODERN_ONLY).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from ..windows.acl import PRINCIPALS, AclError, principal
from ..windows.faults import ACTIONS, FaultError
from ..windows.os_profiles import SCHANNEL_NAMES
from ..windows.registry import (
    CREDSSP_PARAMETERS,
    MSTSC_DEFAULT,
    RDP_TCP,
    SCHANNEL_PROTOCOLS,
    TERMINAL_SERVER,
    TS_POLICY,
    RegType,
    split_path,
)
from .base import NotEmulated
from .winrm_runner import ps_quote

MACHINEKEYS = "$env:ProgramData\\Microsoft\\Crypto\\RSA\\MachineKeys"
NTP_RULE = "rdplab block NTP"
# OS profiles whose PowerShell (2.0) lacks the cmdlets some actions need.
LEGACY_OS = frozenset({"windows-server-2008r2"})

PS_REG_TYPES = {
    RegType.REG_SZ: "String", RegType.REG_EXPAND_SZ: "ExpandString",
    RegType.REG_MULTI_SZ: "MultiString", RegType.REG_DWORD: "DWord",
    RegType.REG_QWORD: "QWord", RegType.REG_BINARY: "Binary",
}

# The certificate the RDP listener serves and its CryptoAPI key file in MachineKeys.
RDP_KEY_PRELUDE = "\n".join((
    "$ts = Get-WmiObject -Namespace 'root\\cimv2\\TerminalServices' "
    "-Class 'Win32_TSGeneralSetting' -Filter \"TerminalName='RDP-Tcp'\"",
    "$certs = @(Get-ChildItem -Path 'Cert:\\LocalMachine\\Remote Desktop')",
    "$cert = $certs | Where-Object { $_.Thumbprint -eq $ts.SSLCertificateSHA1Hash } "
    "| Select-Object -First 1",
    "if (-not $cert) { $cert = $certs | Select-Object -First 1 }",
    "if (-not $cert) { throw 'no certificate in LocalMachine\\Remote Desktop' }",
    "$info = $cert.PrivateKey.CspKeyContainerInfo",
    "if (-not $info) { throw \"certificate $($cert.Thumbprint) has no CryptoAPI key in "
    "MachineKeys\" }",
    f"$keyFile = Join-Path \"{MACHINEKEYS}\" $info.UniqueKeyContainerName",
)) + "\n"


@dataclass(frozen=True)
class FaultContext:
    """What a script needs to know about the VM it runs on."""

    role: str
    os: str  # the node's OS profile id
    address: str  # the VM's lab address


@dataclass(frozen=True)
class FaultPlan:
    action: str
    args: dict[str, Any]
    kind: Literal["powershell", "runner"]
    script: str = ""  # PowerShell for kind "powershell"
    restart: bool = False  # restart the VM afterwards (and wait for it)
    note: str | None = None  # how the real injection differs from the model's

    def to_journal(self) -> dict[str, Any]:
        return {"action": self.action, "args": self.args, "kind": self.kind,
                "script": self.script, "restart": self.restart, "note": self.note}


Builder = Callable[..., FaultPlan]
BUILDERS: dict[str, Builder] = {}

# Actions no Windows command can reproduce faithfully, with the reason a cell reports.
NOT_REAL: dict[str, tuple[str, str | None]] = {
    "set_dns_record": (
        "the Vagrant lab has no DNS server (workgroup VMs resolve the lab names through the "
        "client's hosts file); a wrong DNS record needs one: use set_hosts_entry or netns",
        "netns"),
    "set_cached_dns": (
        "Windows has no command that plants a resolver-cache entry: a stale cache needs a DNS "
        "server that answered differently earlier, which the Vagrant lab does not have",
        "netns"),
    "corrupt_winsock": (
        "Windows has no command that damages the Winsock catalog; doing it means installing a "
        "broken layered service provider, which the Vagrant lab does not ship", None),
    "add_hung_session": (
        "no command makes a session hang; a real one needs a logon whose shell stops "
        "answering, which the Vagrant lab cannot stage", None),
}
# Actions whose script needs PowerShell 3+ / Windows 8+ cmdlets.
MODERN_ONLY: dict[str, str] = {
    "add_nic": "Get-NetIPAddress / Rename-NetAdapter (Windows 8 / Server 2012 and later)",
}


def builds(name: str) -> Callable[[Builder], Builder]:
    def register(fn: Builder) -> Builder:
        if name not in ACTIONS:
            raise ValueError(f"{name} is not a fault action of harness/windows/faults.py")
        BUILDERS[name] = fn
        return fn
    return register


def bind_args(action: str, args: dict[str, Any] | None) -> dict[str, Any]:
    """The action's arguments with the model's defaults; FaultError as faults.inject raises."""
    fn = ACTIONS.get(action)
    if fn is None:
        raise FaultError(f"unknown fault action {action!r}; known: {', '.join(sorted(ACTIONS))}")
    try:
        bound = inspect.signature(fn).bind(None, **dict(args or {}))
    except TypeError as exc:
        raise FaultError(f"{action}: {exc}") from exc
    bound.apply_defaults()
    return {k: v for k, v in bound.arguments.items() if k != "node"}


def plan(action: str, args: dict[str, Any] | None, context: FaultContext) -> FaultPlan:
    """The real injection of one fault action on one VM, or NotEmulated with the reason."""
    full = bind_args(action, args)
    if action in NOT_REAL:
        reason, needs = NOT_REAL[action]
        raise NotEmulated(f"{action}: {reason}", needs=needs)
    builder = BUILDERS.get(action)
    if builder is None:
        raise NotEmulated(f"{action}: no real injection is written for this action")
    if context.os in LEGACY_OS and action in MODERN_ONLY:
        raise NotEmulated(f"{action} on {context.os}: needs {MODERN_ONLY[action]}",
                          needs="a newer Windows box")
    return builder(context, **full)


def coverage() -> dict[str, str]:
    """Every model action and how the Vagrant lab treats it: 'powershell', 'runner' or
    'not real: <reason>' (what docs/vagrant.md's table shows)."""
    out: dict[str, str] = {}
    for name in sorted(ACTIONS):
        if name in NOT_REAL:
            out[name] = f"not real: {NOT_REAL[name][0]}"
        elif name in BUILDERS:
            out[name] = "runner" if name in RUNNER_ACTIONS else "powershell"
        else:
            out[name] = "not real: no real injection is written"
    return out


# -- building blocks ---------------------------------------------------------------------------

def _script(*lines: str) -> str:
    return "\n".join(("$ErrorActionPreference = 'Stop'", *lines)) + "\n"


def _native(command: str) -> str:
    """A native command and the exit-code check PowerShell does not make. Its stderr must not
    stop the script (Windows PowerShell turns redirected native stderr into error records):
    the exit code decides."""
    program = command.split()[0]
    return (f"$ErrorActionPreference = 'Continue'\n{command}\n$code = $LASTEXITCODE\n"
            "$ErrorActionPreference = 'Stop'\n"
            f"if ($code -ne 0) {{ throw \"{program} exited $code\" }}")


def _sid(account: str) -> str:
    """icacls' *SID form of an account (language-independent)."""
    try:
        canonical = principal(account)
    except AclError:
        return account
    for alias in PRINCIPALS.get(canonical, ()):
        if alias.startswith("*S-"):
            return alias
    return account


def _key(path: str) -> str:
    hive, parts = split_path(path)
    return "Registry::" + "\\".join([hive, *parts])


def _ps_value(value: Any, kind: RegType) -> str:
    if kind in (RegType.REG_DWORD, RegType.REG_QWORD):
        return str(int(value) if not isinstance(value, str) else int(value, 0))
    if kind is RegType.REG_MULTI_SZ:
        items = value if isinstance(value, list | tuple) else str(value).split("\\0")
        return "@(" + ", ".join(ps_quote(i) for i in items) + ")"
    if kind is RegType.REG_BINARY:
        data = bytes.fromhex(value) if isinstance(value, str) else bytes(value)
        return "([byte[]](" + ", ".join(f"0x{b:02x}" for b in data) + "))"
    return ps_quote(str(value))


def _set_value(path: str, name: str, value: Any, kind: RegType = RegType.REG_DWORD) -> list[str]:
    """Create the key when missing (never New-Item -Force on an existing key: that empties
    it), then the value."""
    key = ps_quote(_key(path))
    return [
        f"$key = {key}",
        "if (-not (Test-Path -LiteralPath $key)) { New-Item -Path $key -Force | Out-Null }",
        f"New-ItemProperty -LiteralPath $key -Name {ps_quote(name)} "
        f"-PropertyType {PS_REG_TYPES[kind]} -Value {_ps_value(value, kind)} -Force | Out-Null",
    ]


def _registry_plan(action: str, args: dict[str, Any], path: str, name: str, value: Any,
                   kind: RegType = RegType.REG_DWORD, note: str | None = None) -> FaultPlan:
    return FaultPlan(action, args, "powershell", _script(*_set_value(path, name, value, kind)),
                     note=note)


# -- certificate and key store -----------------------------------------------------------------

def _reissue_expired(valid_days: int, days_ago: int) -> list[str]:
    """CertEnroll lines: `$cert` (whose CryptoAPI key is `$info`) re-issued self-signed with
    the same key and subject, valid `valid_days` until `days_ago` days ago, installed in
    LocalMachine\\My; `$thumbprint` and `$issued` name the new certificate. (No cmdlet
    re-issues with an existing key.)"""
    return [
        "$key = New-Object -ComObject X509Enrollment.CX509PrivateKey",
        "$key.ProviderName = $info.ProviderName",
        "$key.ContainerName = $info.KeyContainerName",
        "$key.KeySpec = [int]$info.KeyNumber",
        "$key.MachineContext = $true",
        "$key.Existing = $true",
        "$request = New-Object -ComObject X509Enrollment.CX509CertificateRequestCertificate",
        "$request.InitializeFromPrivateKey(2, $key, '')",
        "$name = New-Object -ComObject X509Enrollment.CX500DistinguishedName",
        "$name.Encode($cert.Subject, 0)",
        "$request.Subject = $name",
        "$request.Issuer = $name",
        f"$request.NotBefore = (Get-Date).ToUniversalTime().AddDays(-{valid_days + days_ago})",
        f"$request.NotAfter = (Get-Date).ToUniversalTime().AddDays(-{days_ago})",
        "$usage = New-Object -ComObject X509Enrollment.CObjectIds",
        "$serverAuth = New-Object -ComObject X509Enrollment.CObjectId",
        "$serverAuth.InitializeFromValue('1.3.6.1.5.5.7.3.1')",
        "$usage.Add($serverAuth)",
        "$extension = New-Object -ComObject X509Enrollment.CX509ExtensionEnhancedKeyUsage",
        "$extension.InitializeEncode($usage)",
        "$request.X509Extensions.Add($extension)",
        "$request.Encode()",
        "$enrollment = New-Object -ComObject X509Enrollment.CX509Enrollment",
        "$enrollment.InitializeFromRequest($request)",
        "$encoded = $enrollment.CreateRequest(1)",
        "$enrollment.InstallResponse(2, $encoded, 1, '')",
        "$thumbprint = (New-Object System.Security.Cryptography.X509Certificates.X509Certificate2("
        "@(, [Convert]::FromBase64String($encoded)))).Thumbprint",
        "$issued = Get-Item -Path ('Cert:\\LocalMachine\\My\\' + $thumbprint)",
    ]


@builds("expire_rdp_certificate")
def _expire_rdp_certificate(ctx: FaultContext, days_ago: int) -> FaultPlan:
    """The served certificate re-issued with its own key, expired; the listener serves it."""
    script = _script(
        RDP_KEY_PRELUDE.rstrip("\n"),
        *_reissue_expired(182, int(days_ago)),
        "$store = New-Object System.Security.Cryptography.X509Certificates.X509Store("
        "'Remote Desktop', 'LocalMachine')",
        "$store.Open('ReadWrite')",
        "foreach ($c in @($store.Certificates)) { $store.Remove($c) }",
        "$store.Add($issued)",
        "$store.Close()",
        "Remove-Item -Path ('Cert:\\LocalMachine\\My\\' + $thumbprint)",
        "Set-WmiInstance -Path $ts.__PATH -Arguments @{SSLCertificateSHA1Hash = $thumbprint} "
        "| Out-Null",
    )
    return FaultPlan("expire_rdp_certificate", {"days_ago": days_ago}, "powershell", script,
                     note="the served certificate re-issued with the same key and subject, "
                          f"valid 182 days until {days_ago} days ago (the model's certificate "
                          "is CA-issued, this one self-signed: the lab pins the baseline one). "
                          "Untested on real Windows; whether TermService renews a certificate "
                          "set through SSLCertificateSHA1Hash as it renews its own is [open]")


@builds("remove_rdp_certificate")
def _remove_rdp_certificate(ctx: FaultContext) -> FaultPlan:
    return FaultPlan("remove_rdp_certificate", {}, "powershell", _script(
        "Get-ChildItem -Path 'Cert:\\LocalMachine\\Remote Desktop' | Remove-Item"))


@builds("corrupt_rdp_key")
def _corrupt_rdp_key(ctx: FaultContext) -> FaultPlan:
    return FaultPlan("corrupt_rdp_key", {}, "powershell", _script(
        RDP_KEY_PRELUDE.rstrip("\n"),
        "$bytes = [System.IO.File]::ReadAllBytes($keyFile)",
        "$third = [int][Math]::Floor($bytes.Length / 3)",
        "$noise = New-Object byte[] $third",
        "(New-Object System.Random).NextBytes($noise)",
        "[Array]::Copy($noise, 0, $bytes, $third, $third)",
        "[System.IO.File]::WriteAllBytes($keyFile, $bytes)",
    ), note="the served certificate's key file (found through the listener's certificate), "
            "middle third overwritten with random bytes as in the model")


@builds("delete_rdp_key")
def _delete_rdp_key(ctx: FaultContext) -> FaultPlan:
    return FaultPlan("delete_rdp_key", {}, "powershell", _script(
        RDP_KEY_PRELUDE.rstrip("\n"), "Remove-Item -LiteralPath $keyFile -Force"))


@builds("mismatch_rdp_key")
def _mismatch_rdp_key(ctx: FaultContext) -> FaultPlan:
    return FaultPlan("mismatch_rdp_key", {}, "powershell", _script(
        RDP_KEY_PRELUDE.rstrip("\n"),
        "$params = New-Object System.Security.Cryptography.CspParameters("
        "$info.ProviderType, $info.ProviderName, $info.KeyContainerName)",
        "$params.Flags = [System.Security.Cryptography.CspProviderFlags]"
        "'UseMachineKeyStore, UseExistingKey'",
        "$params.KeyNumber = [int]$info.KeyNumber",
        "$rsa = New-Object System.Security.Cryptography.RSACryptoServiceProvider($params)",
        "$foreign = New-Object System.Security.Cryptography.RSACryptoServiceProvider(2048)",
        "$rsa.PersistKeyInCsp = $true",
        "$rsa.ImportCspBlob($foreign.ExportCspBlob($true))",
    ), note="a fresh RSA key imported into the listener's key container (CryptoAPI); "
            "untested on real Windows")


@builds("revoke_key_access")
def _revoke_key_access(ctx: FaultContext, account: str) -> FaultPlan:
    return FaultPlan("revoke_key_access", {"account": account}, "powershell", _script(
        RDP_KEY_PRELUDE.rstrip("\n"),
        _native(f"icacls $keyFile /remove:g {ps_quote(_sid(account))}")))


@builds("deny_key_access")
def _deny_key_access(ctx: FaultContext, account: str, rights: str) -> FaultPlan:
    grant = f"{_sid(account)}:({rights})"
    return FaultPlan("deny_key_access", {"account": account, "rights": rights}, "powershell",
                     _script(RDP_KEY_PRELUDE.rstrip("\n"),
                             _native(f"icacls $keyFile /deny {ps_quote(grant)}")))


@builds("break_machinekeys_acl")
def _break_machinekeys_acl(ctx: FaultContext) -> FaultPlan:
    others = " ".join(ps_quote(s) for s in ("*S-1-1-0", "*S-1-5-18", "*S-1-5-19", "*S-1-5-20",
                                            "*S-1-5-32-545", "*S-1-5-11"))
    return FaultPlan("break_machinekeys_acl", {}, "powershell", _script(
        f"$mk = \"{MACHINEKEYS}\"",
        _native(f"icacls $mk /remove:g {others} /T /C /Q"),
        _native("icacls $mk /inheritance:r /grant:r '*S-1-5-32-544:(R)' /T /C /Q"),
    ), note="other accounts' grants are removed first so that, as in the model, only "
            "Administrators (read) remain on the folder and every key file")


@builds("rename_machinekeys")
def _rename_machinekeys(ctx: FaultContext, new_name: str) -> FaultPlan:
    return FaultPlan("rename_machinekeys", {"new_name": new_name}, "powershell", _script(
        f"Rename-Item -LiteralPath \"{MACHINEKEYS}\" -NewName {ps_quote(new_name)}"))


# -- registry ------------------------------------------------------------------------------------

@builds("set_registry")
def _set_registry(ctx: FaultContext, path: str, name: str, value: Any,
                  type: str) -> FaultPlan:
    kind = RegType(type.upper())
    return _registry_plan("set_registry", {"path": path, "name": name, "value": value,
                                           "type": type}, path, name, value, kind)


@builds("delete_registry_value")
def _delete_registry_value(ctx: FaultContext, path: str, name: str) -> FaultPlan:
    return FaultPlan("delete_registry_value", {"path": path, "name": name}, "powershell", _script(
        f"$key = {ps_quote(_key(path))}",
        f"if (Get-ItemProperty -LiteralPath $key -Name {ps_quote(name)} "
        "-ErrorAction SilentlyContinue) "
        f"{{ Remove-ItemProperty -LiteralPath $key -Name {ps_quote(name)} }}"))


@builds("set_security_layer")
def _set_security_layer(ctx: FaultContext, value: int, policy: bool) -> FaultPlan:
    return _registry_plan("set_security_layer", {"value": value, "policy": policy},
                          TS_POLICY if policy else RDP_TCP, "SecurityLayer", value)


@builds("set_nla")
def _set_nla(ctx: FaultContext, required: bool, policy: bool) -> FaultPlan:
    return _registry_plan("set_nla", {"required": required, "policy": policy},
                          TS_POLICY if policy else RDP_TCP, "UserAuthentication", int(required))


@builds("set_allow_encryption_oracle")
def _set_allow_encryption_oracle(ctx: FaultContext, value: int) -> FaultPlan:
    return _registry_plan("set_allow_encryption_oracle", {"value": value}, CREDSSP_PARAMETERS,
                          "AllowEncryptionOracle", value)


@builds("set_rdp_port")
def _set_rdp_port(ctx: FaultContext, port: int, restart: bool) -> FaultPlan:
    lines = _set_value(RDP_TCP, "PortNumber", port)
    if restart:
        lines.append("if ((Get-Service -Name 'TermService').Status -eq 'Running') "
                     "{ Restart-Service -Name 'TermService' -Force }")
    return FaultPlan("set_rdp_port", {"port": port, "restart": restart}, "powershell",
                     _script(*lines))


@builds("deny_ts_connections")
def _deny_ts_connections(ctx: FaultContext, deny: bool) -> FaultPlan:
    return _registry_plan("deny_ts_connections", {"deny": deny}, TERMINAL_SERVER,
                          "fDenyTSConnections", int(deny))


@builds("set_max_outstanding_connections")
def _set_max_outstanding_connections(ctx: FaultContext, value: int) -> FaultPlan:
    return _registry_plan("set_max_outstanding_connections", {"value": value}, TERMINAL_SERVER,
                          "MaxOutstandingConnections", value)


@builds("set_schannel_protocol")
def _set_schannel_protocol(ctx: FaultContext, version: str, enabled: bool, side: str,
                           apply: bool) -> FaultPlan:
    key = f"{SCHANNEL_PROTOCOLS}\\{SCHANNEL_NAMES[version]}\\{side.capitalize()}"
    lines = _set_value(key, "Enabled", int(enabled))
    lines += _set_value(key, "DisabledByDefault", int(not enabled))[2:]
    return FaultPlan("set_schannel_protocol", {"version": version, "enabled": enabled,
                                               "side": side, "apply": apply}, "powershell",
                     _script(*lines), restart=bool(apply),
                     note="apply=True restarts the VM: Schannel reads these values at boot"
                     if apply else None)


# -- services, firewall, network, load ---------------------------------------------------------

@builds("stop_service")
def _stop_service(ctx: FaultContext, name: str) -> FaultPlan:
    return FaultPlan("stop_service", {"name": name}, "powershell", _script(
        f"Stop-Service -Name {ps_quote(name)} -Force"))


@builds("disable_service")
def _disable_service(ctx: FaultContext, name: str, stop: bool) -> FaultPlan:
    lines = [f"Set-Service -Name {ps_quote(name)} -StartupType Disabled"]
    if stop:
        lines.append(f"Stop-Service -Name {ps_quote(name)} -Force")
    return FaultPlan("disable_service", {"name": name, "stop": stop}, "powershell",
                     _script(*lines))


@builds("disable_firewall_group")
def _disable_firewall_group(ctx: FaultContext, group: str) -> FaultPlan:
    return FaultPlan("disable_firewall_group", {"group": group}, "powershell", _script(
        _native(f"netsh advfirewall firewall set rule {ps_quote('group=' + group)} "
                "new enable=no")))


@builds("add_block_rule")
def _add_block_rule(ctx: FaultContext, port: int, mode: str, upstream: bool) -> FaultPlan:
    if mode == "reject" or upstream:
        raise NotEmulated(
            f"add_block_rule(mode={mode}, upstream={upstream}): a device in front of the host "
            "(RST for reject) — the Vagrant lab has none, and Windows Defender Firewall has no "
            "reject action (a block rule drops silently)", needs="netns")
    name = f"Block RDP (TCP {int(port)})"
    return FaultPlan("add_block_rule", {"port": port, "mode": mode, "upstream": upstream},
                     "powershell", _script(_native(
                         f"netsh advfirewall firewall add rule {ps_quote('name=' + name)} "
                         f"dir=in action=block protocol=TCP localport={int(port)}")))


@builds("set_clock_offset")
def _set_clock_offset(ctx: FaultContext, seconds: float) -> FaultPlan:
    return FaultPlan("set_clock_offset", {"seconds": seconds}, "powershell", _script(
        f"Set-Date -Adjust ([TimeSpan]::FromSeconds({float(seconds)!r})) | Out-Null"),
        note="the VM's clock moves; the Vagrantfile turns the hypervisor's time sync off so "
             "that it stays moved (the lab aligns clocks after each snapshot restore)")


@builds("set_time_source_reachable")
def _set_time_source_reachable(ctx: FaultContext, reachable: bool) -> FaultPlan:
    rule = ps_quote("name=" + NTP_RULE)
    if reachable:
        lines = ["$ErrorActionPreference = 'Continue'",  # "No rules match" is fine here
                 f"netsh advfirewall firewall delete rule {rule} dir=out | Out-Null",
                 "exit 0"]
    else:
        lines = [_native(f"netsh advfirewall firewall add rule {rule} dir=out action=block "
                         "protocol=UDP remoteport=123")]
    return FaultPlan("set_time_source_reachable", {"reachable": reachable}, "powershell",
                     _script(*lines), note="an outbound firewall rule blocks NTP (UDP 123)")


@builds("set_hosts_entry")
def _set_hosts_entry(ctx: FaultContext, name: str, address: str | None) -> FaultPlan:
    lines = [
        "$hosts = \"$env:SystemRoot\\System32\\drivers\\etc\\hosts\"",
        f"$name = {ps_quote(name)}",
        "$lines = @(Get-Content -LiteralPath $hosts | Where-Object "
        "{ (($_ -replace '#.*$', '').Trim() -split '\\s+') -notcontains $name })",
    ]
    if address is not None:
        lines.append(f"$lines += {ps_quote(f'{address} {name}')}")
    lines.append("Set-Content -LiteralPath $hosts -Value $lines -Encoding ASCII")
    return FaultPlan("set_hosts_entry", {"name": name, "address": address}, "powershell",
                     _script(*lines))


@builds("add_nic")
def _add_nic(ctx: FaultContext, alias: str, mtu: int, addresses: list[str] | None,
             route: bool) -> FaultPlan:
    if not route:
        raise NotEmulated("add_nic(route=False): a second NIC needs the hypervisor; the VM "
                          "cannot add one to itself", needs="netns")
    return FaultPlan("add_nic", {"alias": alias, "mtu": mtu, "addresses": addresses,
                                 "route": route}, "powershell", _script(
        f"$ip = Get-NetIPAddress -AddressFamily IPv4 -IPAddress {ps_quote(ctx.address)}",
        "$adapter = Get-NetAdapter -InterfaceIndex $ip.InterfaceIndex",
        f"Rename-NetAdapter -Name $adapter.Name -NewName {ps_quote(alias)}",
        _native(f"netsh interface ipv4 set subinterface {ps_quote(alias)} mtu={int(mtu)} "
                "store=persistent"),
    ), note=f"the VM's lab adapter ({ctx.address}) stands in for the new NIC: renamed to "
            f"{alias} with MTU {mtu}; addresses {addresses or []} are not added")


@builds("set_mtu")
def _set_mtu(ctx: FaultContext, alias: str, mtu: int) -> FaultPlan:
    return FaultPlan("set_mtu", {"alias": alias, "mtu": mtu}, "powershell", _script(_native(
        f"netsh interface ipv4 set subinterface {ps_quote(alias)} mtu={int(mtu)} "
        "store=persistent")))


@builds("set_incomplete_connections")
def _set_incomplete_connections(ctx: FaultContext, count: int) -> FaultPlan:
    return FaultPlan("set_incomplete_connections", {"count": count}, "runner",
                     note="the lab's runner opens and holds this many TCP connections to the "
                          "host's RDP port, sending nothing; whether TermService counts them "
                          "as outstanding, and for how long, is what the run shows [open]")


@builds("uninstall_update")
def _uninstall_update(ctx: FaultContext, kb: str) -> FaultPlan:
    if ctx.os not in LEGACY_OS:
        raise NotEmulated(
            f"uninstall_update({kb}) on {ctx.os}: the update is part of a cumulative update "
            "that cannot be removed on its own; use a box built without it", needs="a box")
    number = kb.upper().removeprefix("KB")
    if not number.isdigit():
        raise FaultError(f"uninstall_update: {kb!r} is not a KB number")
    return FaultPlan("uninstall_update", {"kb": kb}, "powershell", _script(
        f"$p = Start-Process -FilePath 'wusa.exe' -ArgumentList '/uninstall', '/kb:{number}', "
        "'/quiet', '/norestart' -Wait -PassThru",
        "if ($p.ExitCode -ne 0 -and $p.ExitCode -ne 3010) "
        "{ throw \"wusa exited $($p.ExitCode)\" }",
    ), restart=True, note="wusa removes the update; the VM restarts to finish")


@builds("set_connection_target")
def _set_connection_target(ctx: FaultContext, target: str | None) -> FaultPlan:
    if target is None:
        plan_ = _delete_registry_value(ctx, MSTSC_DEFAULT, "MRU0")
        return FaultPlan("set_connection_target", {"target": None}, "powershell", plan_.script,
                         note="HKCU of the WinRM user, who also runs mstsc in the lab")
    return _registry_plan("set_connection_target", {"target": target}, MSTSC_DEFAULT, "MRU0",
                          target, RegType.REG_SZ,
                          note="HKCU of the WinRM user, who also runs mstsc in the lab")


# -- RD Gateway and the client's gateway setting ------------------------------------------------

GATEWAY_PRELUDE = "\n".join((
    "Import-Module RemoteDesktopServices",
    "$bound = (Get-Item -Path 'RDS:\\GatewayServer\\SSLCertificate\\Thumbprint').CurrentValue",
    "$cert = Get-Item -Path ('Cert:\\LocalMachine\\My\\' + $bound)",
    "$info = $cert.PrivateKey.CspKeyContainerInfo",
    "if (-not $info) { throw \"certificate $bound has no CryptoAPI key\" }",
))


def _gateway_only(ctx: FaultContext, action: str) -> None:
    if ctx.role != "gateway":
        raise FaultError(f"{action}: the {ctx.role} node is not an RD Gateway (role "
                         f"{ctx.role})")


@builds("expire_gateway_certificate")
def _expire_gateway_certificate(ctx: FaultContext, days_ago: int) -> FaultPlan:
    _gateway_only(ctx, "expire_gateway_certificate")
    return FaultPlan("expire_gateway_certificate", {"days_ago": days_ago}, "powershell",
                     _script(GATEWAY_PRELUDE, *_reissue_expired(365, int(days_ago)),
                             "Set-Item -Path 'RDS:\\GatewayServer\\SSLCertificate\\Thumbprint' "
                             "-Value $thumbprint"),
                     note="the bound certificate re-issued with the same key (self-signed; the "
                          "model's is CA-issued) and bound; untested on real Windows")


@builds("remove_gateway_resource")
def _remove_gateway_resource(ctx: FaultContext, name: str, group: str | None) -> FaultPlan:
    _gateway_only(ctx, "remove_gateway_resource")
    groups = (f"@({ps_quote(group)})" if group else
              "@(Get-ChildItem -Path 'RDS:\\GatewayServer\\GatewayManagedComputerGroups' "
              "| ForEach-Object { $_.Name })")
    return FaultPlan("remove_gateway_resource", {"name": name, "group": group}, "powershell",
                     _script(
        "Import-Module RemoteDesktopServices",
        f"$computer = {ps_quote(name)}",
        "$removed = 0",
        f"foreach ($group in {groups}) {{",
        "  $item = \"RDS:\\GatewayServer\\GatewayManagedComputerGroups\\$group\\Network"
        "\\$computer\"",
        "  if (Test-Path -Path $item) { Remove-Item -Path $item -Recurse; $removed++ }",
        "}",
        "if ($removed -eq 0) { throw \"$computer is in no RD Gateway-managed computer group\" }",
    ), note="untested on real Windows (RemoteDesktopServices provider paths)")


@builds("set_firewall_outbound_default")
def _set_firewall_outbound_default(ctx: FaultContext, action: str) -> FaultPlan:
    if action.lower() not in ("block", "allow"):
        raise FaultError(f"set_firewall_outbound_default: action must be Block or Allow, "
                         f"not {action!r}")
    policy = f"blockinbound,{action.lower()}outbound"
    return FaultPlan("set_firewall_outbound_default", {"action": action}, "powershell", _script(
        _native(f"netsh advfirewall set allprofiles firewallpolicy {policy}")),
        note="WinRM keeps working: its replies belong to inbound connections")


@builds("set_rd_gateway")
def _set_rd_gateway(ctx: FaultContext, name: str | None, usage: int) -> FaultPlan:
    lines = [
        "$path = Join-Path ([Environment]::GetFolderPath('MyDocuments')) 'Default.rdp'",
        "$lines = @()",
        "if (Test-Path -LiteralPath $path) { $lines = @(Get-Content -LiteralPath $path | "
        "Where-Object { $_ -notmatch '^(gatewayhostname|gatewayusagemethod):' }) }",
    ]
    if name is not None:
        lines.append(f"$lines += {ps_quote(f'gatewayhostname:s:{name}')}")
        lines.append(f"$lines += {ps_quote(f'gatewayusagemethod:i:{int(usage)}')}")
    lines.append("Set-Content -LiteralPath $path -Value $lines -Encoding Unicode -Force")
    return FaultPlan("set_rd_gateway", {"name": name, "usage": usage}, "powershell",
                     _script(*lines),
                     note="Default.rdp of the WinRM user, who also runs mstsc in the lab")


RUNNER_ACTIONS = frozenset({"set_incomplete_connections"})

__all__ = ["BUILDERS", "LEGACY_OS", "MODERN_ONLY", "NOT_REAL", "RDP_KEY_PRELUDE",
           "FaultContext", "FaultPlan", "bind_args", "coverage", "plan"]
