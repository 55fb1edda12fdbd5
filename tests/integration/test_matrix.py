"""The matrix is computed, never written: cells follow the model and the files, bad input stops
everything with file, line and field, and the JSON is the documented contract."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.matrix.cell import OUTCOMES, CellOptions, run_cell
from harness.matrix.report import to_json, write_junit
from harness.matrix.runner import run_matrix
from harness.pki import KeyPool
from harness.scenario.catalog import load_catalog

REPO = Path(__file__).resolve().parents[2]
DIRECT = str(REPO / "labs" / "direct.yaml") if (REPO / "labs" / "direct.yaml").exists() \
    else str(REPO / "labs" / "default.yaml")


@pytest.fixture(scope="module", autouse=True)
def key_pool():
    with KeyPool(4) as pool:
        yield pool


def _opts(**kw: object) -> CellOptions:
    return CellOptions(lab=DIRECT, backend="loopback", stage_timeout=2.0, **kw)  # type: ignore[arg-type]


@pytest.fixture
def scenarios(tmp_path: Path) -> Path:
    """A private copy of scenarios/ that a test may change."""
    target = tmp_path / "scenarios"
    shutil.copytree(REPO / "scenarios", target)
    return target


def test_cells_come_from_running(tmp_path: Path) -> None:
    opts = _opts(journal_dir=str(tmp_path))
    fixed = run_cell(opts, "expired-cert", "renew-rdp-certificate")
    not_fixed = run_cell(opts, "expired-cert", "resync-clock")
    assert fixed.outcome == "fixed", fixed.reason
    assert not_fixed.outcome == "not-fixed" and "cert_prompt:10" in not_fixed.reason
    journal = json.loads(Path(fixed.journal or "").read_text())
    assert [s["stage"] for s in journal["stages"]] == [
        "create", "baseline", "inject", "reproduce", "remediate", "verify", "destroy"]
    reproduce = next(s for s in journal["stages"] if s["stage"] == "reproduce")
    assert reproduce["probe"]["warnings"][0]["event"] == "cert_prompt:10"
    verify = next(s for s in journal["stages"] if s["stage"] == "verify")
    assert verify["probe"]["ok"] is True


def test_changing_the_model_changes_the_cells(monkeypatch: pytest.MonkeyPatch) -> None:
    """If TermService did not notice that its certificate expired, a restart would not renew it
    and the cell must turn from fixed to not fixed: nothing in the matrix is hard-coded."""
    from harness.windows import certstore

    assert run_cell(_opts(), "expired-cert", "restart-rdp-service").outcome == "fixed"
    monkeypatch.setattr(certstore.StoredCert, "expired", lambda self, at: False)
    broken = run_cell(_opts(), "expired-cert", "restart-rdp-service")
    assert broken.outcome == "not-fixed"
    assert "cert_prompt:10" in broken.reason


def test_changing_a_script_changes_its_cells(scenarios: Path) -> None:
    script = scenarios / "remediations" / "raise-connection-limit.ps1"
    opts = _opts(scenarios=str(scenarios))
    assert run_cell(opts, "server-denied", "raise-connection-limit").outcome == "fixed"
    script.write_text("# the article's command without its restart\nWrite-Host 'done'\n")
    from harness.matrix import cell as cell_module

    cell_module._catalogs.clear()
    assert run_cell(opts, "server-denied", "raise-connection-limit").outcome == "not-fixed"


def test_a_real_unmodelled_command_marks_the_cell_not_emulated(scenarios: Path) -> None:
    script = scenarios / "remediations" / "restart-rdp-service.ps1"
    script.write_text("Restart-Service -Name TermService -Force\nGet-NetTCPConnection -State "
                      "Listen\n")
    result = run_cell(_opts(scenarios=str(scenarios)), "expired-cert", "restart-rdp-service")
    assert result.outcome == "not-emulated"
    assert "restart-rdp-service.ps1" in result.reason and "2" in result.reason
    assert "Get-NetTCPConnection" in result.reason


@pytest.mark.parametrize(("line", "exception"), [
    ("Restart-Servce -Name TermService -Force", "CommandNotFoundException"),
    ("Restart-Service -Nme TermService -Force", "ParameterBindingException"),
])
def test_a_misspelt_name_fails_as_on_windows(scenarios: Path, line: str, exception: str) -> None:
    """On Windows a misspelt cmdlet or parameter is an error and the fix does not happen."""
    script = scenarios / "remediations" / "restart-rdp-service.ps1"
    script.write_text(line + "\n")
    result = run_cell(_opts(scenarios=str(scenarios)), "expired-cert", "restart-rdp-service")
    assert result.outcome == "not-fixed"
    assert exception in result.reason and "restart-rdp-service.ps1:1" in result.reason


def test_a_fault_that_does_not_reproduce_is_a_lab_error(scenarios: Path) -> None:
    (scenarios / "harmless.yaml").write_text(
        "id: harmless\ntitle: A change that breaks nothing\ndescription: x\n"
        "claim: {text: t, codes: {disconnect: '0x904', extended: '0x7'}, sources: [s]}\n"
        "inject:\n  - {node: host, action: set_clock_offset, args: {seconds: 5}}\n"
        "expected: {mstsc-win11: {symptom: tcp/refused, provenance: open}}\ntags: []\n")
    result = run_cell(_opts(scenarios=str(scenarios)), "harmless", "restart-rdp-service")
    assert result.outcome == "lab-error"
    assert "did not reproduce" in result.reason
    # the same change, where the file expects nothing to break: "not broken", not an error
    (scenarios / "harmless.yaml").write_text(
        (scenarios / "harmless.yaml").read_text().replace("tcp/refused", "none"))
    from harness.matrix import cell as cell_module

    cell_module._catalogs.clear()
    quiet = run_cell(_opts(scenarios=str(scenarios)), "harmless", "restart-rdp-service")
    assert quiet.outcome == "not-broken"


def test_a_user_adds_a_fault_with_a_file(scenarios: Path) -> None:
    (scenarios / "rdp-disabled.yaml").write_text(
        "id: rdp-disabled\ntitle: Remote Desktop turned off\ndescription: fDenyTSConnections 1\n"
        "claim: {text: t, codes: {disconnect: '0x904', extended: '0x7'}, sources: [s]}\n"
        "inject:\n  - {node: host, action: deny_ts_connections, args: {deny: true}}\n"
        "expected: {mstsc-win11: {symptom: tcp/refused, provenance: doc}}\ntags: [host]\n")
    catalog = load_catalog(scenarios).select(["rdp-disabled"], ["restart-rdp-service",
                                                                "enable-rdp-firewall-rules"])
    result = run_matrix(_opts(scenarios=str(scenarios)), catalog, jobs=1)
    assert {c.outcome for c in result.cells} <= set(OUTCOMES)
    assert result.row_symptoms("rdp-disabled")["mstsc-win11"] == "tcp/refused"
    assert not result.expectation_mismatches()


def test_cli_refuses_bad_files_and_runs_nothing(scenarios: Path, tmp_path: Path) -> None:
    (scenarios / "expired-cert.yaml").write_text("id: expired-cert\ntitle: t\n")
    out = tmp_path / "m.json"
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "matrix", "--backend", "loopback",
                           "--scenarios", str(scenarios), "--json", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "expired-cert.yaml:1" in proc.stderr and "nothing was run" in proc.stderr
    assert not out.exists()


def test_json_contract_and_junit(tmp_path: Path) -> None:
    catalog = load_catalog().select(["server-denied", "firewall-block-reject", "mtu-blackhole"],
                                    ["raise-connection-limit", "disable-nla"])
    result = run_matrix(_opts(journal_dir=str(tmp_path)), catalog, jobs=1)
    doc = to_json(result)
    import jsonschema

    schema = json.loads((REPO / "harness" / "data" / "schemas" / "matrix.schema.json").read_text())
    jsonschema.validate(json.loads(json.dumps(doc, default=str)), schema)
    assert set(doc) >= {"lab", "faults", "remediations", "cells"}
    row = next(f for f in doc["faults"] if f["id"] == "server-denied")
    assert row["codes"]["mstsc-win11"]["disconnect"] == "0x904"
    assert row["codes"]["mstsc-win11"]["extended"] == "0x7"
    assert isinstance(row["codes"]["freerdp2"]["exit"], int)
    assert row["claimed"]["disconnect"] == "0x904"
    assert {"id", "title", "node", "weakens_security"} <= set(doc["remediations"][0])
    nla = next(r for r in doc["remediations"] if r["id"] == "disable-nla")
    assert nla["weakens_security"] is True
    for cell in doc["cells"]:
        assert cell["outcome"] in OUTCOMES
        assert cell["backend"] == "loopback"
        assert Path(cell["journal"]).is_file()
    by = {(c["fault"], c["remediation"]): c["outcome"] for c in doc["cells"]}
    assert by[("server-denied", "raise-connection-limit")] == "fixed"
    assert by[("mtu-blackhole@1300", "disable-nla")] == "not-emulated"
    junit = tmp_path / "j.xml"
    write_junit(result, junit)
    suite = ET.parse(junit).getroot()
    assert len(suite.findall("testcase")) == len(doc["cells"])
    assert suite.get("skipped") == str(sum(c["outcome"] == "not-emulated" for c in doc["cells"]))


def test_cli_exit_status_is_1_on_lab_errors(scenarios: Path, tmp_path: Path) -> None:
    (scenarios / "harmless.yaml").write_text(
        "id: harmless\ntitle: A change that breaks nothing\ndescription: x\n"
        "claim: {text: t, codes: {disconnect: '0x904', extended: '0x7'}, sources: [s]}\n"
        "inject:\n  - {node: host, action: set_clock_offset, args: {seconds: 5}}\n"
        "expected: {mstsc-win11: {symptom: tcp/refused, provenance: open}}\ntags: []\n")
    base = [sys.executable, "-m", "harness.cli", "matrix", "--backend", "loopback", "--lab", DIRECT,
            "--scenarios", str(scenarios), "--remediations", "restart-rdp-service", "--jobs", "1",
            "--journals", str(tmp_path / "journals")]
    bad = subprocess.run([*base, "--faults", "harmless"], capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode == 1, bad.stderr
    good = subprocess.run([*base, "--faults", "expired-cert", "--json", str(tmp_path / "m.json")],
                          capture_output=True, text=True, timeout=120)
    assert good.returncode == 0, good.stderr
    doc = json.loads((tmp_path / "m.json").read_text())
    assert [c["outcome"] for c in doc["cells"]] == ["fixed"]


def test_pytest_collects_cells_from_the_scenario_files(tmp_path: Path) -> None:
    junit = tmp_path / "cells.xml"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(REPO / "scenarios"), "-p", "no:cacheprovider", "-q",
         "--rdplab-backend", "loopback", "--rdplab-lab", DIRECT, "-k",
         "server-denied and (raise-connection-limit or restart-rdp-service)",
         f"--junitxml={junit}"],
        capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-2000:]
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    assert set(cases) == {"raise-connection-limit", "restart-rdp-service"}
    outcome = {name: {p.get("name"): p.get("value") for p in case.iter("property")}["outcome"]
               for name, case in cases.items()}
    assert outcome == {"raise-connection-limit": "fixed", "restart-rdp-service": "not-fixed"}


def test_vagrant_backend_is_refused_up_front_where_it_cannot_run(tmp_path: Path) -> None:
    """No hypervisor, no Vagrant and no Windows boxes here: the run must say so and run nothing."""
    if shutil.which("vagrant"):
        pytest.skip("vagrant is installed here")
    out = tmp_path / "m.json"
    proc = subprocess.run([sys.executable, "-m", "harness.cli", "matrix", "--backend", "vagrant",
                           "--faults", "expired-cert", "--json", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "vagrant" in proc.stderr and "nothing was run" in proc.stderr
    assert not out.exists()


def test_a_user_adds_a_remediation_with_a_file(scenarios: Path) -> None:
    rem = scenarios / "remediations"
    (rem / "bounce-termservice.ps1").write_text(
        "# what an admin types after reading that a service restart fixes it\n"
        "Stop-Service -Name TermService -Force\n"
        "Start-Service -Name TermService\n")
    (rem / "bounce-termservice.yaml").write_text(
        "id: bounce-termservice\ntitle: Stop and start TermService\ntarget: host\n"
        "source: a forum answer\nsecurity_impact: none\nnotes: none\n")
    catalog = load_catalog(scenarios).select(["expired-cert", "server-denied"],
                                             ["bounce-termservice"])
    result = run_matrix(_opts(scenarios=str(scenarios)), catalog, jobs=1)
    outcomes = {c.fault: c.outcome for c in result.cells}
    assert outcomes == {"expired-cert": "fixed", "server-denied": "not-fixed"}
