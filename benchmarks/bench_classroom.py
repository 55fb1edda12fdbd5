"""A classroom on this machine: time to create N labs (each a supervisor process with its own
lab, published port and hidden fault), median supervisor RSS (memory per lab), time to grade
the class, and whether the same seed gives the same faults and names.

    python benchmarks/bench_classroom.py [--students 30] [--seed 7] [--backend auto]

Runs the real CLI (`rdplab classroom create|grade|down`) in a temporary class directory and
removes the class at the end, also on failure.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from harness.training.bringup import resolve_backend_here  # noqa: E402
from harness.training.classroom import eligible_faults, plan  # noqa: E402


def rdplab(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], env=env, text=True,
                          capture_output=True, timeout=timeout, check=False)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--students", type=int, default=30)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--lab", default="default")
    args = ap.parse_args()
    backend = resolve_backend_here(args.backend)

    faults = eligible_faults(args.lab, backend, None)
    first = plan(args.students, args.seed, faults)
    again = plan(args.students, args.seed, faults)
    other = plan(args.students, args.seed + 1, faults)
    same = first == again
    differs = first != other

    with tempfile.TemporaryDirectory(prefix="rdplab-bench-class-") as tmp:
        class_dir = Path(tmp) / "class"
        try:
            t0 = time.perf_counter()
            made = rdplab("classroom", "create", "--students", str(args.students), "--seed",
                          str(args.seed), "--backend", backend, "--lab", args.lab,
                          "--dir", str(class_dir))
            create_s = time.perf_counter() - t0
            if made.returncode != 0:
                print(made.stdout, made.stderr, file=sys.stderr)
                return 1
            meta = json.loads((class_dir / "class.json").read_text())
            created_same = [(s["fault"], s["identity"]) for s in meta["students"]] == \
                [(s["fault"], s["identity"]) for s in first]
            rss = []
            for seat in meta["students"]:
                record = json.loads((class_dir / seat["student"] / "lab.json").read_text())
                rss.append(rss_kib(int(record["supervisor"]["pid"])))
            t0 = time.perf_counter()
            graded = rdplab("classroom", "grade", "--dir", str(class_dir), "--json")
            grade_s = time.perf_counter() - t0
            rows = json.loads(graded.stdout) if graded.returncode == 0 else []
        finally:
            rdplab("classroom", "down", "--dir", str(class_dir))

    print(f"classroom of {args.students} labs, seed {args.seed}, backend {backend}")
    print(f"  create:                {create_s:8.1f} s ({create_s / args.students:.2f} s per lab)")
    print(f"  supervisor RSS median: {statistics.median(rss) / 1024:8.1f} MiB "
          f"(max {max(rss) / 1024:.1f} MiB, total {sum(rss) / 1024:.0f} MiB)")
    print(f"  grade:                 {grade_s:8.1f} s ({len(rows)} labs checked, "
          f"{sum(r['verdict'] == 'broken' for r in rows)} still broken as expected)")
    print(f"  faults drawn:          {sorted({s['fault'] for s in first})}")
    print(f"  same seed, same class: {same and created_same}; another seed differs: {differs}")
    return 0 if same and created_same and differs else 1


if __name__ == "__main__":
    sys.exit(main())
