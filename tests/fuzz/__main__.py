"""`python -m tests.fuzz --target NAME|all --seconds N [--report FILE]`, or `--seed`.

With atheris installed (`pip install -e '.[fuzz]'`) each target runs coverage-guided under
libFuzzer, in its own process (-timeout=5 s per input and -rss_limit_mb=1024 catch hangs and
memory growth); without it, a random mutation loop. New inputs go to a scratch folder, crashes to
tests/fuzz/crashes/. Prints one line per target: inputs run, crashes.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

CRASHES = Path(__file__).parent / "crashes"
CORPUS = Path(__file__).parent / "corpus"


def _atheris_run(name: str, seconds: int) -> None:
    import atheris

    with atheris.instrument_imports(include=["harness"]):  # coverage of the lab's code only
        from tests.fuzz.targets import TARGETS, check

    target = TARGETS[name]

    def one(data: bytes) -> None:
        check(target, data)

    CRASHES.mkdir(exist_ok=True)
    scratch = tempfile.mkdtemp(prefix=f"rdplab-fuzz-{name}-")
    args = [sys.argv[0], f"-max_total_time={seconds}", "-timeout=5", "-rss_limit_mb=1024",
            "-max_len=65536", f"-artifact_prefix={CRASHES}/{name}-", "-print_final_stats=1",
            scratch, str(CORPUS / name)]
    atheris.Setup(args, one)
    atheris.Fuzz()


def _random_run(name: str, seconds: float) -> dict[str, object]:
    from tests.fuzz.targets import TARGETS, check, corpus

    target = TARGETS[name]
    seeds = corpus(name) or [b""]
    rng = random.Random(name)
    from tests.fuzz.mutate import mutate

    runs, crashes = 0, []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        data = mutate(rng.choice(seeds), rng)
        runs += 1
        try:
            check(target, data)
        except Exception:
            CRASHES.mkdir(exist_ok=True)
            path = CRASHES / f"{name}-{runs}"
            path.write_bytes(data)
            crashes.append({"input": str(path), "error": traceback.format_exc(limit=3)})
    return {"target": name, "runs": runs, "crashes": len(crashes), "engine": "random",
            "details": crashes[:3]}


def _one(name: str, seconds: int) -> dict[str, object]:
    """Run one target in a child process (libFuzzer exits the process when it is done)."""
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "tests.fuzz", "--target", name, "--seconds",
                           str(seconds), "--child"], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
                          check=False)
    runs = re.findall(r"stat::number_of_executed_units: (\d+)", proc.stderr)
    if not runs:
        runs = re.findall(r"Done (\d+) runs", proc.stderr)
    crashed = proc.returncode != 0
    return {"target": name, "runs": int(runs[-1]) if runs else None, "crashes": int(crashed),
            "engine": "atheris", "seconds": round(time.monotonic() - t0, 1),
            "tail": proc.stderr[-1500:] if crashed else ""}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__)
    p.add_argument("--target", default="all", help="a target name (tests/fuzz/targets.py) or all")
    p.add_argument("--seconds", type=int, default=60, help="per target")
    p.add_argument("--seed", action="store_true", help="(re)write the corpus from real exchanges")
    p.add_argument("--report", type=Path, help="append the figures to this JSON-lines file")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.seed:
        from tests.fuzz.seed import write_corpus

        print(json.dumps(write_corpus()))
        return 0
    if args.child:
        _atheris_run(args.target, args.seconds)
        return 0
    from tests.fuzz.targets import TARGETS

    names = list(TARGETS) if args.target == "all" else [args.target]
    if any(n not in TARGETS for n in names):
        p.error(f"unknown target {args.target!r}; known: {', '.join(TARGETS)}")
    try:
        import atheris  # noqa: F401
        have_atheris = True
    except ImportError:
        have_atheris = False
    failed = False
    for name in names:
        result = _one(name, args.seconds) if have_atheris else _random_run(name, args.seconds)
        failed = failed or bool(result["crashes"])
        print(json.dumps(result), flush=True)
        if args.report:
            with args.report.open("a") as f:
                f.write(json.dumps(result) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
