"""A netem stand-in for kernels built without sch_netem: the router hands forwarded packets to
a TUN device owned by this process, and a thread writes each one back after its delay, drops
the lost ones and lets the "reordered" ones jump the queue (netem's meaning of the parameters).

Plumbing inside the router namespace: `ip rule iif <router iface> lookup 213` sends packets that
arrive on a router interface to table 213, whose routes lead the covered subnets into the TUN
device; packets written back arrive on the TUN, match no rule, and take the main table to their
real interface. If this process dies the TUN device disappears with its routes and the router
forwards directly again (fail-open). rp_filter is off for the TUN so the re-entry is accepted.
"""

from __future__ import annotations

import contextlib
import fcntl
import heapq
import os
import random
import select
import struct
import threading
import time
from collections.abc import Sequence

from .cmd import ip_batch
from .nsenter import in_netns, write_sysctl

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
ROUTE_TABLE = 213
RULE_PREF = 2130


class TunDelayer:
    """Delay/loss/reorder for packets routed towards `subnets` inside namespace `ns`."""

    def __init__(
        self,
        ns: str,
        in_devices: Sequence[str],
        subnets: Sequence[str],
        *,
        dev: str = "netem0",
        delay_ms: float = 0.0,
        jitter_ms: float = 0.0,
        loss_pct: float = 0.0,
        reorder_pct: float = 0.0,
        limit: int = 10000,
        seed: int | None = None,
    ) -> None:
        self.ns, self.dev, self.limit = ns, dev, limit
        self.in_devices, self.subnets = list(in_devices), list(subnets)
        self.delay, self.jitter = delay_ms / 1000, jitter_ms / 1000
        self.loss, self.reorder = loss_pct / 100, reorder_pct / 100
        self.rng = random.Random(seed)
        self.stats = {"delayed": 0, "dropped": 0, "reordered": 0, "passed": 0}
        self._pending: list[tuple[float, int, bytes]] = []
        self._seq = 0
        self._stop = threading.Event()
        self._fd: int | None = None
        self._thread: threading.Thread | None = None
        self._routed = False
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)

    def start(self) -> None:
        """Create the TUN device, route the covered traffic through it, start the thread."""
        with in_netns(self.ns):
            fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC | os.O_NONBLOCK)
            try:
                ifr = struct.pack("16sH", self.dev.encode(), IFF_TUN | IFF_NO_PI)
                fcntl.ioctl(fd, TUNSETIFF, ifr)
            except BaseException:
                os.close(fd)
                raise
        self._fd = fd
        self._thread = threading.Thread(target=self._run, name=f"netem-{self.ns}", daemon=True)
        self._thread.start()
        try:
            write_sysctl(self.ns, {f"net.ipv4.conf.{self.dev}.rp_filter": 0})
            lines = [f"link set {self.dev} mtu 65535 txqueuelen {self.limit} up"]
            lines += [f"route add {s} dev {self.dev} table {ROUTE_TABLE}" for s in self.subnets]
            self._routed = True
            lines += [
                f"rule add iif {d} lookup {ROUTE_TABLE} pref {RULE_PREF}" for d in self.in_devices
            ]
            ip_batch(lines, ns=self.ns)
        except BaseException:
            self.stop()
            raise

    def _take(self, packet: bytes, now: float) -> None:
        if self.loss and self.rng.random() < self.loss:
            self.stats["dropped"] += 1
        elif not self.delay:
            self._write(packet)
            self.stats["passed"] += 1
        elif self.reorder and self.rng.random() < self.reorder:
            self._write(packet)
            self.stats["reordered"] += 1
        elif len(self._pending) >= self.limit:
            self.stats["dropped"] += 1
        else:
            d = self.delay + (self.rng.uniform(-self.jitter, self.jitter) if self.jitter else 0.0)
            self._seq += 1
            heapq.heappush(self._pending, (now + max(d, 0.0), self._seq, packet))
            self.stats["delayed"] += 1

    def _write(self, packet: bytes) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.write(self._fd, packet)

    def _release(self, flush: bool = False) -> None:
        now = time.monotonic()
        while self._pending and (flush or self._pending[0][0] <= now):
            self._write(heapq.heappop(self._pending)[2])

    def _run(self) -> None:
        fd = self._fd
        assert fd is not None
        while not self._stop.is_set():
            wait = 0.05
            if self._pending:
                wait = min(wait, max(0.0, self._pending[0][0] - time.monotonic()))
            try:
                ready, _, _ = select.select([fd, self._wake_r], [], [], wait)
            except (OSError, ValueError):
                break
            if fd in ready:
                now = time.monotonic()
                for _ in range(256):
                    try:
                        packet = os.read(fd, 65536)
                    except BlockingIOError:
                        break
                    except OSError:
                        break
                    self._take(packet, now)
            self._release()

    def stop(self) -> None:
        """Route directly again, deliver every held packet, remove the device (idempotent)."""
        if self._routed:
            self._routed = False
            lines = [f"rule del pref {RULE_PREF}" for _ in self.in_devices]
            lines.append(f"route flush table {ROUTE_TABLE}")
            with contextlib.suppress(Exception):
                ip_batch(lines, ns=self.ns, force=True, check=False)
        self._stop.set()
        if self._wake_w >= 0:
            with contextlib.suppress(OSError):
                os.write(self._wake_w, b"x")
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._release(flush=True)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)
        self._wake_r = self._wake_w = -1
