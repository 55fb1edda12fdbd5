"""The lab's nftables tables: each one written whole in one nft transaction (replacing any
earlier version), recorded in the lab's state file before it exists so `down --all` finds it,
and dropped without an error when it is absent."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .lab import NetLab


def chain(hook: str, rules: Sequence[str], *, priority: str = "filter") -> str:
    """One base chain named after its hook (policy accept) holding `rules`, for load_table."""
    body = "".join(f"    {rule}\n" for rule in rules)
    return (f"  chain {hook} {{\n    type filter hook {hook} priority {priority}; policy accept;\n"
            f"{body}  }}\n")


def load_table(lab: NetLab, node: str, table: str, chains: str) -> None:
    """(Re)create inet table `table` on node with `chains` (chain() texts)."""
    lab.record({"kind": "nft_table", "ns": lab.ns(node), "family": "inet", "table": table})
    lab.nft(node, f"table inet {table} {{}}\ndelete table inet {table}\n"
                  f"table inet {table} {{\n{chains}}}\n")


def drop_table(lab: NetLab, node: str, table: str) -> None:
    """Delete inet table `table` on node (no error when it is not there)."""
    lab.nft(node, f"table inet {table} {{}}\ndelete table inet {table}\n")
    lab.forget({"kind": "nft_table", "ns": lab.ns(node), "family": "inet", "table": table})
