"""The snapshot lifecycle gives what fresh labs give, cell by cell, on the full default matrix
(loopback; tests/system/test_lifecycles_netns.py does the same on netns)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.net.state import STATE_ENV
from tests.lifecycles import compare_lifecycles


@pytest.mark.timeout(1800)  # the whole default matrix, twice
def test_snapshot_and_fresh_lifecycles_agree_on_loopback(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # a private state dir: a `down --all --force` in another test spares these labs
    monkeypatch.setenv(STATE_ENV, str(tmp_path / "state"))
    assert compare_lifecycles("loopback", tmp_path) >= 300
