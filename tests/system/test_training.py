"""Trainers' workflow end to end: `rdplab up`, real xfreerdp as the student's client with the
args `status --json` gives, `break`, fixes by `exec` and by typing into `shell` (a pty),
`check`, hidden faults, `reset`, `down` after kill -9 of the supervisor; on loopback and netns."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.net import netns_available
from harness.net.namespaces import list_netns

from .training_helpers import PtyShell, Trainer, student_xfreerdp

NETNS_OK, NETNS_WHY = netns_available()
BACKENDS = [
    "loopback",
    pytest.param("netns", marks=[pytest.mark.netns, pytest.mark.skipif(
        not NETNS_OK, reason=f"network namespaces unavailable: {NETNS_WHY}")]),
]
FIX_SCRIPT = ('# renew the RDP certificate: delete it, TermService makes a new one at start\n'
              'Get-ChildItem -Path "Cert:\\LocalMachine\\Remote Desktop" | Remove-Item\n'
              'Restart-Service -Name TermService -Force\n')
pytestmark = [pytest.mark.freerdp, pytest.mark.xdist_group("training")]


@pytest.fixture
def trainer(tmp_path: Path) -> Iterator[Trainer]:
    t = Trainer(tmp_path)
    try:
        yield t
    finally:
        t.down_all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_break_fix_by_exec_and_by_shell_then_check(trainer: Trainer, backend: str,
                                                   xdisplay: str, xfreerdp: str,
                                                   tmp_path: Path) -> None:
    up = trainer.run("up", "--backend", backend, "--name", "t1")
    assert up.returncode == 0, up.stderr
    status = trainer.status("t1")
    assert set(status) >= {"name", "backend", "state", "fault", "endpoints", "user",
                           "password_file", "connect"}
    assert status["backend"] == backend and status["state"] == "running"
    assert status["fault"] is None
    assert status["endpoints"]["gateway"].startswith("127.0.0.1:")
    assert set(status["connect"]) == {"xfreerdp", "env", "rdp_file"}
    password = Path(status["password_file"]).read_text().strip()
    assert stat.S_IMODE(os.stat(status["password_file"]).st_mode) == 0o600
    assert not any(password in a for a in status["connect"]["xfreerdp"])
    assert not any("/cert" in a for a in status["connect"]["xfreerdp"])
    assert password not in up.stdout + json.dumps(status)
    rdp = Path(status["connect"]["rdp_file"]).read_text()
    for key in ("full address:s:", "gatewayhostname:s:", "gatewayusagemethod:i:1",
                "username:s:"):
        assert key in rdp
    home = tmp_path / "student-home"

    healthy = student_xfreerdp(status, xdisplay, home)
    assert healthy.returncode == 0, healthy.stdout[-2000:]

    broken = trainer.run("break", "expired-cert", "--name", "t1")
    assert broken.returncode == 0, broken.stderr
    seen = student_xfreerdp(status, xdisplay, home)
    assert seen.returncode == 143, seen.stdout[-2000:]  # the expired certificate is refused
    check = trainer.run("check", "--name", "t1", "--json", timeout=60)
    assert check.returncode == 1, check.stdout
    assert json.loads(check.stdout)["stage"] == "tls"

    script = tmp_path / "fix.ps1"
    script.write_text(FIX_SCRIPT)
    ran = trainer.run("exec", "host", str(script), "--name", "t1")
    assert ran.returncode == 0, ran.stderr
    assert student_xfreerdp(status, xdisplay, home).returncode == 0
    assert trainer.run("check", "--name", "t1").returncode == 0

    reset = trainer.run("reset", "--name", "t1")
    assert reset.returncode == 0, reset.stderr
    assert student_xfreerdp(status, xdisplay, home).returncode == 143
    shell = PtyShell(trainer, "host", "t1")
    try:
        assert "not emulated" in shell.type("Get-NetAdapterBinding")
        shell.type('$store = "Cert:\\LocalMachine\\Remote Desktop"')
        shell.type("Get-ChildItem -Path $store | Remove-Item")
        shell.type("Restart-Service -Name TermService -Force")
        events = shell.type("Get-EventLog System -Newest 5")
        assert "7036" in events and "Service Control Manager" in events, events
    finally:
        assert shell.close() == 0, shell.transcript
    assert student_xfreerdp(status, xdisplay, home).returncode == 0
    assert trainer.run("check", "--name", "t1").returncode == 0

    kinds = [(c["kind"], c.get("line") or c.get("file")) for c in trainer.status("t1")["commands"]]
    assert ("exec", "fix.ps1") in kinds
    assert ("shell", "Restart-Service -Name TermService -Force") in kinds
    down = trainer.run("down", "--name", "t1")
    assert down.returncode == 0, down.stderr
    assert not trainer.labdir("t1").exists()


def test_hidden_fault_is_named_nowhere_a_student_looks(trainer: Trainer) -> None:
    assert trainer.run("up", "--backend", "loopback", "--name", "h").returncode == 0
    hidden = trainer.run("break", "gateway-cert-expired", "--name", "h", "--hidden")
    assert hidden.returncode == 0, hidden.stderr
    status = trainer.run("status", "--name", "h")
    for out in (hidden.stdout, status.stdout, json.dumps(trainer.status("h"))):
        assert "gateway-cert" not in out and "expired" not in out.lower()
    assert trainer.status("h")["fault"] == "hidden"
    assert trainer.record("h")["fault"]["id"] == "gateway-cert-expired"  # the trainer's record
    assert trainer.run("check", "--name", "h").returncode == 1
    hint = trainer.run("hint", "--name", "h", "--level", "2")
    assert hint.returncode == 0 and "RD Gateway" in hint.stdout


def test_weakened_fix_exits_3_naming_what(trainer: Trainer, tmp_path: Path) -> None:
    assert trainer.run("up", "--backend", "loopback", "--lab", "direct", "--name", "w"
                       ).returncode == 0
    assert trainer.run("break", "credssp-oracle-client-enforces", "--name", "w").returncode == 0
    script = tmp_path / "vulnerable.ps1"
    script.write_text((Path(__file__).resolve().parents[2] / "scenarios" / "remediations"
                       / "client-allow-vulnerable-credssp.ps1").read_text())
    assert trainer.run("exec", "client", str(script), "--name", "w").returncode == 0
    check = trainer.run("check", "--name", "w", "--json")
    assert check.returncode == 3, check.stdout
    assert any("AllowEncryptionOracle" in w for w in json.loads(check.stdout)["weakened"])


def test_bad_input_exits_2_and_changes_nothing(trainer: Trainer) -> None:
    assert trainer.run("check", "--name", "nothere").returncode == 2
    assert trainer.run("up", "--backend", "loopback", "--name", "b").returncode == 0
    taken = trainer.run("up", "--backend", "loopback", "--name", "b")
    assert taken.returncode == 2 and "already up" in taken.stderr
    unknown = trainer.run("break", "no-such-fault", "--name", "b")
    assert unknown.returncode == 2 and "unknown fault" in unknown.stderr
    needs = trainer.run("break", "mtu-blackhole@1300", "--name", "b")
    assert needs.returncode == 2 and "netns" in needs.stderr
    no_variant = trainer.run("break", "clock-skew@1minute", "--name", "b")
    assert no_variant.returncode == 2 and "3min" in no_variant.stderr  # lists the variants
    assert trainer.status("b")["fault"] is None
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        used = trainer.run("up", "--backend", "loopback", "--name", "p",
                           "--publish", f"127.0.0.1:{port}")
    assert used.returncode == 2 and "in use" in used.stderr
    assert not trainer.labdir("p").exists()
    assert trainer.run("shell", "nosuchnode", "--name", "b").returncode == 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_down_after_kill_9_of_the_supervisor(trainer: Trainer, backend: str) -> None:
    assert trainer.run("up", "--backend", backend, "--name", "k").returncode == 0
    record = trainer.record("k")
    pid = record["supervisor"]["pid"]
    ours = _lab_namespaces(trainer.labdir("k"))  # only this lab's: others run tests too
    assert backend != "netns" or (ours and ours <= set(list_netns("rdplab-")))
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert trainer.run("check", "--name", "k").returncode == 2  # not up: says so
    assert "supervisor gone" in trainer.run("status", "--name", "k").stdout
    down = trainer.run("down", "--name", "k")
    assert down.returncode == 0, down.stderr
    assert not trainer.labdir("k").exists()
    if backend == "netns":
        assert not (ours & set(list_netns("rdplab-")))


def _lab_namespaces(labdir: Path) -> set[str]:
    """The namespaces the lab's netns state files record."""
    names = set()
    for state in (labdir / "net").glob("*.json"):
        resources = json.loads(state.read_text())["resources"]
        names |= {r["name"] for r in resources if r.get("kind") == "netns"}
    return names


def test_down_all_removes_dead_labs_and_leaves_running_ones(trainer: Trainer) -> None:
    for name in ("alive", "dead"):
        assert trainer.run("up", "--backend", "loopback", "--name", name).returncode == 0
    pid = trainer.record("dead")["supervisor"]["pid"]
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    swept = trainer.run("down", "--all", "--keep-live")
    assert swept.returncode == 0, swept.stderr
    assert "left running: lab alive" in swept.stdout
    assert not trainer.labdir("dead").exists() and trainer.labdir("alive").exists()
    assert trainer.run("check", "--name", "alive").returncode == 0
    forced = trainer.run("down", "--all", "--force", "--keep-live")
    assert forced.returncode == 0 and not trainer.labdir("alive").exists()
