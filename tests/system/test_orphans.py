"""No orphans (issue 10), through the CLI: a kill -9 of `rdplab matrix` ends its workers; a run
with --with-xfreerdp leaves no Xvfb; `rdplab down --all` leaves another user's running matrix
alone (--force for the rest) and removes what a kill -9 during lab creation left, the work
directory holding the lab CA's key included (recorded in a state file before it is made)."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.net.state import STATE_ENV

REPO = Path(__file__).resolve().parents[2]
RDPLAB = [sys.executable, "-m", "harness.cli"]
pytestmark = [pytest.mark.timeout(300), pytest.mark.xdist_group("orphans")]


def _env(tmp: Path) -> dict[str, str]:
    (tmp / "tmp").mkdir(exist_ok=True)
    return {**os.environ, STATE_ENV: str(tmp / "state"), "TMPDIR": str(tmp / "tmp"),
            "PYTHONPATH": str(REPO)}


def children(pid: int) -> set[int]:
    out = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out.add(int(entry))
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_until(check, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return bool(check())


def matrix(tmp: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*RDPLAB, "matrix", "--backend", "loopback", *args], cwd=REPO,
                            env=_env(tmp), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)


def down_all(tmp: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RDPLAB, "down", "--all", *extra], env=_env(tmp), capture_output=True,
                          text=True, timeout=120)


def leftovers(tmp: Path) -> list[str]:
    """Lab folders left in TMPDIR (the run's journal folder is its output, not a leftover)."""
    return sorted(p.name for p in (tmp / "tmp").glob("rdplab-*")
                  if not p.name.startswith("rdplab-journals-"))


def test_kill_9_of_a_matrix_ends_its_workers(tmp_path: Path) -> None:
    proc = matrix(tmp_path, "--jobs", "3")
    try:
        assert wait_until(lambda: len(children(proc.pid)) >= 3, 60), "no workers started"
        workers = children(proc.pid)
        time.sleep(1.5)  # labs are being built and run
        proc.kill()
        proc.wait(timeout=10)
        assert wait_until(lambda: not any(alive(p) for p in workers), 20), \
            f"workers outlived their parent: {[p for p in workers if alive(p)]}"
    finally:
        if proc.poll() is None:
            proc.kill()
    down = down_all(tmp_path)
    assert down.returncode == 0, down.stderr
    assert leftovers(tmp_path) == []
    assert list((tmp_path / "state").glob("*.json")) == []


def test_down_all_leaves_a_running_matrix_alone(tmp_path: Path) -> None:
    out = tmp_path / "m.json"
    proc = matrix(tmp_path, "--jobs", "2", "--json", str(out), "--faults",
                  "expired-cert,server-denied,clock-skew,corrupt-machinekeys")
    try:
        assert wait_until(lambda: list((tmp_path / "state").glob("*.json")), 60)
        down = down_all(tmp_path)
        assert down.returncode == 0, down.stderr
        assert "left running: matrix lab" in down.stdout
        code = proc.wait(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 0, proc.stderr.read() if proc.stderr else ""
    cells = json.loads(out.read_text())["cells"]
    assert cells and not [c for c in cells if c["outcome"] == "lab-error"]


def test_down_all_force_removes_running_labs(tmp_path: Path) -> None:
    proc = matrix(tmp_path, "--jobs", "1")
    try:
        assert wait_until(lambda: list((tmp_path / "state").glob("*.json")), 60)
        down = down_all(tmp_path, "--force")
        assert down.returncode == 0 and "removed" in down.stdout
    finally:
        proc.kill()
        proc.wait(timeout=10)
    down_all(tmp_path, "--force")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_interrupted_lab_creation_leaves_no_ca_key(sig: signal.Signals, tmp_path: Path) -> None:
    rng = random.Random(int(sig))
    for _ in range(6):
        proc = matrix(tmp_path, "--jobs", "1", "--faults", "expired-cert")
        try:
            assert wait_until(lambda: (tmp_path / "state").exists(), 30)
            time.sleep(rng.uniform(0.0, 0.6))
            proc.send_signal(sig)
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        if sig == signal.SIGINT:  # Ctrl-C: the run cleans up itself
            assert leftovers(tmp_path) == [], proc.stderr.read() if proc.stderr else ""
    down = down_all(tmp_path)
    assert down.returncode == 0, down.stderr
    assert leftovers(tmp_path) == []


@pytest.mark.skipif(not (shutil.which("xfreerdp") and shutil.which("Xvfb")),
                    reason="needs xfreerdp and Xvfb (freerdp2-x11, xvfb)")
def test_with_xfreerdp_leaves_no_xvfb(tmp_path: Path) -> None:
    def xvfbs() -> set[int]:
        return {int(p) for p in os.listdir("/proc") if p.isdigit()
                and Path(f"/proc/{p}/comm").exists()
                and _comm(int(p)) == "Xvfb"}

    before = xvfbs()
    proc = matrix(tmp_path, "--jobs", "2", "--with-xfreerdp", "--faults",
                  "expired-cert,server-denied", "--remediations",
                  "restart-rdp-service,raise-connection-limit")
    code = proc.wait(timeout=240)
    assert code == 0, proc.stderr.read() if proc.stderr else ""
    assert wait_until(lambda: not (xvfbs() - before), 10), f"Xvfb left: {xvfbs() - before}"


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def test_kill_9_of_rdplab_host_leaves_no_key_after_down_all(tmp_path: Path) -> None:
    env = {**_env(tmp_path), "RDPLAB_PW": "x"}
    proc = subprocess.Popen([*RDPLAB, "host", "--listen", "127.0.0.1:0", "--user", "alice",
                             "--password-env", "RDPLAB_PW"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().startswith("listening on")
        keys = list((tmp_path / "tmp").glob("rdplab-host-*/rdp.key"))
        assert keys, "rdplab host keeps its key in a recorded rdplab-host-* folder"
        proc.kill()
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert leftovers(tmp_path)  # the kill left it ...
    down = down_all(tmp_path)
    assert down.returncode == 0, down.stderr
    assert leftovers(tmp_path) == []  # ... and down --all removed it
