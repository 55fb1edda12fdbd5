"""Median create+destroy time of kernel labs (harness/net), and of applying+removing each fault.

    python benchmarks/bench_netns.py [--runs N]

Needs root (network namespaces); prints the reason and exits 0 when they are unavailable.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.net import (
    Netem,
    NetLab,
    Topology,
    apply_firewall,
    apply_mtu_blackhole,
    apply_netem,
    netns_available,
    remove_firewall,
    remove_mtu_blackhole,
    remove_netem,
)


def ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:7.2f} ms (min {min(samples) * 1000:.2f})"


def bench_lab(topo: Topology, runs: int, state_dir: Path) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"create": [], "destroy": [], "create+destroy": []}
    for _ in range(runs):
        lab = NetLab(topo, state_dir=state_dir)
        t0 = time.perf_counter()
        lab.create()
        t1 = time.perf_counter()
        lab.destroy()
        t2 = time.perf_counter()
        out["create"].append(t1 - t0)
        out["destroy"].append(t2 - t1)
        out["create+destroy"].append(t2 - t0)
    return out


def bench_fault(
    runs: int, state_dir: Path, apply: Callable[[NetLab], object], remove: Callable[[NetLab], None]
) -> list[float]:
    samples = []
    with NetLab(state_dir=state_dir) as lab:
        for _ in range(runs):
            t0 = time.perf_counter()
            apply(lab)
            remove(lab)
            samples.append(time.perf_counter() - t0)
    return samples


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=50, help="repetitions per measurement (50)")
    args = p.parse_args(argv)
    ok, why = netns_available()
    if not ok:
        print(f"skipped: network namespaces unavailable: {why}")
        return 0
    with tempfile.TemporaryDirectory(prefix="rdplab-bench-") as tmp:
        state = Path(tmp)
        print(f"median over {args.runs} runs")
        for name, topo in (
            ("client-router-host", Topology.standard()),
            ("with gateway", Topology.standard(gateway=True)),
        ):
            for phase, samples in bench_lab(topo, args.runs, state).items():
                print(f"lab {name:20s} {phase:15s} {ms(samples)}")
        faults: dict[str, tuple[Callable[[NetLab], object], Callable[[NetLab], None]]] = {
            "firewall drop": (lambda lab: apply_firewall(lab), lambda lab: remove_firewall(lab)),
            "mtu blackhole": (apply_mtu_blackhole, remove_mtu_blackhole),
            "netem 50 ms": (lambda lab: apply_netem(lab, Netem(delay_ms=50)), remove_netem),
        }
        for name, (apply, remove) in faults.items():
            print(f"fault {name:34s} {ms(bench_fault(args.runs, state, apply, remove))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
