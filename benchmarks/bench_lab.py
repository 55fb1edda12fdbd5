"""Median cost of a lab's life per backend: LabHandle create + start + close, with and without
building the Windows nodes, the node build alone, and one baseline probe in a running lab.

    python benchmarks/bench_lab.py [--runs N] [--lab default] [--backends loopback,netns]

The netns backend needs root (network namespaces); without them it is reported as skipped.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.lab.definition import LabSpec, load_lab
from harness.lab.factory import LabHandle, build_nodes
from harness.net import netns_available
from harness.net.state import STATE_ENV
from harness.probe.profiles import load_profile


def ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:8.2f} ms (min {min(samples) * 1000:.2f})"


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def life(spec: LabSpec, backend: str, *, prebuilt: bool) -> float:
    """One create + start + close; with prebuilt, the nodes are built before the clock starts."""
    if not prebuilt:
        def run() -> None:
            with LabHandle(spec, backend):
                pass

        return timed(run)
    workdir = Path(tempfile.mkdtemp(prefix="rdplab-bench-"))
    try:
        nodes = build_nodes(spec, workdir)

        def run_prebuilt() -> None:
            with LabHandle(spec, backend, workdir=workdir, nodes=nodes):
                pass

        return timed(run_prebuilt)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def node_build(spec: LabSpec) -> float:
    workdir = Path(tempfile.mkdtemp(prefix="rdplab-bench-"))
    try:
        return timed(lambda: build_nodes(spec, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def probes(spec: LabSpec, backend: str, runs: int) -> list[float]:
    profile = load_profile(spec.profile)
    samples = []
    with LabHandle(spec, backend) as lab:
        for _ in range(runs):
            t0 = time.perf_counter()
            result = lab.probe(profile, usable_window=3)
            samples.append(time.perf_counter() - t0)
            if not result.ok:
                raise SystemExit(f"{backend}: the baseline probe failed: {result.failure}")
    return samples


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--runs", type=int, default=20, help="repetitions per measurement (20)")
    p.add_argument("--lab", default="default", help="lab file or name (default)")
    p.add_argument("--backends", default="loopback,netns", help="comma-separated backends")
    args = p.parse_args(argv)
    if args.runs < 1:
        p.error("--runs must be at least 1")
    spec = load_lab(args.lab)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    ok, why = netns_available()
    with tempfile.TemporaryDirectory(prefix="rdplab-bench-state-") as state:
        os.environ[STATE_ENV] = state  # netns labs record themselves here, not in /run/rdplab
        print(f"lab {spec.name!r}, median over {args.runs} runs")
        print(f"  {'build Windows nodes':<44} {ms([node_build(spec) for _ in range(args.runs)])}")
        for backend in backends:
            if backend == "netns" and not ok:
                print(f"  {backend}: skipped: network namespaces unavailable: {why}")
                continue
            life(spec, backend, prebuilt=True)  # warm-up: imports, first namespace
            full = [life(spec, backend, prebuilt=False) for _ in range(args.runs)]
            bare = [life(spec, backend, prebuilt=True) for _ in range(args.runs)]
            print(f"  {backend + ': create+start+close, nodes built':<44} {ms(full)}")
            print(f"  {backend + ': create+start+close, nodes pre-built':<44} {ms(bare)}")
            probe = probes(spec, backend, args.runs)
            print(f"  {backend + ': baseline probe to usable':<44} {ms(probe)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
