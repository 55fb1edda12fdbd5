"""Netem fault: delay, jitter, loss and reordering on the router's forwarding path.

Backend "tc" puts `tc qdisc ... netem` on the router's interfaces. Backend "tun" (for kernels
built without sch_netem, such as the project VM's 6.18 kernel) routes the packets forwarded
towards those interfaces through an in-process TunDelayer with the same parameters (see
tundelay.py); only forwarded traffic is impaired. "auto" tries tc first, once per process.
By default every router interface is covered, so both directions suffer: a delay d adds 2·d to
each round trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from .cmd import NetError, run
from .tundelay import TunDelayer

if TYPE_CHECKING:
    from .lab import NetLab

Backend = Literal["auto", "tc", "tun"]
_tc_netem_missing = False


@dataclass(frozen=True)
class Netem:
    """netem parameters; reordering needs a delay (reordered packets skip it)."""

    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    loss_pct: float = 0.0
    reorder_pct: float = 0.0
    limit: int = 10000

    def __post_init__(self) -> None:
        if self.reorder_pct and not self.delay_ms:
            raise ValueError("reordering needs a delay")
        if min(self.delay_ms, self.jitter_ms, self.loss_pct, self.reorder_pct) < 0:
            raise ValueError("netem parameters must not be negative")
        if max(self.loss_pct, self.reorder_pct) > 100:
            raise ValueError("percentages must be within 0..100")

    def tc_args(self) -> list[str]:
        """The `netem ...` arguments for tc."""
        out = ["netem", "limit", str(self.limit)]
        if self.delay_ms:
            out += ["delay", f"{self.delay_ms}ms"]
            if self.jitter_ms:
                out.append(f"{self.jitter_ms}ms")
        if self.loss_pct:
            out += ["loss", f"{self.loss_pct}%"]
        if self.reorder_pct:
            out += ["reorder", f"{self.reorder_pct}%"]
        return out


def apply_netem(
    lab: NetLab,
    netem: Netem,
    *,
    node: str | None = None,
    devices: Sequence[str] | None = None,
    backend: Backend = "auto",
    seed: int | None = None,
) -> str:
    """Impair traffic leaving node's (default: the router's) interfaces; return the backend
    used. Replaces an earlier netem fault."""
    global _tc_netem_missing
    remove_netem(lab)
    node = node or lab.router
    devs = list(devices) if devices else [i.name for i in lab.topology.node_ifaces(node)]
    if backend == "tc" or (backend == "auto" and not _tc_netem_missing):
        try:
            _apply_tc(lab, node, devs, netem)
            lab.faults["netem"] = {"backend": "tc", "node": node, "devices": devs}
            return "tc"
        except NetError as exc:
            _remove_tc(lab, node, devs)
            if backend == "tc" or "unknown" not in str(exc).lower():
                raise
            _tc_netem_missing = True
    _apply_tun(lab, node, devs, netem, seed)
    return "tun"


def remove_netem(lab: NetLab) -> None:
    """Undo apply_netem (nothing to do when no netem fault is active)."""
    spec = lab.faults.pop("netem", None)
    if spec is None:
        return
    if spec["backend"] == "tc":
        _remove_tc(lab, spec["node"], spec["devices"])
        return
    delayer = spec["delayer"]
    delayer.stop()
    lab.on_destroy("netem", None)
    lab.forget({"kind": "tun", "ns": delayer.ns, "dev": delayer.dev})


def _apply_tc(lab: NetLab, node: str, devs: list[str], netem: Netem) -> None:
    ns = lab.ns(node)
    lab.record(*({"kind": "qdisc", "ns": ns, "dev": d} for d in devs))
    for d in devs:
        run(["tc", "-n", ns, "qdisc", "replace", "dev", d, "root", *netem.tc_args()])


def _remove_tc(lab: NetLab, node: str, devs: list[str]) -> None:
    ns = lab.ns(node)
    for d in devs:
        run(["tc", "-n", ns, "qdisc", "del", "dev", d, "root"], check=False)
    lab.forget(*({"kind": "qdisc", "ns": ns, "dev": d} for d in devs))


def _apply_tun(lab: NetLab, node: str, devs: list[str], netem: Netem, seed: int | None) -> None:
    ifaces = lab.topology.node_ifaces(node)
    delayer = TunDelayer(
        lab.ns(node),
        [i.name for i in ifaces],
        [i.subnet for i in ifaces if i.name in devs],
        delay_ms=netem.delay_ms,
        jitter_ms=netem.jitter_ms,
        loss_pct=netem.loss_pct,
        reorder_pct=netem.reorder_pct,
        limit=netem.limit,
        seed=seed,
    )
    tun = {"kind": "tun", "ns": lab.ns(node), "dev": delayer.dev}
    lab.record(tun)
    lab.on_destroy("netem", delayer.stop)
    try:
        delayer.start()
    except BaseException:
        lab.on_destroy("netem", None)
        lab.forget(tun)
        raise
    lab.faults["netem"] = {"backend": "tun", "node": node, "devices": devs, "delayer": delayer}
