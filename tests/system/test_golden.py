"""The pinned matrix: every shipped lab's matrix is run and compared, cell by cell, with
`tests/golden/<lab>-<backend>.json`; any difference fails and says how to update the pin
deliberately. The README's findings are checked against the same files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness.ci.document import outcomes
from harness.ci.golden import GOLDEN_DIR, differences, explain, golden_path
from harness.lab.factory import netns_reason
from harness.matrix.cell import CellOptions
from harness.matrix.report import as_document
from harness.matrix.runner import default_jobs, run_matrix
from harness.net.state import STATE_ENV
from harness.scenario.catalog import load_catalog

REPO = Path(__file__).resolve().parents[2]
PINNED = sorted(GOLDEN_DIR.glob("*.json"))
# A finding in the README carries the cells it rests on, in a comment the reader does not see:
# <!-- pinned: default-netns expired-cert×restart-rdp-service=fixed ... -->
FINDING = re.compile(r"<!-- pinned: (?P<file>[\w-]+) (?P<cells>.*?) -->")
CELL = re.compile(r"(?P<fault>[\w*@.-]+)×(?P<rem>[\w*@.-]+)=(?P<outcome>[\w-]+)")
# "fixes nothing" over a wildcard: a cell the backend cannot emulate does not contradict it
# (nor does a row whose fault breaks nothing: a variant below the level that breaks)
COMPATIBLE = {("not-fixed", "not-emulated"), ("not-fixed", "not-broken")}


def test_every_shipped_lab_is_pinned_on_loopback() -> None:
    from harness.ci.golden import shipped_labs

    missing = [lab for lab in shipped_labs() if not golden_path(lab, "loopback").exists()]
    assert not missing, f"no pinned matrix for {missing}: run `rdplab matrix --update-golden`"


@pytest.mark.timeout(900)
@pytest.mark.parametrize("pinned", PINNED, ids=[p.stem for p in PINNED])
def test_the_matrix_is_the_pinned_one(pinned: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # a private state dir: a `down --all --force` in another test spares these labs
    monkeypatch.setenv(STATE_ENV, str(tmp_path / "state"))
    golden = json.loads(pinned.read_text())
    backend = golden["backend"]
    if backend == "netns" and (why := netns_reason()):
        pytest.skip(f"netns backend unavailable: {why}")
    catalog, _ = load_catalog().for_lab(golden["lab"])
    from harness.lab.definition import load_lab

    opts = CellOptions(lab=str(load_lab(golden["lab"]).path), backend=backend)
    doc = as_document(run_matrix(opts, catalog, jobs=default_jobs(backend)))
    diffs = differences(outcomes(golden, str(pinned)), outcomes(doc))
    assert not diffs, explain(pinned, diffs)


def _findings() -> list[tuple[str, list[tuple[str, str, str]]]]:
    text = (REPO / "README.md").read_text()
    return [(m["file"], [(c["fault"], c["rem"], c["outcome"]) for c in CELL.finditer(m["cells"])])
            for m in FINDING.finditer(text)]


def test_the_readme_findings_hold_in_the_pinned_matrix() -> None:
    findings = _findings()
    assert len(findings) >= 5, "the README's findings lost their pinned cells"
    wrong = []
    for name, cells in findings:
        path = GOLDEN_DIR / f"{name}.json"
        assert path.exists(), f"README names {path.name}, which does not exist"
        grid = json.loads(path.read_text())["cells"]
        assert cells, f"a README finding on {name} names no cell"
        for fault, rem, outcome in cells:
            faults = list(grid) if fault == "*" else [fault]
            for f in faults:
                if f not in grid or (rem != "*" and rem not in grid[f]):
                    wrong.append(f"{name}: README names {f} × {rem}, which is not pinned")
                    continue
                for r in (list(grid[f]) if rem == "*" else [rem]):
                    seen = grid[f][r]
                    wild = "*" in (fault, rem)
                    if seen != outcome and not (wild and (outcome, seen) in COMPATIBLE):
                        wrong.append(f"{name}: {f} × {r} is {seen}, README says {outcome}")
    assert not wrong, "README findings that the pinned matrix contradicts:\n" + "\n".join(wrong)
