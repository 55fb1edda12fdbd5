"""--with-xfreerdp: real xfreerdp next to the freerdp2 profile's prediction, in matrix cells."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.matrix.cell import CellOptions
from harness.matrix.runner import run_matrix
from harness.pki import KeyPool
from harness.scenario.catalog import load_catalog

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.freerdp, pytest.mark.xdist_group("freerdp")]


@pytest.mark.parametrize("lab", ["direct", "default"])
def test_real_xfreerdp_agrees_with_the_freerdp2_profile(lab: str, xfreerdp: str) -> None:
    if shutil.which("faketime") is None:
        pytest.skip("faketime is not installed (Debian package faketime)")
    faults = ["server-denied", "expired-cert", "clock-skew", "corrupt-machinekeys",
              "firewall-block-reject"]
    catalog = load_catalog().select(faults, ["raise-connection-limit", "renew-rdp-certificate"])
    opts = CellOptions(lab=str(REPO / "labs" / f"{lab}.yaml"), backend="loopback",
                       with_xfreerdp=True, stage_timeout=2.0)
    with KeyPool(2):
        result = run_matrix(opts, catalog, jobs=1)
    runs = [x for c in result.cells for x in c.xfreerdp]
    assert len(runs) == 2 * len(result.cells)
    assert not [x for x in runs if "skipped" in x]
    assert result.disagreements() == []
    exits = {x["xfreerdp_exit"] for x in runs}
    assert {0, 131, 143} <= exits  # connected, denied after MCS, TLS failure: all seen for real
