"""A user extends the catalog with files alone: a fault with variants and a remediation."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.matrix.cell import CellOptions
from harness.matrix.report import to_json
from harness.matrix.runner import run_matrix
from harness.scenario.catalog import load_catalog
from harness.scenario.source import ScenarioFileError

REPO = Path(__file__).resolve().parents[2]

FAULT = """\
id: port-moved
title: The RDP listener moved to another port
description: An admin changed PortNumber and restarted TermService.
claim: {text: "A changed RDP port causes 0x204.", codes: {disconnect: "0x204"},
        sources: ["Microsoft Learn, 'Change the listening port for Remote Desktop'"]}
inject:
  - {node: host, action: set_rdp_port, args: {port: 3390}}
expected:
  mstsc-win11: {symptom: ["tcp/refused", "gateway_tunnel/*"], provenance: doc}
variants:
  - {id: "3390", args: {port: 3390}}
  - id: "3389"
    args: {port: 3389}
    expected: {mstsc-win11: {symptom: none, provenance: doc, note: "the default port: no change"}}
tags: [host]
"""

SIDECAR = """\
id: restore-rdp-port
title: Put the RDP listener back on 3389
target: host
source: ["Microsoft Learn, 'Change the listening port for Remote Desktop'"]
security_impact: none
notes: The listener reads PortNumber when TermService starts.
"""

SCRIPT = """\
$key = "HKLM:\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server\\WinStations\\RDP-Tcp"
Set-ItemProperty -Path $key -Name PortNumber -Value 3389
Restart-Service -Name TermService -Force
"""


@pytest.fixture
def scenarios(tmp_path: Path) -> Path:
    target = tmp_path / "scenarios"
    shutil.copytree(REPO / "scenarios", target)
    (target / "port-moved.yaml").write_text(FAULT)
    (target / "remediations" / "restore-rdp-port.yaml").write_text(SIDECAR)
    (target / "remediations" / "restore-rdp-port.ps1").write_text(SCRIPT)
    return target


def test_a_user_adds_a_fault_with_variants_and_a_remediation(scenarios: Path) -> None:
    catalog = load_catalog(scenarios).select(["port-moved"], ["restore-rdp-port",
                                                              "restart-rdp-service"])
    assert list(catalog.faults) == ["port-moved@3390", "port-moved@3389"]
    opts = CellOptions(lab=str(REPO / "labs" / "direct.yaml"), backend="loopback",
                       scenarios=str(scenarios))
    result = run_matrix(opts, catalog, jobs=1)
    by = {(c.fault, c.remediation): c.outcome for c in result.cells}
    assert by == {("port-moved@3390", "restore-rdp-port"): "fixed",
                  ("port-moved@3390", "restart-rdp-service"): "not-fixed",
                  ("port-moved@3389", "restore-rdp-port"): "not-broken",
                  ("port-moved@3389", "restart-rdp-service"): "not-broken"}
    assert not result.expectation_mismatches()
    row = next(f for f in to_json(result)["faults"] if f["id"] == "port-moved@3390")
    assert row["variant"] == {"of": "port-moved", "id": "3390", "args": {"port": 3390},
                              "title": "port=3390"}


def test_a_variant_that_does_not_fit_its_action_is_a_file_error(scenarios: Path) -> None:
    (scenarios / "port-moved.yaml").write_text(FAULT.replace('{id: "3390", args: {port: 3390}}',
                                                             '{id: "3390", args: {prot: 3390}}'))
    with pytest.raises(ScenarioFileError) as info:
        load_catalog(scenarios)
    assert "port-moved.yaml" in str(info.value) and "variants.0.args" in str(info.value)


def _cell(scenarios: Path, fault: str, remediation: str):
    from harness.matrix import cell as cell_module
    from harness.matrix.cell import run_cell

    cell_module._catalogs.clear()
    return run_cell(CellOptions(lab="default", backend="loopback", scenarios=str(scenarios)),
                    fault, remediation)


def test_collateral_is_computed_from_what_the_script_did(scenarios: Path) -> None:
    """Renaming MachineKeys destroys every machine key, WinRM's too; resetting its ACL (the same
    sidecar, another script) fixes the same fault without that damage."""
    broad = _cell(scenarios, "corrupt-machinekeys", "rename-machinekeys-reboot")
    assert broad.outcome == "fixed"
    assert any("WinRM HTTPS" in c and "key" in c for c in broad.collateral), broad.collateral
    (scenarios / "remediations" / "rename-machinekeys-reboot.ps1").write_text(
        (scenarios / "remediations" / "reset-machinekeys-acl.ps1").read_text())
    narrow = _cell(scenarios, "corrupt-machinekeys", "rename-machinekeys-reboot")
    assert narrow.outcome == "fixed" and narrow.collateral == []


def test_weakened_security_is_computed_not_read_from_the_sidecar(scenarios: Path) -> None:
    off = _cell(scenarios, "client-security-software-blocks-rdp", "disable-client-firewall")
    assert off.outcome == "fixed-weakens-security"
    assert off.weakened == ["client: firewall: on -> off"] and off.security_disagreement is None
    # the same sidecar (security_impact: weakens), a script that only adds the exception
    (scenarios / "remediations" / "disable-client-firewall.ps1").write_text(
        (scenarios / "remediations" / "client-firewall-exception.ps1").read_text())
    scoped = _cell(scenarios, "client-security-software-blocks-rdp", "disable-client-firewall")
    assert scoped.outcome == "fixed" and scoped.weakened == []
    assert "sidecar says security_impact: weakens" in (scoped.security_disagreement or "")


def test_changing_the_model_changes_collateral(scenarios: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """If HTTP.sys could not open WinRM's key after a reboot either way, nothing the script did
    would be collateral: the verdict follows the model."""
    from harness.windows import managed

    monkeypatch.setattr(managed, "checks", lambda node: {})
    monkeypatch.setattr("harness.matrix.aftermath.checks", lambda node: {})
    quiet = _cell(scenarios, "corrupt-machinekeys", "rename-machinekeys-reboot")
    assert quiet.outcome == "fixed" and quiet.collateral == []
