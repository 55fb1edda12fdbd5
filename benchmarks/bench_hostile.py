"""The host under hostile load: memory per held pre-authentication connection, and a normal
client's connection time while 500 hostile connections are held (issue 10: within 2x of idle).

    python benchmarks/bench_hostile.py [--held N] [--runs N] [--slowloris N] [--check]

`rdplab host` runs in a child process, as a user runs it. The hostile connections are held
sockets that sent the first bytes of an X.224 Connection Request and stop there (past the
10-second first-PDU timer, held until the handshake deadline), plus `--slowloris` clients that
trickle one byte every 0.5 s. A normal connection is the probe to a usable session (NLA with
SPNEGO-NTLM), timed in this process; medians of --runs. `--check` exits 1 when the ratio is
above 2.
"""

from __future__ import annotations

import argparse
import os
import re
import selectors
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.probe.profiles import load_profile
from harness.probe.runner import ProbeOptions, ProbeTarget, run_probe
from harness.rdp.x224 import ConnectionRequest, Protocol

USER, PASSWORD = "alice", "Secret1!"


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def start_host() -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "host", "--listen",
                             "127.0.0.1:0", "--user", USER, "--password-env", "BENCH_PW"],
                            env={**os.environ, "BENCH_PW": PASSWORD,
                                 "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(20):
            proc.kill()
            raise SystemExit("rdplab host did not start")
    m = re.search(r":(\d+)$", proc.stdout.readline().strip())
    assert m, "no port"
    return proc, int(m.group(1))


def connect_ms(port: int, runs: int) -> list[float]:
    options = ProbeOptions(load_profile("mstsc-win11"), cert_policy="ignore", overall_timeout=20,
                           usable_window=3)
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        result = run_probe(ProbeTarget("127.0.0.1", port, USER, PASSWORD), options)
        took = (time.perf_counter() - t0) * 1000
        if not result.ok:
            raise SystemExit(f"probe failed: {result.failure}")
        out.append(took)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--held", type=int, default=500)
    p.add_argument("--slowloris", type=int, default=0)
    p.add_argument("--runs", type=int, default=15)
    p.add_argument("--check", action="store_true")
    args = p.parse_args()
    proc, port = start_host()
    socks: list[socket.socket] = []
    stop = threading.Event()
    try:
        connect_ms(port, 5)  # warm-up
        idle = connect_ms(port, args.runs)
        time.sleep(0.5)
        rss0 = rss_kib(proc.pid)
        partial = ConnectionRequest(int(Protocol.SSL | Protocol.HYBRID), "mstshash=x").encode()[:5]
        for _ in range(args.held):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(partial)
            socks.append(s)

        def trickle() -> None:
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            socks.append(s)
            while not stop.wait(0.5):
                try:
                    s.send(b"\x03")
                except OSError:
                    return

        for _ in range(args.slowloris):
            threading.Thread(target=trickle, daemon=True).start()
        time.sleep(1.0)
        rss1 = rss_kib(proc.pid)
        loaded = connect_ms(port, args.runs)
        held = args.held + args.slowloris
        ratio = statistics.median(loaded) / statistics.median(idle)
        print(f"host RSS idle {rss0 / 1024:.1f} MiB, with {held} held connections "
              f"{rss1 / 1024:.1f} MiB: {(rss1 - rss0) / max(1, held):.0f} KiB per held connection")
        print(f"normal connection (probe to usable), median of {args.runs}: idle "
              f"{statistics.median(idle):.1f} ms, with {held} held "
              f"{statistics.median(loaded):.1f} ms: ratio {ratio:.2f} (target <= 2)")
        return 1 if args.check and ratio > 2 else 0
    finally:
        stop.set()
        for s in socks:
            s.close()
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
