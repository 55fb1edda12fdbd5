"""Median time of one full RDP connection (to a usable session) on loopback: the probe against the
emulated host, and `xfreerdp /auth-only` (FreeRDP 2.11, under Xvfb) against the same host.

    python benchmarks/bench_probe.py [--runs N] [--profile NAME] [--no-xfreerdp] [--shadow]
                                     [--cprofile] [--check]

The host runs in a child process (as `rdplab host` would), so the probe is timed alone and not
sharing its interpreter with the server. A probe connection is timed from the TCP connect to the
moment the usable stage completes (the host's first update burst follows activation at once, so
that is as soon as 16 KiB of complete updates arrived). xfreerdp is timed as a user runs it: its
process start, the whole sequence to activation, and its exit (FreeRDP needs an X display even
with /auth-only). `--check` exits 1 unless the probe's median is under 15 ms and below xfreerdp's.

xfreerdp 2.11 spends ~0.3 s in a start-up benchmark of its primitives and ~100 ms per round trip
of the connection sequence (its blocking read loop), against freerdp-shadow-cli as much as
against the emulated host: `--shadow` measures that control.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import pstats
import selectors
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.probe.profiles import load_profile
from harness.probe.runner import ProbeOptions, ProbeTarget, run_probe

USER, PASSWORD = "alice", "Secret1!"
TARGET_MS = 15.0


# -- the host, in a child process ---------------------------------------------------------------


def serve_host() -> int:
    """Child mode: serve an NLA host with a lab certificate until SIGTERM."""
    import threading

    from harness.host.credentials import check_pair
    from harness.host.policy import HostPolicy
    from harness.host.server import EmulatedHost, listen
    from harness.pki import issue_server_cert, make_ca

    pair = issue_server_cert(make_ca(), "localhost", names=["localhost", "127.0.0.1"])
    policy = HostPolicy(load_credential=lambda: check_pair(pair.cert_pem, pair.key_pem),
                        users={USER: PASSWORD})
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    host = EmulatedHost(lambda: policy, idle_timeout=30)
    host.start(listen("127.0.0.1", 0))
    print(f"listening on {host.address[0]}:{host.address[1]}", flush=True)
    try:
        stop.wait()
    finally:
        host.stop()
    print(f"activated {host.stats.activated}", flush=True)
    return 0


@contextlib.contextmanager
def host_process() -> Iterator[int]:
    proc = subprocess.Popen([sys.executable, __file__, "--serve-host"], stdout=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            if not sel.select(20):
                raise RuntimeError("the host process did not start within 20 s")
        line = proc.stdout.readline()
        if not line.startswith("listening on "):
            raise RuntimeError(f"host process: {line!r}")
        yield int(line.rsplit(":", 1)[1])
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


# -- the two clients ----------------------------------------------------------------------------


def probe_once(port: int, profile_name: str) -> tuple[float, float, dict[str, float]]:
    """(wall seconds, CPU seconds of this process, seconds per stage) of one probe connection."""
    options = ProbeOptions(load_profile(profile_name), cert_policy="ignore", overall_timeout=10,
                           usable_window=1.0)
    c0, t0 = time.process_time(), time.perf_counter()
    result = run_probe(ProbeTarget("127.0.0.1", port, USER, PASSWORD), options)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    if not result.ok:
        raise RuntimeError(f"probe failed: {result.symptom}: {result.failure}")
    return elapsed, cpu, {s.stage: s.seconds for s in result.stages}


def xfreerdp_once(port: int, display: str) -> float:
    from harness.freerdp import run_xfreerdp

    run = run_xfreerdp("127.0.0.1", port, display=display, username=USER, password=PASSWORD,
                       cert="ignore", timeout=20)
    if run.exit_code != 0:
        raise RuntimeError(f"xfreerdp exited {run.exit_code} ({run.exit_name}):\n"
                           f"{run.output[-2000:]}")
    return run.seconds


def shadow_control(display: str, runs: int) -> list[float]:
    from harness.pki import issue_server_cert, make_ca
    from harness.shadow import ShadowServer

    pair = issue_server_cert(make_ca(), "localhost", names=["localhost", "127.0.0.1"])
    with ShadowServer(display, users={USER: PASSWORD}, cert_pem=pair.cert_pem,
                      key_pem=pair.key_pem) as shadow:
        xfreerdp_once(shadow.port, display)
        return [xfreerdp_once(shadow.port, display) for _ in range(runs)]


def ms(samples: list[float]) -> str:
    q = statistics.quantiles(samples, n=10) if len(samples) >= 2 else samples * 9
    return (f"median {statistics.median(samples) * 1000:8.2f} ms   min {min(samples) * 1000:7.2f}"
            f"   p90 {q[-1] * 1000:7.2f}   (n={len(samples)})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="timed connections per client")
    parser.add_argument("--warmup", type=int, default=3, help="untimed probe connections first")
    parser.add_argument("--profile", default="mstsc-win11", help="the probe's client profile")
    parser.add_argument("--no-xfreerdp", action="store_true", help="time the probe only")
    parser.add_argument("--shadow", action="store_true",
                        help="control: also time xfreerdp against freerdp-shadow-cli, to show "
                             "that xfreerdp's time is its own and not the emulated host's")
    parser.add_argument("--cprofile", action="store_true",
                        help="also profile the probe's connections and print the hot spots")
    parser.add_argument("--check", action="store_true",
                        help=f"exit 1 unless the probe median is under {TARGET_MS:g} ms and "
                             "faster than xfreerdp")
    parser.add_argument("--serve-host", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_host:
        return serve_host()
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    probe_s: list[float] = []
    probe_cpu: list[float] = []
    stages: dict[str, list[float]] = {}
    xfree_s: list[float] = []
    shadow_s: list[float] = []
    with host_process() as port:
        for _ in range(args.warmup):
            probe_once(port, args.profile)
        for _ in range(args.runs):
            seconds, cpu, per_stage = probe_once(port, args.profile)
            probe_s.append(seconds)
            probe_cpu.append(cpu)
            for stage, s in per_stage.items():
                stages.setdefault(stage, []).append(s)
        if args.cprofile:
            prof = cProfile.Profile()
            prof.enable()
            for _ in range(args.runs):
                probe_once(port, args.profile)
            prof.disable()
            out = io.StringIO()
            pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(25)
            print(out.getvalue())
        if not args.no_xfreerdp:
            from harness.freerdp import xfreerdp_path
            from harness.xdisplay import Xvfb

            if xfreerdp_path() is None:
                print("xfreerdp is not installed (Debian package freerdp2-x11): probe only")
            else:
                with Xvfb() as x:
                    assert x.display
                    xfreerdp_once(port, x.display)  # warm the page cache
                    xfree_s = [xfreerdp_once(port, x.display) for _ in range(args.runs)]
                    if args.shadow:
                        shadow_s = shadow_control(x.display, args.runs)

    print(f"probe ({args.profile}) full connection to usable, host in another process:")
    print(f"  {ms(probe_s)}")
    print(f"  CPU of the probe process per connection: median "
          f"{statistics.median(probe_cpu) * 1000:.2f} ms")
    print("  per stage (median ms): " + "  ".join(
        f"{stage} {statistics.median(v) * 1000:.2f}" for stage, v in stages.items()))
    probe_median = statistics.median(probe_s) * 1000
    ok = probe_median < TARGET_MS
    if xfree_s:
        xfree_median = statistics.median(xfree_s) * 1000
        print("xfreerdp /auth-only, same host (process start to exit, under Xvfb):")
        print(f"  {ms(xfree_s)}")
        print(f"ratio xfreerdp / probe: {xfree_median / probe_median:.1f}x")
        ok = ok and probe_median < xfree_median
    if shadow_s:
        print("control: xfreerdp /auth-only against freerdp-shadow-cli (same measure):")
        print(f"  {ms(shadow_s)}")
    print(f"target: probe median under {TARGET_MS:g} ms"
          + (" and faster than xfreerdp" if xfree_s else "")
          + f": {'met' if ok else 'NOT met'}")
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
