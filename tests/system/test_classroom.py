"""`rdplab classroom create|grade|down` with a few students: isolated labs with hidden faults,
seeded names, handouts without passwords or causes, a grade table, real xfreerdp into one lab."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from harness.scenario.catalog import load_catalog

from .training_helpers import Trainer, student_xfreerdp

pytestmark = [pytest.mark.freerdp, pytest.mark.xdist_group("training")]
FAULTS = "expired-cert,gateway-cert-expired,firewall-block-reject"


def test_classroom_create_grade_down(tmp_path: Path, xdisplay: str, xfreerdp: str) -> None:
    trainer = Trainer(tmp_path)
    class_dir = tmp_path / "class"
    made = trainer.run("classroom", "create", "--students", "3", "--seed", "7", "--faults",
                       FAULTS, "--backend", "loopback", "--dir", str(class_dir), timeout=300)
    try:
        assert made.returncode == 0, made.stderr
        meta = json.loads((class_dir / "class.json").read_text())
        assert stat.S_IMODE(os.stat(class_dir / "class.json").st_mode) == 0o600
        seats = meta["students"]
        assert [s["student"] for s in seats] == ["student-01", "student-02", "student-03"]
        assert len({s["identity"]["user"] for s in seats}) == 3  # each lab its own user
        assert {s["fault"] for s in seats} <= set(FAULTS.split(","))
        ports = set()
        for seat in seats:
            lab = class_dir / seat["student"]
            password = (lab / "password").read_text().strip()
            assert stat.S_IMODE(os.stat(lab / "password").st_mode) == 0o600
            handout = (lab / "handout.md").read_text()
            assert password not in handout
            fault = load_catalog().faults[seat["fault"]]
            assert seat["fault"] not in handout and fault.title not in handout  # not the cause
            assert seat["identity"]["user"] in handout and "xfreerdp" in handout
            for name in ("supervisor.log", "lab.json", "commands.jsonl"):
                assert password not in (lab / name).read_text()
            status = trainer.run("status", "--dir", str(lab), "--json")
            assert json.loads(status.stdout)["fault"] == "hidden"
            ports.add(json.loads(status.stdout)["endpoints"]["gateway"])
        assert len(ports) == 3  # one published port per lab

        # The student with a fixable fault connects with the handout's xfreerdp line, fixes
        # the lab with a script, connects again; the others stay broken.
        fixes = {"expired-cert": "renew-rdp-certificate",
                 "firewall-block-reject": "enable-rdp-firewall-rules"}
        fixer = next(s for s in seats if s["fault"] in fixes)  # seed 7 gives one (pinned)
        lab = class_dir / fixer["student"]
        status = json.loads(trainer.run("status", "--dir", str(lab), "--json").stdout)
        assert student_xfreerdp(status, xdisplay, tmp_path / "home").returncode != 0
        fix = fixes[fixer["fault"]]
        script = Path(__file__).resolve().parents[2] / "scenarios" / "remediations" / \
            f"{fix}.ps1"
        ran = trainer.run("exec", "host", str(script), "--dir", str(lab))
        assert ran.returncode == 0, ran.stderr
        assert student_xfreerdp(status, xdisplay, tmp_path / "home").returncode == 0

        graded = trainer.run("classroom", "grade", "--dir", str(class_dir), "--json")
        assert graded.returncode == 0, graded.stderr
        rows = {r["student"]: r for r in json.loads(graded.stdout)}
        for seat in seats:
            row = rows[seat["student"]]
            if seat is fixer:
                assert row["verdict"] == "fixed"
                assert row["commands"] == [f"exec {fix}.ps1"]
                assert row["time_to_fix"] is not None
            else:
                assert row["verdict"] == "broken" and row["commands"] == []
        table = trainer.run("classroom", "grade", "--dir", str(class_dir))
        assert "still broken" in table.stdout
        for seat in seats:
            assert (class_dir / seat["student"] / "password").read_text().strip() \
                not in table.stdout + graded.stdout
    finally:
        down = trainer.run("classroom", "down", "--dir", str(class_dir))
    assert down.returncode == 0, down.stderr
    assert not class_dir.exists()


def test_same_seed_same_class() -> None:
    from harness.training.classroom import plan

    faults = ["expired-cert", "clock-skew", "server-denied"]
    assert plan(5, 7, faults) == plan(5, 7, faults)
    assert plan(5, 7, faults) != plan(5, 8, faults)
