"""Shards across machines: `--shard K/N` runs a deterministic, balanced share of the cells.

Every runner computes the same plan from the same catalog (no coordination). The units dealt
out are runs of one fault's cells (a fault's cells share its reproduce stage in the snapshot
lifecycle), cut to at most an eighth of a shard's share; a unit costs its cells (a network
fault's cell waits out timeouts: about ten plain cells) plus one reproduce. Units go, longest
first, to the shard with the least cost so far; ties are broken by the unit's first cell.
`rdplab merge` joins the parts into the document a single run gives.
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


def _units(catalog: Catalog, pairs: list[Pair], shards: int) -> list[list[Pair]]:
    """Runs of one fault's cells, each costing at most an eighth of a shard's share (at least
    one cell), so the greedy deal can even the shards out."""
    rows: dict[str, list[Pair]] = {}
    for pair in pairs:
        rows.setdefault(pair[0], []).append(pair)
    target = sum(cell_cost(catalog, p) for p in pairs) / (8 * shards)
    units = []
    for row in rows.values():
        size = max(1, int(target // cell_cost(catalog, row[0])))
        units += [row[i:i + size] for i in range(0, len(row), size)]
    return units


def unit_cost(catalog: Catalog, unit: list[Pair]) -> int:
    return sum(cell_cost(catalog, p) for p in unit) + cell_cost(catalog, unit[0])


def plan(catalog: Catalog, pairs: Iterable[Pair], shards: int) -> list[list[Pair]]:
    """The cells of each shard (in the catalog's order within a shard)."""
    pairs = list(pairs)
    order = {p: i for i, p in enumerate(pairs)}
    load = [0] * shards
    out: list[list[Pair]] = [[] for _ in range(shards)]
    units = sorted(_units(catalog, pairs, shards),
                   key=lambda u: (-unit_cost(catalog, u), order[u[0]]))
    for unit in units:
        target = min(range(shards), key=lambda s: (load[s], s))
        out[target] += unit
        load[target] += unit_cost(catalog, unit)
    return [sorted(part, key=order.__getitem__) for part in out]


def shard_pairs(catalog: Catalog, k: int, n: int) -> list[Pair]:
    pairs = [(f, r) for f in catalog.faults for r in catalog.remediations]
    return plan(catalog, pairs, n)[k - 1]
