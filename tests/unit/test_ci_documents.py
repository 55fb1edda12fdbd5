"""The regression gate, shards and merge on matrix documents (no lab: documents built here)."""

from __future__ import annotations

import pytest

from harness.ci.compare import compare, format_comparison
from harness.ci.document import DocumentError, outcomes
from harness.ci.golden import differences, dumps, golden_document
from harness.ci.merge import merge_documents
from harness.ci.policy import parse_fail_on
from harness.ci.shard import _units, parse_shard, plan, unit_cost
from harness.scenario.catalog import load_catalog


def _doc(grid: dict[tuple[str, str], str], lab: str = "default") -> dict:
    faults = list(dict.fromkeys(f for f, _ in grid))
    rems = list(dict.fromkeys(r for _, r in grid))
    return {"lab": {"name": lab, "profile": "mstsc-win11", "code_profiles": []},
            "faults": [{"id": f, "title": f, "codes": {}, "claimed": {}, "provenance": {}}
                       for f in faults],
            "remediations": [{"id": r, "title": r, "node": "host", "weakens_security": False}
                             for r in rems],
            "cells": [{"fault": f, "remediation": r, "outcome": o, "backend": "loopback",
                       "journal": f"/tmp/x/{f}__{r}.json", "reason": "r", "seconds": 0.1}
                      for f in faults for r in rems if (o := grid.get((f, r)))]}


BASE = {("expired", "renew"): "fixed", ("expired", "restart"): "fixed",
        ("acl", "renew"): "not-fixed", ("acl", "reset"): "fixed-weakens-security",
        ("expired", "reset"): "not-fixed", ("acl", "restart"): "not-fixed"}


def test_identical_documents_compare_clean_and_the_text_has_no_paths_or_timings() -> None:
    cmp = compare(outcomes(_doc(BASE)), outcomes(_doc(BASE)))
    assert not cmp.regressed and cmp.compared == 6
    text = format_comparison(cmp)
    assert "no regression" in text and "/tmp" not in text and "0.1" not in text


def test_a_fixed_cell_that_is_not_any_more_is_a_regression_naming_the_cell() -> None:
    new = {**BASE, ("expired", "renew"): "not-fixed", ("acl", "renew"): "fixed"}
    cmp = compare(outcomes(_doc(BASE)), outcomes(_doc(new)))
    assert cmp.regressed
    assert [(c.fault, c.remediation, c.before, c.after) for c in cmp.regressions] == [
        ("expired", "renew", "fixed", "not-fixed")]
    assert [(c.fault, c.remediation) for c in cmp.changes] == [("acl", "renew")]  # improvement
    assert not cmp.lost_last_fix
    assert "expired × renew: fixed → not-fixed" in format_comparison(cmp)


def test_weakens_security_to_lab_error_regresses_and_the_fault_lost_its_last_fix() -> None:
    new = {**BASE, ("acl", "reset"): "lab-error"}
    cmp = compare(outcomes(_doc(BASE)), outcomes(_doc(new)))
    assert cmp.lost_last_fix == {"acl": ["reset"]}
    assert "acl: was fixed by reset; now nothing fixes it" in format_comparison(cmp)


def test_a_removed_remediation_that_was_the_last_fix_regresses_its_fault() -> None:
    new = {k: v for k, v in BASE.items() if k[1] != "reset"}
    cmp = compare(outcomes(_doc(BASE)), outcomes(_doc(new)))
    assert cmp.removed_remediations == ["reset"] and cmp.lost_last_fix == {"acl": ["reset"]}


def test_new_faults_and_remediations_are_listed_not_failures() -> None:
    new = {**BASE, ("dns", "renew"): "not-fixed", ("dns", "flush"): "not-fixed",
           ("expired", "flush"): "not-fixed", ("acl", "flush"): "not-fixed",
           ("dns", "restart"): "not-fixed", ("dns", "reset"): "not-fixed"}
    cmp = compare(outcomes(_doc(BASE)), outcomes(_doc(new)))
    assert not cmp.regressed
    assert cmp.new_faults == ["dns"] and cmp.new_remediations == ["flush"]
    assert "new faults (1):\n  dns" in format_comparison(cmp)


def test_a_golden_file_compares_like_a_document_and_is_stable() -> None:
    doc = _doc(BASE)
    golden = golden_document(doc, "loopback")
    assert "/tmp" not in dumps(golden) and "seconds" not in dumps(golden)
    assert golden["cells"]["acl"]["reset"] == "fixed-weakens-security"
    assert differences(outcomes(golden), outcomes(doc)) == []
    changed = _doc({**BASE, ("expired", "renew"): "not-fixed"})
    assert differences(outcomes(golden), outcomes(changed)) == [
        "expired × renew: pinned fixed, ran not-fixed (r)"]


def test_bad_documents_and_policies_are_clear_errors() -> None:
    with pytest.raises(DocumentError, match="unknown outcome 'broken'"):
        outcomes(_doc({("a", "b"): "broken"}))
    with pytest.raises(ValueError, match="unknown outcome"):
        parse_fail_on("not-fixed,bogus")
    assert parse_fail_on(None) == ("lab-error",)
    assert parse_fail_on("none") == ()
    assert parse_fail_on("not-fixed, lab-error") == ("not-fixed", "lab-error")
    for bad in ("3", "0/2", "3/2", "a/b", ""):
        with pytest.raises(ValueError):
            parse_shard(bad)


def test_shards_cover_every_cell_once_deterministically_and_balanced() -> None:
    catalog = load_catalog()
    pairs = [(f, r) for f in catalog.faults for r in catalog.remediations]
    for n in (1, 2, 3, 4, 7, 40):
        parts = plan(catalog, pairs, n)
        assert sorted(p for part in parts for p in part) == sorted(pairs)
        assert parts == plan(catalog, pairs, n)
        assert all(parts), "an empty shard"
        units = _units(catalog, pairs, n)
        costs = [sum(unit_cost(catalog, u) for u in units if u[0] in part) for part in parts]
        assert max(costs) - min(costs) <= max(unit_cost(catalog, u) for u in units), costs


def test_merge_gives_the_single_run_document_and_refuses_parts_that_do_not_fit() -> None:
    full = _doc(BASE)
    cells = full["cells"]
    parts = []
    for k, chunk in enumerate((cells[:2], cells[2:5], cells[5:]), 1):
        part = {**full, "cells": chunk, "shard": {"index": k, "of": 3},
                "timing": {"total_seconds": 1.0, "jobs": 2}}
        parts.append((f"part{k}.json", part))
    merged = merge_documents(parts[::-1])
    assert merged["cells"] == cells and merged["faults"] == full["faults"]
    assert "shard" not in merged and merged["timing"]["jobs"] == 6
    with pytest.raises(DocumentError, match=r"shard\(s\) 2 of 3 missing"):
        merge_documents([parts[0], parts[2]])
    with pytest.raises(DocumentError, match="again"):
        merge_documents([parts[0], parts[0], parts[1], parts[2]])
    other = ("other.json", {**parts[1][1], "lab": {"name": "legacy"}})
    with pytest.raises(DocumentError, match="lab 'legacy'"):
        merge_documents([parts[0], other, parts[2]])
