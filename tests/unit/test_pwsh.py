"""The PowerShell/cmd subset interpreter: parsing, binding, pipelines, and the commands' effects
on the Windows model, including the ways PowerShell itself refuses a script."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.pwsh import NotEmulated, ScriptError, run_source
from harness.pwsh.parser import parse
from harness.windows import WindowsNode
from harness.windows.machinekeys import MACHINEKEYS
from harness.windows.registry import CREDSSP_PARAMETERS, RDP_TCP


@pytest.fixture(scope="module")
def parse_lab(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lab")


@pytest.fixture
def node(tmp_path: Path) -> WindowsNode:
    return WindowsNode("rdhost", "host", tmp_path, addresses=["10.0.0.2"])


@pytest.fixture(scope="module")
def shared(parse_lab: Path) -> WindowsNode:
    """A node for scripts that only print."""
    return WindowsNode("printer", "host", parse_lab)


def out(node: WindowsNode, text: str) -> list[str]:
    return run_source(text, node, "t.ps1").output


# -- syntax ------------------------------------------------------------------------------------

def test_quoting_variables_and_escapes(shared: WindowsNode) -> None:
    script = """
    $name = 'Term'
    Write-Output '$name stays'
    Write-Output "$name`Service is`t$($name)"
    Write-Output "say ""hi"" `$x" 'it''s'
    Write-Output “typographic $name”
    Write-Output $env:ProgramData\\Microsoft
    """
    assert out(shared, script) == ["$name stays", "TermService is\tTerm", 'say "hi" $x',
                                   "it's", "typographic Term", "C:\\ProgramData\\Microsoft"]


def test_comments_continuation_and_semicolons(shared: WindowsNode) -> None:
    script = """<# a block
    comment #>
    Write-Output one # trailing comment
    Write-Output `
        two; Write-Output three
    """
    assert out(shared, script) == ["one", "two", "three"]


def test_line_numbers_on_nodes() -> None:
    script = parse("# c\n\nRestart-Service TermService `\n  -Force\n$x = 1", "f.ps1")
    first, second = script.statements
    assert first.line == 3 and second.line == 5
    assert first.stages[0].text == "Restart-Service TermService `\n  -Force"


@settings(max_examples=40, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), max_size=30))
def test_single_quoted_strings_are_literal(shared: WindowsNode, text: str) -> None:
    quoted = "'" + "".join("''" if c in "'\u2018\u2019\u201a\u201b" else c for c in text) + "'"
    result = run_source(f"Write-Output {quoted}", shared, "h.ps1")
    assert result.output == [text]


@pytest.mark.parametrize(("script", "command", "line"), [
    ("Write-Output ok\nGet-NetTCPConnection -State Listen", "Get-NetTCPConnection", 2),
    ("Restart-Service TermService -Force -Include Term*", "Restart-Service -Include", 1),
    ("tscon 2 /dest:console", "tscon", 1),
    ("\n\nif ($true) { Restart-Service TermService }", "if", 3),
    ("Get-Service | Where-Object { $_.Status -eq 'Running' }", "{ }", 1),
    ("$x = 1 + 2", "+", 1),
    ("Get-ChildItem Cert:\\CurrentUser\\My", "certificate path Cert:\\CurrentUser\\My (only "
     "Cert:\\LocalMachine\\<store>)", 1),
    ("netsh wlan show profiles", "netsh wlan show profiles", 1),
    ("shutdown /s /t 0", "shutdown /s", 1),
])
def test_unknown_things_are_not_emulated_with_file_and_line(shared: WindowsNode, script: str,
                                                            command: str, line: int) -> None:
    with pytest.raises(NotEmulated) as info:
        run_source(script, shared, "fix.ps1")
    assert (info.value.file, info.value.line, info.value.command) == ("fix.ps1", line, command)


@pytest.mark.parametrize(("script", "line", "message"), [
    ("Write-Output ok\nRestart-Servce TermService", 2,
     "CommandNotFoundException: The term 'Restart-Servce' is not recognized"),
    ("Restart-Service -Nme TermService", 1, "ParameterBindingException: Restart-Service : "
     "A parameter cannot be found that matches parameter name 'Nme'."),
    ("Restart-Service TermService -Force -Turbo", 1, "parameter name 'Turbo'"),
    ("netshh winsock reset", 1, "The term 'netshh' is not recognized"),
    ("ipconfg.exe /flushdns", 1, "The term 'ipconfg.exe' is not recognized"),
])
def test_names_windows_does_not_have_are_windows_errors(shared: WindowsNode, script: str,
                                                        line: int, message: str) -> None:
    """A misspelt command or parameter fails as on Windows (the fix does not happen); only a
    real name the lab does not model is not emulated."""
    with pytest.raises(ScriptError) as info:
        run_source(script, shared, "fix.ps1")
    assert (info.value.file, info.value.line) == ("fix.ps1", line)
    assert message in info.value.message


def test_every_modelled_command_and_parameter_exists_on_windows() -> None:
    """The interpreter's own names come from the data file too: a typo in the model fails."""
    from harness.pwsh.commands import CMDLETS, NATIVES
    from harness.pwsh.windows_names import real_parameter, windows_names

    names = windows_names()
    for spec in CMDLETS.values():
        assert names.command(spec.name) is not None, spec.name
        for p in spec.params:
            assert real_parameter(spec.name, p.name) == p.name, (spec.name, p.name)
    for program in NATIVES:
        assert program in names.programs, program


# -- binding -----------------------------------------------------------------------------------

def test_named_positional_prefix_and_switch_parameters(node: WindowsNode) -> None:
    run_source(f'Set-ItemProperty "HKLM:\\{RDP_TCP[19:]}" UserAuthentication 0', node)
    assert node.host_policy().user_authentication is False
    run_source(f'Set-ItemProperty -Pat "HKLM:\\{RDP_TCP[19:]}" -Na SecurityLayer -Val 2', node)
    assert node.host_policy().security_layer == 2
    run_source("Stop-Service -Name TermService -Force:$true", node)
    assert not node.is_listening()


@pytest.mark.parametrize(("script", "message"), [
    ("Restart-Service -Name", "Missing an argument for parameter 'Name'"),
    ("Get-Service TermService W32Time", "A positional parameter cannot be found"),
    ("Set-ItemProperty -P HKLM:\\SOFTWARE -Name x -Value 1", "is ambiguous"),
    ("Restart-Service TermService", "because it has dependent services"),
    ("Set-ItemProperty -Path HKLM:\\SOFTWARE\\NoSuchKey -Name x -Value 1",
     "Cannot find path 'HKLM:\\SOFTWARE\\NoSuchKey'"),
    ("Set-ItemProperty -Path HKLM\\SOFTWARE -Name x -Value 1", "C:\\Windows\\System32\\HKLM"),
    ("icacls C:\\ProgramData /grant Everyone:(R)", "unquoted '('"),
    ("Get-Service NoSuchService", "Cannot find any service with service name"),
])
def test_what_powershell_refuses_is_a_script_error(node: WindowsNode, script: str,
                                                   message: str) -> None:
    with pytest.raises(ScriptError) as info:
        run_source(script, node, "fix.ps1")
    assert message in info.value.message and info.value.line == 1


def test_error_action_lets_the_script_go_on(node: WindowsNode) -> None:
    result = run_source("Restart-Service TermService -ErrorAction SilentlyContinue\n"
                        "Stop-Service TermService -Force", node)
    assert result.errors and "dependent services" in result.errors[0]
    assert not node.is_listening()


def test_what_if_changes_nothing(node: WindowsNode) -> None:
    result = run_source("Stop-Service TermService -Force -WhatIf", node)
    assert node.is_listening() and "What if" in result.effects[0].effects[0]


def test_script_parameters(node: WindowsNode) -> None:
    script = 'param([string]$Target = "default")\nWrite-Output "to $Target"'
    assert run_source(script, node).output == ["to default"]
    assert run_source(script, node, params={"target": "10.0.0.2"}).output == ["to 10.0.0.2"]
    with pytest.raises(ScriptError, match="Nope"):
        run_source(script, node, params={"Nope": 1})


# -- pipelines and commands --------------------------------------------------------------------

def test_pipelines_flow_objects(node: WindowsNode) -> None:
    old = node.certstore.rdp_certificate().thumbprint
    result = run_source('Get-ChildItem "Cert:\\LocalMachine\\Remote Desktop" | Remove-Item\n'
                        "Get-Service TermService | Restart-Service -Force\n"
                        "(Get-Service TermService).Status\n"
                        '$cert = Get-ChildItem "Cert:\\LocalMachine\\Remote Desktop"\n'
                        "Write-Output $cert.Thumbprint", node)
    new = node.certstore.rdp_certificate().thumbprint
    assert new != old and result.output == ["Running", new]
    lines = [(e.line, e.command) for e in result.effects]
    assert lines[:3] == [(1, 'Get-ChildItem "Cert:\\LocalMachine\\Remote Desktop"'),
                         (1, "Remove-Item"), (2, "Get-Service TermService")]
    restart = result.effects[3]
    assert restart.effects == ["restart TermService: done"]
    assert {c["component"] for c in restart.changes} >= {"services", "certstore",
                                                         "machinekeys"}


def test_sc_without_exe_is_set_content_in_powershell(node: WindowsNode) -> None:
    result = run_source("sc stop TermService", node)
    assert node.is_listening()
    assert node.fs.real("C:\\Windows\\System32\\stop").read_text() == "TermService\n"
    assert result.effects[0].effects == ["wrote C:\\Windows\\System32\\stop"]
    result = run_source("sc.exe stop TermService", node)
    assert result.last_exit_code == 1051 and node.is_listening()
    assert run_source("sc.exe config W32Time start=auto", node).last_exit_code == 1639
    run_source("sc.exe config W32Time start= disabled", node)
    assert node.services.get("W32Time").start_type == "Disabled"


def test_registry_cmdlets_and_new_item_force_recreates(node: WindowsNode) -> None:
    key = "HKLM:" + CREDSSP_PARAMETERS.removeprefix("HKEY_LOCAL_MACHINE")
    with pytest.raises(ScriptError, match="Cannot find path"):
        run_source(f'Set-ItemProperty -Path "{key}" -Name AllowEncryptionOracle -Value 2', node)
    run_source(f'New-Item -Path "{key}" -Force | Out-Null\n'
               f'New-ItemProperty "{key}" -Name AllowEncryptionOracle -Value 2 '
               "-PropertyType DWord\n"
               f'New-ItemProperty "{key}" -Name Other -Value x', node)
    assert node.registry.value(CREDSSP_PARAMETERS, "Other") == "x"
    with pytest.raises(ScriptError, match="already exists"):
        run_source(f'New-ItemProperty "{key}" -Name Other -Value y', node)
    run_source(f'New-Item -Path "{key}" -Force', node)
    assert node.registry.values(CREDSSP_PARAMETERS) == []
    run_source(f'Set-ItemProperty "{key}" -Name AllowEncryptionOracle -Value 1', node)
    assert str(node.registry.get(CREDSSP_PARAMETERS, "AllowEncryptionOracle").type) == "REG_DWORD"
    assert out(node, f'(Get-ItemProperty "{key}").AllowEncryptionOracle') == ["1"]
    run_source(f'Remove-ItemProperty "{key}" -Name AllowEncryptionOracle', node)
    assert node.host_policy().allow_encryption_oracle == 1


def test_reg_exe(node: WindowsNode) -> None:
    key = "HKLM" + CREDSSP_PARAMETERS.removeprefix("HKEY_LOCAL_MACHINE")
    result = run_source(f'reg add "{key}" /v AllowEncryptionOracle /t REG_DWORD /d 0x2 /f', node)
    assert result.last_exit_code == 0 and node.registry.value(key, "AllowEncryptionOracle") == 2
    result = run_source(f'reg add "{key}" /v AllowEncryptionOracle /t REG_DWORD /d 0', node)
    assert result.last_exit_code == 1 and "canceled" in result.output[-1]
    assert node.registry.value(key, "AllowEncryptionOracle") == 2
    result = run_source(f'reg query "{key}" /v AllowEncryptionOracle', node)
    assert result.output[-1].split() == ["AllowEncryptionOracle", "REG_DWORD", "0x2"]
    result = run_source(f'reg delete "{key}" /v AllowEncryptionOracle /f\n'
                        f'reg query "{key}" /v AllowEncryptionOracle\n'
                        "$code = $LASTEXITCODE\nWrite-Output \"code $code\"", node)
    assert result.output[-1] == "code 1" and result.errors
    with pytest.raises(NotEmulated):
        run_source('reg import fix.reg', node)


def test_icacls_acts_on_the_acl_model(node: WindowsNode) -> None:
    key = f"{MACHINEKEYS}\\{node.machinekeys.rdp_key_name}"
    run_source(f'icacls "{key}" /remove "NT AUTHORITY\\NETWORK SERVICE"', node)
    assert not node.acl.allows(key, "NETWORK SERVICE", "read")
    result = run_source(f'icacls "{MACHINEKEYS}\\f686*" /grant "*S-1-5-20:(R)" /Q', node)
    assert node.acl.allows(key, "NETWORK SERVICE", "read")
    assert result.output == ["Successfully processed 1 files; Failed processing 0 files"]
    run_source(f'icacls "{key}" /deny "Everyone:(R)"', node)
    assert not node.acl.allows(key, "NETWORK SERVICE", "read")
    assert run_source(f'icacls "{key}" /grant "Nobody:(R)"', node).last_exit_code == 1332
    assert run_source('icacls C:\\Nope /reset', node).last_exit_code == 2
    run_source(f'icacls "{MACHINEKEYS}" /reset /T /C /Q', node)
    assert node.acl.allows(key, "SYSTEM", "read")
    assert not node.acl.allows(key, "NETWORK SERVICE", "read")


def test_certutil_delstore(node: WindowsNode) -> None:
    cert = node.certstore.rdp_certificate()
    spaced = " ".join(cert.thumbprint[i:i + 2] for i in range(0, 40, 2))
    result = run_source(f'certutil -delstore "Remote Desktop" "{spaced}"', node)
    assert result.last_exit_code == 0 and node.certstore.rdp_certificate() is None
    result = run_source(f'certutil -delstore "Remote Desktop" {cert.serial}', node)
    assert result.last_exit_code != 0


def test_netsh_and_firewall_cmdlets(node: WindowsNode) -> None:
    node.firewall.set_group_enabled("Remote Desktop", False)
    result = run_source('netsh advfirewall firewall set rule group="remote desktop" new '
                        "enable=Yes", node)
    assert node.firewall_verdict(3389) == "allow" and "Updated 3 rule(s)." in result.output
    run_source('Disable-NetFirewallRule -DisplayName "Remote Desktop - User Mode (TCP-In)"', node)
    assert node.firewall_verdict(3389) == "drop"
    run_source("Enable-NetFirewallRule -Name RemoteDesktop-UserMode-In-TCP", node)
    run_source('New-NetFirewallRule -DisplayName "RDP 3390" -Direction Inbound -Protocol TCP '
               "-LocalPort 3390 -Action Allow", node)
    assert node.firewall_verdict(3390) == "allow"
    with pytest.raises(ScriptError, match="No MSFT_NetFirewallRule"):
        run_source('Enable-NetFirewallRule -DisplayGroup "Remote Desktop Typo"', node)
    result = run_source('netsh interface ipv4 set subinterface "VPN" mtu=1400 store=persistent',
                        node)
    assert result.last_exit_code == 1 and result.output == ["Element not found."]


def test_native_failures_do_not_stop_the_script(tmp_path: Path) -> None:
    client = WindowsNode("client1", "client", tmp_path)  # W32Time is stopped on the client
    result = run_source("w32tm /resync\nWrite-Output after", client)
    assert result.output[-1] == "after" and result.last_exit_code == 1  # $LASTEXITCODE stays
    assert result.effects[0].exit_code == 1 and "0x80070426" in result.effects[0].error
    assert result.errors == ["<script>:1: w32tm exited with 1"]


def test_restart_ends_the_script(node: WindowsNode) -> None:
    result = run_source("shutdown /r /t 0\nStop-Service TermService -Force", node)
    assert result.rebooted and node.boot_count == 1 and node.is_listening()
    assert len(result.effects) == 1


def test_exit_code(shared: WindowsNode) -> None:
    result = run_source("Write-Output a\nexit 3\nWrite-Output b", shared)
    assert result.output == ["a"] and result.exit_code == 3


def test_collecting_cmdlets_see_the_whole_stream(node: WindowsNode) -> None:
    result = run_source('Get-NetFirewallRule -DisplayGroup "Remote Desktop" | '
                        "Select-Object -First 1 -ExpandProperty Name", node)
    assert result.output == ["RemoteDesktop-UserMode-In-TCP"]
    assert [e.command for e in result.effects][-1] == "Select-Object -First 1 -ExpandProperty Name"
