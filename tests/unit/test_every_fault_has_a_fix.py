"""Done-when of the catalog: in the pinned matrix of every shipped lab and backend, every fault
row the lab can run has a remediation that fixes it without weakening security (`fixed`, the
verdict computed from the nodes' state), unless the fault breaks nothing there (`not-broken`).
A row whose every cell is not emulated is one the lab or backend cannot have (a gateway fault
without a gateway, a kernel fault on loopback): its file's `requires` says why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.ci.golden import GOLDEN_DIR
from harness.scenario.catalog import load_catalog

PINNED = sorted(GOLDEN_DIR.glob("*.json"))


@pytest.mark.parametrize("pinned", PINNED, ids=[p.stem for p in PINNED])
def test_every_row_has_a_fix_that_does_not_weaken_security(pinned: Path) -> None:
    golden = json.loads(pinned.read_text())
    catalog = load_catalog()
    unfixed = []
    for fault, row in golden["cells"].items():
        outcomes = set(row.values())
        if outcomes == {"not-emulated"}:
            assert catalog.faults[fault].requires, f"{fault}: never runs here, and says no why"
            continue
        if not outcomes & {"fixed", "not-broken"}:
            unfixed.append(f"{fault}: {sorted(outcomes)}")
    assert not unfixed, f"{pinned.name}: rows with no fix that keeps security:\n" + "\n".join(
        unfixed)
