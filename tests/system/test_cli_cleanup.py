"""What a user sees: `rdplab down --all` after a kill -9, and Ctrl-C in the middle of a netns
matrix run, leave no namespace, veth, nft table, process or folder behind."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from harness.net import netns_available
from harness.net.state import STATE_ENV
from tests.system.test_lab_netns import CHILD, leftovers

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.netns, pytest.mark.xdist_group("netns-cleanup")]


@pytest.fixture(autouse=True)
def _need_netns() -> None:
    ok, why = netns_available()
    if not ok:
        pytest.skip(f"network namespaces unavailable: {why}")


def _env(state: Path) -> dict[str, str]:
    return {**os.environ, STATE_ENV: str(state), "PYTHONPATH": str(REPO)}


def _leave_nothing(proc: subprocess.Popen[Any], state: Path) -> None:
    """When the test failed with the run still going: end it and remove what it left (what
    `rdplab down --all` would do)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        subprocess.run([sys.executable, "-m", "harness.cli", "down", "--all"],
                       env=_env(state), capture_output=True, timeout=60)


def _our_namespaces(state: Path) -> list[str]:
    """Namespaces named in this test's state files (what a run recorded before creating)."""
    names = []
    for f in state.glob("*.json"):
        text = f.read_text()
        names += [w.strip('",') for w in text.split() if w.strip('",').startswith("rdplab-")]
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                            timeout=10).stdout
    return [n for n in set(names) if n in listed]


def test_rdplab_down_all_after_kill_9(tmp_path: Path) -> None:
    state = tmp_path / "state"
    proc = subprocess.Popen([sys.executable, "-c", CHILD], cwd=REPO, env=_env(state), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        assert ready, "the child lab did not start"
        lab_id, _, workdir = proc.stdout.readline().strip().partition(" ")
        assert leftovers(lab_id)
        proc.kill()
        proc.wait(timeout=10)
        assert leftovers(lab_id) and Path(workdir).is_dir()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
    down = subprocess.run([sys.executable, "-m", "harness.cli", "down", "--all"], env=_env(state),
                          capture_output=True, text=True, timeout=60)
    assert down.returncode == 0, down.stderr
    assert lab_id in down.stdout
    assert leftovers(lab_id) == [] and not Path(workdir).exists()
    again = subprocess.run([sys.executable, "-m", "harness.cli", "down", "--all"],
                           env=_env(state), capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "nothing to remove" in again.stdout


def test_ctrl_c_during_a_netns_matrix_leaves_nothing(tmp_path: Path) -> None:
    state = tmp_path / "state"
    out = tmp_path / "m.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "matrix", "--backend", "netns", "--jobs", "3",
         "--faults", "firewall-block-drop,mtu-blackhole,stale-dns", "--json", str(out)],
        cwd=REPO, env=_env(state), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not _our_namespaces(state):
            time.sleep(0.1)
        assert _our_namespaces(state), "no lab came up within 60 s"
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        proc.wait(timeout=60)
    finally:
        _leave_nothing(proc, state)
    assert proc.returncode != 0
    assert not out.exists()
    time.sleep(0.5)
    assert _our_namespaces(state) == []
    assert [json.loads(f.read_text()) for f in state.glob("*.json")] == []


def _processes_under(folder: Path) -> list[str]:
    """Live processes whose HOME or TMPDIR lies in `folder` (xfreerdp runs get a HOME there)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            env = (proc / "environ").read_bytes().split(b"\0")
            stat = (proc / "stat").read_text()
        except OSError:
            continue
        if stat.rsplit(")", 1)[-1].split()[0] == "Z":
            continue
        if any(e.startswith((b"HOME=" + bytes(folder), b"TMPDIR=" + bytes(folder)))
               for e in env):
            found.append(f"{proc.name} {(proc / 'comm').read_text().strip()}")
    return found


@pytest.mark.freerdp
def test_ctrl_c_with_many_workers_and_real_xfreerdp_ends_at_once(tmp_path: Path) -> None:
    """Ctrl-C reaches every worker of the group: they must not hang on the pool's queue (a
    worker interrupted there held its lock), and no xfreerdp may outlive the run."""
    if not os.path.exists("/usr/bin/xfreerdp"):
        pytest.skip("xfreerdp is not installed (freerdp2-x11)")
    state, tmp = tmp_path / "state", tmp_path / "tmp"
    tmp.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "matrix", "--backend", "netns", "--jobs", "12",
         "--with-xfreerdp", "--json", str(tmp_path / "m.json")],
        cwd=REPO, env={**_env(state), "TMPDIR": str(tmp)}, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and len(_processes_under(tmp)) < 16:
            time.sleep(0.2)  # the workers are in their cells, real xfreerdp runs among them
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=40)  # workers get SIGTERM, then SIGKILL after 15 s
    finally:
        _leave_nothing(proc, state)
    assert proc.returncode == 130
    deadline = time.monotonic() + 5  # `timeout -k 2` may still be reaping its xfreerdp
    while time.monotonic() < deadline and _processes_under(tmp):
        time.sleep(0.2)
    assert _processes_under(tmp) == []
    assert _our_namespaces(state) == []
    assert [json.loads(f.read_text()) for f in state.glob("*.json")] == []
