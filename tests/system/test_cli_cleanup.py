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
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            # The test failed: still leave nothing behind (what `rdplab down --all` would do).
            subprocess.run([sys.executable, "-m", "harness.cli", "down", "--all"],
                           env=_env(state), capture_output=True, timeout=60)
    assert proc.returncode != 0
    assert not out.exists()
    time.sleep(0.5)
    assert _our_namespaces(state) == []
    assert [json.loads(f.read_text()) for f in state.glob("*.json")] == []
