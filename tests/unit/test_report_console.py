"""The console report names the reason of every cell that is not a plain outcome."""

from __future__ import annotations

import io

from rich.console import Console

from harness.matrix.cell import CellResult
from harness.matrix.report import print_matrix
from harness.matrix.runner import MatrixResult
from harness.scenario.catalog import load_catalog


def test_console_shows_the_reason_of_every_not_emulated_cell() -> None:
    catalog = load_catalog().select(["expired-cert"], ["restart-rdp-service", "reboot-both"])
    cells = [CellResult("expired-cert", "restart-rdp-service", "not-emulated",
                        "x.ps1:2: not emulated: Get-NetTCPConnection (command)", "loopback", 0.1),
             CellResult("expired-cert", "reboot-both", "fixed", "usable", "loopback", 0.1)]
    result = MatrixResult(lab={"name": "default", "profile": "mstsc-win11",
                               "code_profiles": ["mstsc-win11"]}, catalog=catalog, cells=cells)
    out = io.StringIO()
    print_matrix(result, Console(file=out, width=300))
    text = out.getvalue()
    assert "not emulated: expired-cert × restart-rdp-service: x.ps1:2" in text
    assert "reboot-both: usable" not in text
