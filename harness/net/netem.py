"""Netem fault: delay, jitter, loss and reordering on the router's egress queues (tc netem).

By default every router interface gets the qdisc, so both directions suffer: a delay of d adds
2·d to each round trip."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .cmd import run

if TYPE_CHECKING:
    from .lab import NetLab


@dataclass(frozen=True)
class Netem:
    """netem parameters; reordering needs a delay (reordered packets skip it)."""

    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    loss_pct: float = 0.0
    reorder_pct: float = 0.0
    limit: int = 10000

    def args(self) -> list[str]:
        """The `netem ...` arguments for tc."""
        if self.reorder_pct and not self.delay_ms:
            raise ValueError("reordering needs a delay")
        for v in (self.loss_pct, self.reorder_pct):
            if not 0 <= v <= 100:
                raise ValueError("percentages must be within 0..100")
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


def _devices(lab: NetLab, node: str | None, devices: Sequence[str] | None) -> tuple[str, list[str]]:
    node = node or lab.router
    devs = list(devices) if devices else [i.name for i in lab.topology.node_ifaces(node)]
    return node, devs


def apply_netem(
    lab: NetLab, netem: Netem, *, node: str | None = None, devices: Sequence[str] | None = None
) -> list[str]:
    """Put netem on node's (default: the router's) interfaces; return the devices changed."""
    node, devs = _devices(lab, node, devices)
    ns = lab.ns(node)
    args = netem.args()
    lab.record(*({"kind": "qdisc", "ns": ns, "dev": d} for d in devs))
    for d in devs:
        run(["tc", "-n", ns, "qdisc", "replace", "dev", d, "root", *args])
    return devs


def remove_netem(
    lab: NetLab, *, node: str | None = None, devices: Sequence[str] | None = None
) -> None:
    """Restore the default qdisc on those interfaces (no error when netem is absent)."""
    node, devs = _devices(lab, node, devices)
    ns = lab.ns(node)
    for d in devs:
        run(["tc", "-n", ns, "qdisc", "del", "dev", d, "root"], check=False)
    lab.forget(*({"kind": "qdisc", "ns": ns, "dev": d} for d in devs))
