"""The pytest plugin as a user uses it: their own test file with the `rdp_lab` fixtures (a fix
passes, a wrong fix fails, labs are torn down even then), and the matrix cells of a scenario
folder of any name, failing when an outcome differs from the pinned one."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def plugin_args() -> list[str]:
    """The entry point loads the plugin once the package is installed; before, `-p` does."""
    installed = any(ep.value == "harness.pytest_plugin" for ep in entry_points(group="pytest11"))
    return [] if installed else ["-p", "harness.pytest_plugin"]


def pytest_run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                           "-p", "no:randomly", *plugin_args(), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


USER_TESTS = '''
import json
from pathlib import Path

WORKDIRS = Path(__file__).with_name("workdirs.json")


def remember(lab):
    seen = json.loads(WORKDIRS.read_text()) if WORKDIRS.exists() else []
    WORKDIRS.write_text(json.dumps(seen + [str(lab.lab.workdir)]))


def test_restart_fixes_an_expired_certificate(rdp_lab):
    remember(rdp_lab)
    assert rdp_lab.probe().symptom is None
    rdp_lab.inject("expired-cert")
    broken = rdp_lab.probe()
    assert broken.symptom == "tls/cert_prompt:10"
    assert broken.codes["mstsc-win11"]["prompt"]
    out = rdp_lab.run("host", "Restart-Service -Name TermService -Force")
    assert out.effects and not out.errors
    fixed = rdp_lab.probe()
    assert fixed.ok and fixed.symptom is None


def test_resyncing_the_clock_fixes_it_too(rdp_lab):
    remember(rdp_lab)
    rdp_lab.inject("expired-cert")
    rdp_lab.run("host", "w32tm /resync /force")
    assert rdp_lab.probe().symptom is None, rdp_lab.probe().symptom


def test_factory_and_shell(rdp_lab_factory):
    direct = rdp_lab_factory()
    legacy = rdp_lab_factory(lab="legacy")
    remember(direct)
    remember(legacy)
    assert direct.spec.name == "direct" and legacy.spec.name == "legacy"
    host = direct.shell("host")
    host("Stop-Service -Name TermService -Force")
    assert direct.probe().symptom == "tcp/refused"
    assert direct.probe("freerdp2").codes["freerdp2"]["exit"]
    assert legacy.probe().ok
'''


def test_a_users_lab_tests_pass_and_fail_and_labs_are_torn_down(tmp_path: Path) -> None:
    (tmp_path / "test_my_lab.py").write_text(USER_TESTS)
    run = pytest_run(tmp_path, "--rdplab-lab", "direct", "--rdplab-backend", "loopback",
                     "test_my_lab.py")
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert "1 failed, 2 passed" in out, out
    assert "FAILED test_my_lab.py::test_resyncing_the_clock_fixes_it_too" in out
    assert "tls/cert_prompt:10" in out  # the wrong fix's failure says what is left
    workdirs = json.loads((tmp_path / "workdirs.json").read_text())
    assert len(workdirs) == 4
    assert not [w for w in workdirs if Path(w).exists()], "a lab was not torn down"


def _golden(tmp_path: Path, outcome: str) -> Path:
    gold = tmp_path / "gold"
    gold.mkdir(exist_ok=True)
    (gold / "direct-loopback.json").write_text(json.dumps({
        "lab": "direct", "backend": "loopback", "faults": ["expired-cert"],
        "remediations": ["renew-rdp-certificate", "resync-clock"],
        "cells": {"expired-cert": {"renew-rdp-certificate": outcome,
                                   "resync-clock": "not-fixed"}}}))
    return gold


def test_cells_of_any_folder_fail_when_they_differ_from_the_pin(tmp_path: Path) -> None:
    faults = tmp_path / "my-faults"
    shutil.copytree(REPO / "scenarios", faults)
    (faults / "conftest.py").unlink()
    args = ("--rdplab-scenarios", str(faults), "--rdplab-lab", "direct", "--rdplab-backend",
            "loopback", "-k", "expired-cert and (renew-rdp or resync) and not offset", "-rs")
    run = pytest_run(tmp_path, *args, "--rdplab-golden", str(_golden(tmp_path, "fixed")))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 passed" in run.stdout
    # The script stops working: the pinned "fixed" cell fails and says how to update the pin.
    (faults / "remediations" / "renew-rdp-certificate.ps1").write_text("")
    run = pytest_run(tmp_path, *args, "--rdplab-golden", str(tmp_path / "gold"))
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert "1 failed, 1 passed" in out
    assert "outcome changed: expired-cert × renew-rdp-certificate: pinned fixed, ran not-fixed" \
        in out
    assert "rdplab matrix --update-golden" in out
