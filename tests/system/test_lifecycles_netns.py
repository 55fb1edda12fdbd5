"""The snapshot lifecycle gives what fresh labs give, cell by cell, on the full default matrix
on the netns backend: the restored model, and the kernel state derived from it (listener,
firewall, MTU, hosts file, path faults), behave as a fresh lab's."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.net import netns_available
from harness.net.state import STATE_ENV
from tests.lifecycles import compare_lifecycles

OK, WHY = netns_available()
pytestmark = [pytest.mark.netns,
              pytest.mark.skipif(not OK, reason=f"network namespaces unavailable: {WHY}")]


@pytest.mark.timeout(1800)  # the whole default matrix, twice
def test_snapshot_and_fresh_lifecycles_agree_on_netns(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # a private state dir: a `down --all --force` in another test spares these labs
    monkeypatch.setenv(STATE_ENV, str(tmp_path / "state"))
    assert compare_lifecycles("netns", tmp_path) >= 300
