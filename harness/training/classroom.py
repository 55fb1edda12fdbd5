"""A classroom: N isolated labs under one directory, each with its own generated names, user
and password (Faker, seeded) and a hidden fault drawn from the catalog (seeded too: the same
seed gives the same class), a handout per student; grading and removal of the whole class.

<class dir>/class.json (0600, the trainer's: which fault each student has), and per student
<class dir>/student-NN/ (a lab directory, with handout.md).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from faker import Faker

from . import control
from .breaking import validate_fault
from .bringup import prepare, resolve_backend_here
from .errors import LabFailed, TrainingError
from .handout import render
from .hints import symptom_story
from .identity import generate
from .labdir import LabDir
from .lifecycle import remove, spawn, supervisor_alive, wait_ready
from .statusview import commands_since_break

MAX_STUDENTS = 200
BREAK_JOBS = 4
CLASS_FILE = "class.json"


def student_id(index: int) -> str:
    return f"student-{index + 1:02d}"


def eligible_faults(lab: str, backend: str, wanted: list[str] | None) -> list[str]:
    """The faults a student can get here: for this lab and backend, and sure to show (a hidden
    fault must reproduce); `--faults` chooses any."""
    from ..lab import registry
    from ..lab.definition import load_lab
    from ..scenario.catalog import load_catalog

    catalog = load_catalog()
    spec = load_lab(lab)
    record = {"lab": str(spec.path), "backend": backend}
    if wanted:
        return [validate_fault(fault_id, record).id for fault_id in wanted]
    out = []
    for fault in catalog.faults.values():
        if not fault.applies_to(spec.name):
            continue
        if any(registry.backend_class(backend).lacks(r) for r in fault.requires):
            continue
        if "gateway" in fault.requires and not spec.has_gateway:
            continue
        if not surely_breaks(fault, spec.profile):
            continue
        out.append(fault.id)
    if not out:
        raise TrainingError(f"no fault in the catalog fits the {spec.name} lab on {backend}")
    return sorted(out)


def surely_breaks(fault: Any, profile: str) -> bool:
    """Whether a student's own client sees the fault for sure: the user runs the lab's client
    program (not another one a student's xfreerdp cannot stand for), and the fault file expects
    a symptom for it with no "none" among the possibilities (a 1 % packet loss may not show)."""
    if any(step["action"] == "use_client_program" for step in fault.inject):
        return False
    expected = (fault.expected.get(profile) or {}).get("symptom")
    if expected is None:
        return False
    symptoms = expected if isinstance(expected, list) else [expected]
    return "none" not in symptoms


def plan(students: int, seed: int, faults: list[str]) -> list[dict[str, Any]]:
    """Who gets what: deterministic in (students, seed, faults)."""
    fake = Faker()
    fake.seed_instance(seed)
    rng = random.Random(seed)
    out = []
    for i in range(students):
        identity, password = generate(fake, i)
        out.append({"student": student_id(i), "identity": identity, "password": password,
                    "fault": rng.choice(faults)})
    return out


def create(class_dir: Path, *, students: int, seed: int, faults: list[str] | None, lab: str,
           backend: str, address: str = "127.0.0.1") -> dict[str, Any]:
    if not 1 <= students <= MAX_STUDENTS:
        raise TrainingError(f"--students {students}: use 1 to {MAX_STUDENTS}")
    if (class_dir / CLASS_FILE).exists():
        raise TrainingError(f"a class already exists in {class_dir}; `rdplab classroom down "
                            f"--dir {class_dir}` removes it")
    backend = resolve_backend_here(backend)
    fault_ids = eligible_faults(lab, backend, faults)
    seats = plan(students, seed, fault_ids)
    class_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    meta = {"seed": seed, "lab": lab, "backend": backend, "created": time.time(),
            "students": [{"student": s["student"], "fault": s["fault"],
                          "identity": s["identity"]} for s in seats]}
    _write_private(class_dir / CLASS_FILE, meta)
    started: list[tuple[LabDir, Any]] = []
    try:
        for seat in seats:
            labdir = LabDir(class_dir / seat["student"])
            record, password = prepare(labdir, name=seat["student"], lab=lab, backend=backend,
                                       publish=f"{address}:0", identity=seat["identity"],
                                       password=seat["password"], extra={"classroom": True})
            with labdir.locked(create=True):
                started.append((labdir, spawn(labdir, record, password)))
        for labdir, proc in started:
            wait_ready(labdir, proc)
        pairs = [(labdir, seat) for (labdir, _), seat in zip(started, seats, strict=True)]
        with ThreadPoolExecutor(max_workers=BREAK_JOBS) as pool:  # breaks mostly wait
            list(pool.map(lambda pair: _break_and_hand_out(*pair), pairs))
    except BaseException:
        for labdir, _ in started:
            with contextlib.suppress(Exception):
                remove(labdir)
        shutil.rmtree(class_dir / CLASS_FILE, ignore_errors=True)
        (class_dir / CLASS_FILE).unlink(missing_ok=True)
        raise
    return meta


def _break_and_hand_out(labdir: LabDir, seat: dict[str, Any]) -> None:
    with labdir.locked():
        control.call(labdir.socket_path, "break", fault=seat["fault"], hidden=True)
    record = labdir.read()
    story = _story(seat["fault"], record["fault"].get("client_shows"))
    (labdir.path / "handout.md").write_text(render(labdir, record, story, seat["student"]))


def _story(fault_id: str, client_shows: str | None) -> str:
    from ..scenario.catalog import load_catalog

    return symptom_story(load_catalog().faults[fault_id], client_shows)


def _write_private(path: Path, data: dict[str, Any]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1)


def read_class(class_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((class_dir / CLASS_FILE).read_text())
    except FileNotFoundError:
        raise TrainingError(f"no class in {class_dir} (`rdplab classroom create`)") from None


def grade_one(class_dir: Path, seat: dict[str, Any]) -> dict[str, Any]:
    labdir = LabDir(class_dir / seat["student"])
    row: dict[str, Any] = {"student": seat["student"], "fault": seat["fault"]}
    try:
        record = labdir.read()
    except TrainingError:
        return {**row, "verdict": "lab missing", "commands": [], "time_to_fix": None}
    commands = commands_since_break(labdir)
    ran = [c for c in commands if c["kind"] in ("exec", "shell")]
    row["commands"] = [c.get("line") or f"exec {c.get('file')}" for c in ran]
    row["nodes"] = sorted({c["node"] for c in ran if c.get("node")})
    if not supervisor_alive(record):
        return {**row, "verdict": "lab down", "time_to_fix": None}
    try:
        with labdir.locked():
            result = control.call(labdir.socket_path, "check", by="grade")
    except (TrainingError, LabFailed) as exc:
        return {**row, "verdict": f"error: {exc}", "time_to_fix": None}
    row.update(verdict=result["verdict"], stage=result["stage"], weakened=result["weakened"])
    broken_at = (record.get("fault") or {}).get("broken_at")
    fixed_at = None
    if result["verdict"] in ("fixed", "weakened") and broken_at:
        checks = [c["time"] for c in commands if c["kind"] == "check"
                  and c.get("by", "student") == "student" and c.get("verdict") != "broken"]
        fixed_at = checks[0] if checks else (ran[-1]["time"] if ran else None)
    row["time_to_fix"] = round(fixed_at - broken_at, 1) if fixed_at and broken_at else None
    if result["verdict"] != "broken" and not ran:
        row["note"] = ("nothing was run on the lab: the fault no longer shows by itself (e.g. "
                       "a clock skew smaller than the certificate's age by now)")
    return row


def grade(class_dir: Path, jobs: int = 2) -> list[dict[str, Any]]:
    meta = read_class(class_dir)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(lambda s: grade_one(class_dir, s), meta["students"]))


def down(class_dir: Path) -> int:
    meta = read_class(class_dir)
    count = 0
    for seat in meta["students"]:
        labdir = LabDir(class_dir / seat["student"])
        if labdir.path.exists():
            with labdir.locked():
                remove(labdir)
            count += 1
    (class_dir / CLASS_FILE).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        class_dir.rmdir()
    return count


# -- the commands --------------------------------------------------------------------------------

def create_command(args: argparse.Namespace) -> int:
    faults = [f.strip() for f in args.faults.split(",") if f.strip()] if args.faults else None
    t0 = time.monotonic()
    meta = create(args.dir, students=args.students, seed=args.seed, faults=faults, lab=args.lab,
                  backend=args.backend, address=args.publish_address)
    print(f"class of {len(meta['students'])} labs up in {args.dir} ({meta['backend']}, "
          f"{time.monotonic() - t0:.1f} s); handouts: {args.dir}/student-NN/handout.md")
    return 0


def _fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"


def grade_command(args: argparse.Namespace) -> int:
    rows = grade(args.dir)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"{'student':<12} {'fault':<34} {'result':<14} {'commands':>8} {'time to fix':>11}")
    for row in rows:
        result = {"fixed": "fixed", "broken": "still broken",
                  "weakened": "WEAKENED"}.get(row["verdict"], row["verdict"])
        if row.get("note"):
            result = "gone by itself"
        print(f"{row['student']:<12} {row['fault']:<34} {result:<14} {len(row['commands']):>8} "
              f"{_fmt_time(row.get('time_to_fix')):>11}")
        for item in row.get("weakened") or []:
            print(f"{'':<12}   weakened: {item}")
    fixed = sum(r["verdict"] in ("fixed", "weakened") and not r.get("note") for r in rows)
    print(f"{fixed}/{len(rows)} fixed")
    return 0


def down_command(args: argparse.Namespace) -> int:
    count = down(args.dir)
    print(f"class in {args.dir} removed ({count} labs)")
    return 0
