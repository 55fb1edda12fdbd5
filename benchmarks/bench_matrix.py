"""Full default matrix, timed in both lifecycles, against the cost of one connection:
`python benchmarks/bench_matrix.py [--runs N] [--backend B ...] [--lifecycle L ...]
[--faults IDS|issue-8] [--remediations IDS]`.

For each backend it measures one probe connection (median of --connections clean probes on a
started lab, the lab's deciding profile, the cell's stage caps), then runs the whole matrix and
prints, per lifecycle, the median wall time and the ratio

    wall / (cells × one connection / cores)

i.e. how many connections' worth of wall time a cell costs per core. Targets (issue 8): at most
2 on loopback in the snapshot lifecycle, and the netns matrix under 20 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

from harness.lab import registry
from harness.lab.definition import load_lab
from harness.lab.factory import LabHandle
from harness.matrix.cell import LIFECYCLES, CellOptions, bounded
from harness.matrix.runner import default_jobs, run_matrix
from harness.pki import KeyPool
from harness.probe.profiles import load_profile
from harness.scenario.catalog import load_catalog

# The default lab's matrix when issue 8 set "the netns matrix under 20 s" (commit 11020ac: 17
# faults x 21 remediations = 357 cells; clock-skew and mtu-blackhole then had one setting each).
ISSUE_8_FAULTS = (
    "clock-skew@3h", "corrupt-machinekeys", "credssp-oracle-client-enforces",
    "credssp-oracle-server-enforces", "expired-cert", "firewall-block-drop",
    "firewall-block-reject", "gateway-cert-expired", "gateway-cert-name-mismatch",
    "gateway-resource-denied", "gateway-to-host-blocked", "gateway-websocket-blocked",
    "mtu-blackhole@1300", "nla-unsupported-client", "server-denied", "stale-dns",
    "tls-version-mismatch")
ISSUE_8_REMEDIATIONS = (
    "allow-host-in-resource-policy", "client-allow-vulnerable-credssp",
    "connect-by-certificate-name", "connect-by-ip", "disable-nla", "enable-rdp-firewall-rules",
    "enable-tls12-on-host", "enable-websocket-firewall-rule", "host-allow-vulnerable-credssp",
    "lower-client-mtu", "open-gateway-to-host", "raise-connection-limit", "reboot-both",
    "rename-machinekeys-reboot", "renew-gateway-certificate", "renew-rdp-certificate",
    "reset-machinekeys-acl", "restart-rdp-service", "resync-clock", "update-client",
    "update-host")


def one_connection(lab_name: str, backend: str, count: int) -> float:
    """Median seconds of one clean probe connection on a started lab of this backend."""
    spec = load_lab(lab_name)
    profile = bounded(load_profile(spec.profile), 2.0)
    with KeyPool(2), LabHandle(spec, backend) as lab:
        lab.probe(profile, usable_window=1.5, overall_timeout=12.0)  # warm up
        times = []
        for _ in range(count):
            t0 = time.perf_counter()
            result = lab.probe(profile, usable_window=1.5, overall_timeout=12.0)
            times.append(time.perf_counter() - t0)
            assert result.ok, result.as_dict()
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--backend", action="append",
                        help="loopback and/or netns (default: loopback, and netns when possible)")
    parser.add_argument("--lifecycle", action="append", choices=LIFECYCLES,
                        help="default: both")
    parser.add_argument("--jobs", type=int, default=None, help="default: per backend")
    parser.add_argument("--connections", type=int, default=30)
    parser.add_argument("--lab", default="default")
    parser.add_argument("--faults", help="comma-separated fault ids (default: every fault of "
                        "the lab); --faults issue-8 is the matrix issue 8 set its target on")
    parser.add_argument("--remediations", help="comma-separated remediation ids (default: all)")
    args = parser.parse_args()
    if args.faults == "issue-8":
        args.faults, args.remediations = ",".join(ISSUE_8_FAULTS), ",".join(ISSUE_8_REMEDIATIONS)
    backends = args.backend or ["loopback"] + (
        ["netns"] if registry.backend_class("netns").availability() is None else [])
    lifecycles = args.lifecycle or ["snapshot", "fresh"]
    spec = load_lab(args.lab)
    catalog, _ = load_catalog().for_lab(spec.name)
    if args.faults or args.remediations:
        catalog = catalog.select(args.faults.split(",") if args.faults else None,
                                 args.remediations.split(",") if args.remediations else None)
    cells = len(catalog.faults) * len(catalog.remediations)
    cores = os.cpu_count() or 1
    print(f"lab {spec.name}: {len(catalog.faults)} faults x {len(catalog.remediations)} "
          f"remediations = {cells} cells, {cores} cores")
    for backend in backends:
        connection = one_connection(args.lab, backend, args.connections)
        budget = cells * connection / cores
        jobs = args.jobs or default_jobs(backend)
        print(f"{backend}: one connection {connection * 1000:.1f} ms (median of "
              f"{args.connections}); cells x connection / cores = {budget:.2f} s; {jobs} workers")
        for lifecycle in lifecycles:
            totals = []
            for run in range(args.runs):
                with tempfile.TemporaryDirectory() as journals:
                    opts = CellOptions(lab=str(spec.path), backend=backend, journal_dir=journals,
                                       lifecycle=lifecycle)
                    result = run_matrix(opts, catalog, jobs=jobs)
                outcomes = {o: sum(c.outcome == o for c in result.cells)
                            for o in sorted({c.outcome for c in result.cells})}
                totals.append(result.seconds)
                print(f"  {backend} {lifecycle} run {run + 1}: {result.seconds:.2f} s  "
                      f"{outcomes}")
            wall = statistics.median(totals)
            print(f"{backend} {lifecycle}: wall {wall:.2f} s (median of {args.runs}); ratio "
                  f"wall / (cells x connection / cores) = {wall / budget:.2f}")


if __name__ == "__main__":
    main()
