"""Adaptive waits: TURN_FACTOR x the slowest answer seen, within [floor, limit]."""

from __future__ import annotations

import pytest

from harness.probe.profiles import load_profile
from harness.probe.runner import ProbeOptions, ProbeTarget, _Run
from harness.rdp.waits import TURN_FACTOR, adaptive_limit


def test_without_a_floor_the_limit_stands() -> None:
    assert adaptive_limit(2.0, None, 0.5) == 2.0


@pytest.mark.parametrize(("turn", "expected"), [(0.0, 0.5), (0.001, 0.5), (0.08, 0.8),
                                                (1.0, 2.0)])
def test_the_wait_scales_with_the_slowest_turn(turn: float, expected: float) -> None:
    assert adaptive_limit(2.0, 0.5, turn) == pytest.approx(expected)
    assert TURN_FACTOR == 10.0


def _run(floor: float | None) -> _Run:
    options = ProbeOptions(load_profile("mstsc-win11"), usable_window=1.5, adaptive_floor=floor)
    return _Run(ProbeTarget("h", 3389, "u", "p", "d"), options)


def test_probe_stages_adapt_only_after_a_round_trip_was_measured() -> None:
    run = _run(0.5)
    tls = run.options.profile.timeout("tls")
    assert run.stage_limit("tls") == tls  # nothing measured yet: the profile's limit
    assert run.stage_limit("usable") == 0.5  # graphics: the floor until a turn is measured
    run.slowest_turn = 0.12
    assert run.stage_limit("tls") == pytest.approx(1.2)
    assert run.stage_limit("usable") == pytest.approx(1.2)
    run.slowest_turn = 5.0
    assert run.stage_limit("usable") == 1.5 and run.stage_limit("tls") == tls


def test_the_cli_probe_keeps_fixed_limits() -> None:
    run = _run(None)
    run.slowest_turn = 0.001
    assert run.stage_limit("usable") == 1.5
    assert run.stage_limit("credssp") == run.options.profile.timeout("credssp")


def test_the_floor_grows_with_the_run_queue() -> None:
    from harness.matrix.cell import contention

    assert contention("0.20 0.30 0.40 1/200 99", cores=2) == 1.0  # quiet: the floor as set
    assert contention("9.00 5.00 2.00 2/300 99", cores=2) == 4.5  # busy for a minute
    assert contention("0.50 0.40 0.30 13/300 99", cores=2) == 6.0  # busy now: 12 others
    assert contention("garbage", cores=2) == 1.0
    assert contention() >= 1.0  # this machine, now

