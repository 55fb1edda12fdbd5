"""Every fault of every shipped lab shows, in a real run, the symptom its file expects.

A fault whose run disagrees with its file fails here (not only a line in the report). One cheap
remediation per fault keeps it short; the reproduce stage decides the symptoms.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.matrix.cell import CellOptions
from harness.matrix.runner import run_matrix
from harness.net import netns_available
from harness.net.state import STATE_ENV
from harness.scenario.catalog import load_catalog

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.netns]


@pytest.mark.parametrize("lab", ["default", "direct", "legacy"])
def test_every_fault_shows_what_its_file_expects(lab: str, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    ok, why = netns_available()
    if not ok:
        pytest.skip(f"network namespaces unavailable: {why}")
    monkeypatch.setenv(STATE_ENV, str(tmp_path / "state"))  # a `down --all` elsewhere spares it
    catalog, _ = load_catalog().for_lab(lab)
    catalog = catalog.select(None, ["flush-dns-cache"])
    opts = CellOptions(lab=str(REPO / "labs" / f"{lab}.yaml"), backend="netns")
    result = run_matrix(opts, catalog, jobs=4)
    assert not result.lab_errors, [(c.fault, c.reason) for c in result.lab_errors]
    mismatches = result.expectation_mismatches()
    if lab == "legacy":
        # FreeRDP 2.11 on OpenSSL 3 cannot speak the 2008 R2 host's TLS 1.0 (rdp-facts §7): every
        # row shows tls/version_mismatch for it, whatever the fault; the user's client is asserted
        assert {m["actual"] for m in mismatches if m["profile"] == "freerdp2"} <= {
            "tls/version_mismatch"}
        mismatches = [m for m in mismatches if m["profile"] != "freerdp2"]
    assert not mismatches, mismatches
    assert {c.fault for c in result.cells} == set(catalog.faults)
