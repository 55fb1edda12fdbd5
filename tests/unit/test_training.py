"""The trainer workflow's pieces without sockets: the CONNECT parser,
the .rdp file, derived hints, the shell REPL (a fake runner, and a fake WinRM session standing
in for a Vagrant VM, which cannot run here), the lab lock, seeded class plans."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest

from harness.scenario.catalog import load_catalog
from harness.training.connect import rdp_file_text, xfreerdp_args
from harness.training.errors import LabBusy, TrainingError
from harness.training.hints import hint
from harness.training.labdir import LabDir, check_name
from harness.training.lifecycle import parse_publish
from harness.training.publish import parse_connect
from harness.training.repl import LineResult, WinRMLineRunner, completer, run_repl

RECORD = {"name": "t", "publish_bound": ["127.0.0.1", 40001],
          "names": {"host": "rdhost.lab.test", "gateway": "rdgw.lab.test", "user": "alice",
                    "domain": "LAB", "client": "WS01"}}


@pytest.mark.parametrize("head,expected", [
    (b"CONNECT rdgw.lab.test:443 HTTP/1.1\r\nHost: rdgw.lab.test:443", ("rdgw.lab.test", 443)),
    (b"CONNECT [::1]:3389 HTTP/1.0", ("::1", 3389)),
])
def test_connect_request_parsed(head: bytes, expected: tuple[str, int]) -> None:
    assert parse_connect(head) == expected


@pytest.mark.parametrize("head", [b"GET / HTTP/1.1", b"CONNECT host HTTP/1.1",
                                  b"CONNECT host:99999 HTTP/1.1", b"CONNECT :443 HTTP/1.1",
                                  b"CONNECT host:443 SMTP"])
def test_bad_connect_requests_refused(head: bytes) -> None:
    with pytest.raises(ValueError):
        parse_connect(head)


def test_rdp_file_has_what_mstsc_needs_and_no_password() -> None:
    text = rdp_file_text(RECORD)
    lines = text.split("\r\n")
    assert "full address:s:rdhost.lab.test" in lines
    assert "gatewayhostname:s:rdgw.lab.test:40001" in lines
    assert "gatewayusagemethod:i:1" in lines and "username:s:LAB\\alice" in lines
    assert "password" not in text.lower().replace("prompt for credentials", "")
    direct = rdp_file_text({**RECORD, "names": {**RECORD["names"], "gateway": None}})
    assert "full address:s:rdhost.lab.test:40001" in direct.split("\r\n")
    args = xfreerdp_args(RECORD)
    assert args[:2] == ["xfreerdp", "/v:rdhost.lab.test"] and "/g:rdgw.lab.test" in args
    assert not any(a.startswith(("/p:", "/gp:", "/cert")) for a in args)


def test_hints_derived_when_the_fault_file_has_none() -> None:
    fault = load_catalog().faults["corrupt-machinekeys"]
    assert not fault.hints
    story = hint(fault, 1, "mstsc-win11: error code 0x904, extended error code 0x0")
    assert "0x904" in story and "MachineKeys" not in story  # the symptom, not the cause
    assert "MachineKeys" in hint(fault, 2, None)  # where to look: from its tags
    assert fault.title in hint(fault, 3, None, ["reset-machinekeys-acl"])
    assert "reset-machinekeys-acl" in hint(fault, 3, None, ["reset-machinekeys-acl"])


def test_a_fault_files_hints_win() -> None:
    fault = load_catalog().faults["expired-cert"]
    assert fault.hints["symptom"] in hint(fault, 1, "ignored")


class FakeWinRMProtocol:
    """Stands in for pywinrm's Protocol on a Vagrant VM (no Windows VM can run here): the lab's
    WinRMRunner drives it exactly as it would drive the real one."""

    def __init__(self) -> None:
        self.scripts: list[str] = []
        self.pending: dict[str, tuple[bytes, bytes, int]] = {}

    def open_shell(self, *args: object, **kwargs: object) -> str:
        return "shell-1"

    def run_command(self, shell_id: str, command: str, args: list[str]) -> str:
        import base64

        script = base64.b64decode(args[args.index("-EncodedCommand") + 1]).decode("utf-16-le")
        self.scripts.append(script)
        command_id = f"cmd-{len(self.scripts)}"
        if script.startswith("Get-Service"):
            self.pending[command_id] = (b"Running  TermService\r\n", b"", 0)
        else:
            self.pending[command_id] = (b"", b"The term 'Nope' is not recognized", 1)
        return command_id

    def get_command_output_raw(self, shell_id: str, command_id: str
                               ) -> tuple[bytes, bytes, int, bool]:
        out, err, code = self.pending[command_id]
        return out, err, code, True

    def cleanup_command(self, shell_id: str, command_id: str) -> None:
        pass

    def close_shell(self, shell_id: str, close_session: bool = True) -> None:
        pass


def test_shell_repl_over_winrm_with_a_fake_session() -> None:
    from types import SimpleNamespace

    from harness.lab.winrm_runner import WinRMRunner, WinRMTarget

    protocol = FakeWinRMProtocol()
    runner = WinRMRunner(WinRMTarget("host", "host", "10.213.2.2", "vagrant", "vagrant"),
                         session_factory=lambda *a, **k: SimpleNamespace(protocol=protocol))
    out = io.StringIO()
    code = run_repl(WinRMLineRunner(runner), "PS> ", ["Get-Service"],
                    stdin=io.StringIO("Get-Service TermService\nNope\n\nexit\nnever\n"),
                    stdout=out)
    assert code == 0
    assert protocol.scripts == ["Get-Service TermService", "Nope"]  # stops at exit
    assert "Running  TermService" in out.getvalue()
    assert "not recognized" in out.getvalue()


def test_repl_ends_at_end_of_input_and_prints_errors() -> None:
    class Runner:
        def run_line(self, line: str) -> LineResult:
            return LineResult([f"ran {line}"], "not emulated: x" if line == "x" else None)

    out = io.StringIO()
    assert run_repl(Runner(), "> ", [], stdin=io.StringIO("a\nx\n"), stdout=out) == 0
    assert "ran a" in out.getvalue() and "not emulated: x" in out.getvalue()


def test_tab_completion_of_cmdlets() -> None:
    from harness.training.shellsession import command_names

    names = command_names()
    assert "Get-WinEvent" in names and "Restart-Service" in names
    complete = completer(names)
    found = [complete("get-wine", i) for i in range(3)]
    assert found[0] == "Get-WinEvent" and found[1] is None


def test_lab_lock_excludes_a_second_command(tmp_path: Path) -> None:
    lab = LabDir(tmp_path / "lab")
    with lab.locked(create=True), pytest.raises(LabBusy), \
            LabDir(tmp_path / "lab").locked(wait=0.1):
        pass
    with lab.locked(wait=0.1):
        pass  # released


def test_password_file_is_owner_only(tmp_path: Path) -> None:
    lab = LabDir(tmp_path / "lab")
    lab.write_password("S3cret!pass")
    assert stat.S_IMODE(os.stat(lab.password_file).st_mode) == 0o600
    assert lab.read_password() == "S3cret!pass"


@pytest.mark.parametrize("bad", ["", "UPPER", "a/b", "x" * 41, "-lead"])
def test_bad_lab_names(bad: str) -> None:
    with pytest.raises(TrainingError):
        check_name(bad)


@pytest.mark.parametrize("bad", ["8080", "host:", "127.0.0.1:70000", ":80"])
def test_bad_publish(bad: str) -> None:
    with pytest.raises(TrainingError):
        parse_publish(bad)


def test_classroom_draws_only_faults_a_students_client_surely_sees() -> None:
    from harness.training.classroom import eligible_faults, surely_breaks

    faults = load_catalog().faults
    assert not surely_breaks(faults["nla-unsupported-client"], "mstsc-win11")  # another client
    assert not surely_breaks(faults["vpn-packet-loss@1pct"], "mstsc-win11")  # may not show
    assert surely_breaks(faults["expired-cert"], "mstsc-win11")
    drawn = eligible_faults("default", "loopback", None)
    assert "expired-cert" in drawn and "mtu-blackhole@1300" not in drawn  # needs netns
    assert eligible_faults("default", "loopback", ["nla-unsupported-client"]) == [
        "nla-unsupported-client"]  # --faults chooses any
