"""How the matrix orders and splits its work: longest first, by recorded durations."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from harness.matrix import durations
from harness.matrix.runner import work_units
from harness.scenario.catalog import load_catalog


@dataclass
class _Cell:
    fault: str
    seconds: float


def _pairs(faults: list[str], remediations: list[str]) -> list[tuple[str, str]]:
    return [(f, r) for f in faults for r in remediations]


def test_waiting_faults_go_first_without_history() -> None:
    catalog = load_catalog()
    faults = ["expired-cert", "stuck-session", "server-denied", "firewall-block-drop"]
    units = work_units(catalog, _pairs(faults, ["a", "b", "c", "d"]), jobs=4)
    seen = list(dict.fromkeys(f for f, _ in units))
    assert set(seen[:2]) == {"stuck-session", "firewall-block-drop"}
    assert sorted(r for f, rs in units if f == "stuck-session" for r in rs) == list("abcd")


def test_recorded_costs_put_the_longest_unit_first() -> None:
    catalog = load_catalog()
    faults = ["expired-cert", "stuck-session", "server-denied", "firewall-block-drop"]
    costs = {"expired-cert": 0.02, "stuck-session": 0.5, "server-denied": 0.01,
             "firewall-block-drop": 1.0}
    units = work_units(catalog, _pairs(faults, list("abcdefgh")), jobs=4, costs=costs)
    estimates = [costs[f] * len(rs) for f, rs in units]
    assert estimates == sorted(estimates, reverse=True)
    assert units[0][0] == "firewall-block-drop"
    cells = sorted((f, r) for f, rs in units for r in rs)
    assert cells == sorted(_pairs(faults, list("abcdefgh")))  # every cell exactly once


def test_durations_round_trip_and_survive_a_damaged_file(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    durations.record("default", "netns", "snapshot",
                     [_Cell("x", 1.0), _Cell("x", 3.0), _Cell("y", 0.5)], path)
    assert durations.per_cell_seconds("default", "netns", "snapshot", path) == {"x": 2.0,
                                                                                 "y": 0.5}
    assert durations.per_cell_seconds("default", "loopback", "snapshot", path) == {}
    path.write_text("{not json")
    assert durations.per_cell_seconds("default", "netns", "snapshot", path) == {}
    path.write_text(json.dumps({"default|netns|snapshot|x": "slow", "k": -1}))
    assert durations.per_cell_seconds("default", "netns", "snapshot", path) == {}
    durations.record("default", "netns", "snapshot", [_Cell("z", 0.1)], path)
    assert durations.per_cell_seconds("default", "netns", "snapshot", path) == {"z": 0.1}
