"""The shell a student types into, on a running loopback lab: the node's events after a failed
connection, variables kept from line to line, a fix that the next probe sees, and the clear
"not emulated" / CommandNotFound answers."""

from __future__ import annotations

from harness.lab.definition import load_lab
from harness.lab.factory import LabHandle
from harness.matrix.aftermath import capture
from harness.scenario.actions import apply_step
from harness.scenario.catalog import load_catalog
from harness.training.shellsession import ShellSession
from harness.training.verdict import check_lab


def test_events_then_fix_typed_line_by_line() -> None:
    with LabHandle(load_lab("default"), "loopback") as lab:
        healthy = capture(lab)
        for step in load_catalog().faults["corrupt-machinekeys"].inject:
            apply_step(lab, step)
        lab.sync()
        injected = capture(lab)
        broken = check_lab(lab, healthy, injected)
        assert broken["exit"] == 1 and broken["stage"] == "tls"
        shell = ShellSession(lab.host)
        events = shell.run_line("Get-EventLog -LogName System -InstanceId 36870")
        assert events["error"] is None and events["output"]
        assert all("36870" in line and "Schannel" in line for line in events["output"])
        assert shell.run_line("Get-WinEvent -LogName System -MaxEvents 1")["output"]
        missing = shell.run_line("Get-NetAdapterBinding")
        assert missing["not_emulated"] and "not emulated" in missing["error"]
        typo = shell.run_line("Restart-Servce TermService")
        assert not typo["not_emulated"] and "not recognized" in typo["error"]
        script = (load_catalog().remediations["reset-machinekeys-acl"].script
                  .read_text(encoding="utf-8-sig"))
        for line in script.splitlines():
            result = shell.run_line(line)
            assert result["error"] is None, (line, result)
        lab.sync()
        fixed = check_lab(lab, healthy, injected)
        assert fixed["exit"] == 0, fixed
