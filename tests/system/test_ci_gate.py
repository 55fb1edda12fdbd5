"""The CI front end as a pipeline uses it, through the CLI: the regression gate catches an
emptied remediation script (exit 3, JUnit failure), `rdplab diff` of two identical runs is
clean and stable, `--fail-on` chooses the failing outcomes, and shards merge into the full
run's document."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FAULTS = "expired-cert,server-denied"
REMEDIATIONS = "renew-rdp-certificate,resync-clock,disable-nla"


def rdplab(*args: str | Path, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "80"}
    return subprocess.run([sys.executable, "-m", "harness.cli", *map(str, args)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=600)


def matrix(out: Path, *extra: str | Path) -> subprocess.CompletedProcess[str]:
    # a generous stage cap: these faults do not wait on timeouts, and a loaded CI machine
    # must not turn a slow handshake into a lab error
    return rdplab("matrix", "--lab", "direct", "--backend", "loopback", "--jobs", "2",
                  "--stage-timeout", "5", "--faults", FAULTS, "--remediations", REMEDIATIONS,
                  "--json", out, *extra)


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("baseline") / "baseline.json"
    run = matrix(out)
    assert run.returncode == 0, run.stderr
    return out


def test_an_emptied_fix_trips_the_gate_with_exit_3_and_a_junit_failure(
        baseline: Path, tmp_path: Path) -> None:
    scenarios = tmp_path / "scenarios"
    shutil.copytree(REPO / "scenarios", scenarios)
    (scenarios / "remediations" / "renew-rdp-certificate.ps1").write_text("")
    junit = tmp_path / "junit.xml"
    run = matrix(tmp_path / "now.json", "--scenarios", scenarios, "--baseline", baseline,
                 "--junit", junit)
    assert run.returncode == 3, run.stdout + run.stderr
    assert "expired-cert × renew-rdp-certificate: fixed → not-fixed" in run.stdout
    assert "expired-cert: was fixed by renew-rdp-certificate; now nothing fixes it" in run.stdout
    suite = ET.parse(junit).getroot()
    assert suite.get("failures") == "1"
    failed = [(c.get("classname"), c.get("name")) for c in suite.iter("testcase")
              if c.find("failure") is not None]
    assert failed == [("matrix.expired-cert", "renew-rdp-certificate")]
    assert "regression" in suite.find(".//failure").get("message")  # type: ignore[union-attr]
    # The same comparison for people, from the two documents.
    diff = rdplab("diff", baseline, tmp_path / "now.json")
    assert diff.returncode == 3
    assert "expired-cert × renew-rdp-certificate: fixed → not-fixed" in diff.stdout


def test_the_unchanged_scenarios_pass_the_gate_and_identical_runs_diff_clean(
        baseline: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.json"
    run = matrix(again, "--baseline", baseline)
    assert run.returncode == 0, run.stdout + run.stderr
    shutil.copy(baseline, tmp_path / "base.json")
    diff = rdplab("diff", "base.json", "again.json", cwd=tmp_path)
    assert diff.returncode == 0, diff.stdout
    assert "no regression; 6 cells compared, 6 unchanged" in diff.stdout
    assert "/" not in diff.stdout and "seconds" not in diff.stdout
    assert len(diff.stdout.splitlines()) == 3  # both sides and the verdict: no noise


def test_fail_on_chooses_the_outcomes_that_fail_a_plain_run(baseline: Path,
                                                            tmp_path: Path) -> None:
    doc = json.loads(baseline.read_text())
    assert "not-fixed" in {c["outcome"] for c in doc["cells"]}  # resync-clock fixes neither
    strict = matrix(tmp_path / "s.json", "--fail-on", "not-fixed,lab-error,not-emulated")
    assert strict.returncode == 1 and "outcome in --fail-on" in strict.stderr
    bad = matrix(tmp_path / "b.json", "--fail-on", "broken")
    assert bad.returncode == 2 and "unknown outcome" in bad.stderr
    assert not (tmp_path / "b.json").exists()


def test_shards_merge_into_the_full_runs_document(baseline: Path, tmp_path: Path) -> None:
    parts = []
    for k in (1, 2, 3):
        part = tmp_path / f"part{k}.json"
        run = matrix(part, "--shard", f"{k}/3")
        assert run.returncode == 0, run.stderr
        parts.append(part)
    sizes = [len(json.loads(p.read_text())["cells"]) for p in parts]
    assert sorted(sizes) == [2, 2, 2]
    merged = tmp_path / "all.json"
    run = rdplab("merge", *parts[::-1], "--json", merged, "--baseline", baseline)
    assert run.returncode == 0, run.stdout + run.stderr
    full, joined = json.loads(baseline.read_text()), json.loads(merged.read_text())
    assert set(joined) == set(full) - {"shard"}
    for key in ("lab", "remediations"):
        assert joined[key] == full[key]
    assert [f["id"] for f in joined["faults"]] == [f["id"] for f in full["faults"]]
    assert [f["codes"] for f in joined["faults"]] == [f["codes"] for f in full["faults"]]
    strip = [{k: c[k] for k in ("fault", "remediation", "outcome")} for c in full["cells"]]
    assert [{k: c[k] for k in ("fault", "remediation", "outcome")}
            for c in joined["cells"]] == strip
    missing = rdplab("merge", parts[0], parts[2], "--json", tmp_path / "x.json")
    assert missing.returncode == 2 and "shard(s) 2 of 3 missing" in missing.stderr
