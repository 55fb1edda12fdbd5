"""The PowerShell the Vagrant lab runs on its VMs besides faults and remediations: reading the
served certificates, renewing the RDP certificate at first boot, the lab user, the clock, and
mstsc on the client VM (with the parsing of what its event log says)."""

from __future__ import annotations

import re
from typing import Any

from .. import vagrant_faults
from ..winrm_runner import encode_command, ps_quote

GATEWAY_CERTIFICATE_SCRIPT = (
    "$ErrorActionPreference = 'Stop'\n"
    + vagrant_faults.GATEWAY_PRELUDE.split("\n$info", 1)[0] + "\n"
    "[Convert]::ToBase64String($cert.RawData)\n"
)
SERVED_CERTIFICATE_SCRIPT = (
    "$ErrorActionPreference = 'Stop'\n"
    + vagrant_faults.RDP_KEY_PRELUDE.split("\n$info", 1)[0] + "\n"
    "[Convert]::ToBase64String($cert.RawData)\n"
)
# After the first boot with the lab's DNS suffix: a new self-signed certificate for NAME.<domain>
# (the box's was made for its build-time name).
RENEW_CERTIFICATE_SCRIPT = (
    "$ErrorActionPreference = 'Stop'\n"
    "Get-ChildItem -Path 'Cert:\\LocalMachine\\Remote Desktop' | Remove-Item\n"
    "Restart-Service -Name 'TermService' -Force\n"
)


# -- state checks after a remediation (testinfra, winrm backend) ---------------------------------


def mstsc_script(target: str, user: str, password: str, wait_seconds: int) -> str:
    """PowerShell for the client VM: mstsc connects to `target` in the interactive session of
    the WinRM user (autologon, set up by the Vagrantfile), through the RD Gateway the user's
    Default.rdp names, and the RDP client's event log
    (Microsoft-Windows-TerminalServices-RDPClient/Operational) is read back as EVENT lines."""
    inner = "\n".join((
        f"& cmdkey.exe {ps_quote('/generic:TERMSRV/' + target)} {ps_quote('/user:' + user)} "
        f"{ps_quote('/pass:' + password)} | Out-Null",
        "Start-Process -FilePath 'mstsc.exe' -ArgumentList 'C:\\rdplab\\mstsc\\attempt.rdp'",
    ))
    rdp_lines = ", ".join(ps_quote(line) for line in (
        f"full address:s:{target}", f"username:s:{user}", "prompt for credentials:i:0",
        "authentication level:i:2", "screen mode id:i:1", "desktopwidth:i:1024",
        "desktopheight:i:768"))
    return "\n".join((
        "$ErrorActionPreference = 'Stop'",
        "$log = 'Microsoft-Windows-TerminalServices-RDPClient/Operational'",
        "New-Item -ItemType Directory -Path 'C:\\rdplab\\mstsc' -Force | Out-Null",
        "$default = Join-Path ([Environment]::GetFolderPath('MyDocuments')) 'Default.rdp'",
        "$gateway = @()",
        "if (Test-Path -LiteralPath $default) { $gateway = @(Get-Content -LiteralPath $default "
        "| Where-Object { $_ -match '^gateway' }) }",
        f"Set-Content -LiteralPath 'C:\\rdplab\\mstsc\\attempt.rdp' -Encoding Unicode "
        f"-Value (@({rdp_lines}) + $gateway)",
        "Get-Process -Name mstsc -ErrorAction SilentlyContinue | Stop-Process -Force",
        "$start = Get-Date",
        "$action = New-ScheduledTaskAction -Execute 'powershell.exe' -Argument "
        f"'-NoProfile -WindowStyle Hidden -EncodedCommand {encode_command(inner)}'",
        "$principal = New-ScheduledTaskPrincipal -UserId $env:USERNAME -LogonType Interactive",
        "Register-ScheduledTask -TaskName 'rdplab-mstsc' -Action $action "
        "-Principal $principal -Force | Out-Null",
        "Start-ScheduledTask -TaskName 'rdplab-mstsc'",
        f"for ($i = 0; $i -lt {int(wait_seconds)}; $i++) {{",
        "  $done = Get-WinEvent -FilterHashtable @{LogName = $log; Id = 1026; "
        "StartTime = $start} -ErrorAction SilentlyContinue",
        "  if ($done) { break }",
        "  Start-Sleep -Seconds 1",
        "}",
        "Get-WinEvent -FilterHashtable @{LogName = $log; StartTime = $start} "
        "-ErrorAction SilentlyContinue | Sort-Object TimeCreated | ForEach-Object "
        "{ 'EVENT|{0}|{1}|{2}' -f $_.Id, $_.TimeCreated.ToUniversalTime().ToString('o'), "
        "($_.Message -replace '\\s+', ' ') }",
        "Get-Process -Name mstsc -ErrorAction SilentlyContinue | Stop-Process -Force",
        "Unregister-ScheduledTask -TaskName 'rdplab-mstsc' -Confirm:$false",
    )) + "\n"


def parse_mstsc_events(stdout: str) -> dict[str, Any]:
    events = []
    for line in stdout.splitlines():
        if line.startswith("EVENT|"):
            _, event_id, when, message = [*line.split("|", 3), "", "", ""][:4]
            events.append({"id": int(event_id) if event_id.isdigit() else event_id,
                           "time": when, "message": message})
    reason = None
    for event in events:
        if event["id"] == 1026:
            found = re.search(r"Reason\s*=\s*(\d+)", event["message"])
            if found:
                reason = int(found.group(1))
    return {"events": events, "disconnect_reason": reason,
            "disconnect_hex": None if reason is None else f"0x{reason:X}",
            "extended_reason": None,
            "outcome": "disconnected" if reason is not None
            else "no disconnect within the wait (connected, or a dialog is waiting)"}


def lab_user_script(user: str, password: str) -> str:
    return "\n".join((
        "$ErrorActionPreference = 'Stop'",
        f"$name = {ps_quote(user)}",
        f"$password = {ps_quote(password)}",
        "$computer = [ADSI]\"WinNT://$env:COMPUTERNAME,computer\"",
        "$existing = Get-WmiObject -Class Win32_UserAccount -Filter "
        "\"LocalAccount=True AND Name='$name'\"",
        "if ($existing) { $user = [ADSI]\"WinNT://$env:COMPUTERNAME/$name,user\" } "
        "else { $user = $computer.Create('User', $name) }",
        "$user.SetPassword($password)",
        "$user.SetInfo()",
        "$user.UserFlags.Value = $user.UserFlags.Value -bor 0x10000  # password never expires",
        "$user.SetInfo()",
        "$group = [ADSI]\"WinNT://$env:COMPUTERNAME/Remote Desktop Users,group\"",
        "if (-not $group.IsMember($user.ADsPath)) { $group.Add($user.ADsPath) }",
    )) + "\n"


def clock_script(epoch_ms: int) -> str:
    return (
        "$ErrorActionPreference = 'Stop'\n"
        "$before = (Get-Date).ToUniversalTime().ToString('o')\n"
        "$utc = (New-Object DateTime 1970, 1, 1, 0, 0, 0, ([DateTimeKind]::Utc))"
        f".AddMilliseconds({int(epoch_ms)})\n"
        "Set-Date -Date $utc.ToLocalTime() | Out-Null\n"
        "$before\n"
    )


__all__ = ["GATEWAY_CERTIFICATE_SCRIPT", "RENEW_CERTIFICATE_SCRIPT", "SERVED_CERTIFICATE_SCRIPT",
           "clock_script", "lab_user_script", "mstsc_script", "parse_mstsc_events"]
