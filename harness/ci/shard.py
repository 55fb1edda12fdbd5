"""Shards across machines: `--shard K/N` runs a deterministic, balanced share of the cells.

Every runner computes the same plan from the same catalog (no coordination): cells sorted by
expected cost (network faults wait out timeouts, so they cost about ten plain cells), then
dealt greedily to the shard with the least cost so far (longest processing time first), ties
broken by cell id. `rdplab merge` joins the parts into the document a single run gives.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ..scenario.catalog import Catalog

SLOW_CELL_COST = 10  # a cell that waits out network timeouts, against 1 for a plain cell

Pair = tuple[str, str]


def parse_shard(text: str) -> tuple[int, int]:
    """'K/N' with 1 <= K <= N."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not m:
        raise ValueError(f"--shard {text!r}: expected K/N, e.g. 2/4 (the second of 4 shards)")
    k, n = int(m.group(1)), int(m.group(2))
    if n < 1 or not 1 <= k <= n:
        raise ValueError(f"--shard {text}: K must be between 1 and N (N >= 1)")
    return k, n


def cell_cost(catalog: Catalog, pair: Pair) -> int:
    return SLOW_CELL_COST if catalog.faults[pair[0]].requires else 1


def plan(catalog: Catalog, pairs: Iterable[Pair], shards: int) -> list[list[Pair]]:
    """The cells of each shard (in the catalog's order within a shard)."""
    pairs = list(pairs)
    order = {p: i for i, p in enumerate(pairs)}
    load = [0] * shards
    out: list[list[Pair]] = [[] for _ in range(shards)]
    for pair in sorted(pairs, key=lambda p: (-cell_cost(catalog, p), p)):
        target = min(range(shards), key=lambda s: (load[s], s))
        out[target].append(pair)
        load[target] += cell_cost(catalog, pair)
    return [sorted(part, key=order.__getitem__) for part in out]


def shard_pairs(catalog: Catalog, k: int, n: int) -> list[Pair]:
    pairs = [(f, r) for f in catalog.faults for r in catalog.remediations]
    return plan(catalog, pairs, n)[k - 1]
