"""A new backend and a new fault action need no change outside their own module and the
registry: both are defined here, registered, and run through the real CLI and cells."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.lab import registry
from harness.lab.definition import LabSpec
from harness.lab.loopback import LoopbackLab
from harness.matrix import cell as cell_module
from harness.matrix.cell import CellOptions, run_fault
from harness.pki import KeyPool
from harness.windows import faults

REPO = Path(__file__).resolve().parents[2]


class SlowLoopbackLab(LoopbackLab):
    """A 'new backend': loopback, but one lab at a time (say, a scarce resource)."""

    backend = "loopback-one"

    @classmethod
    def max_concurrent_labs(cls, spec: LabSpec) -> int | None:
        return 1


def disable_remote_desktop(node: Any, reason: str = "policy") -> None:
    """A 'new fault action': fDenyTSConnections set, recorded with a reason."""
    node.registry.set(r"HKLM\SYSTEM\CurrentControlSet\Control\Terminal Server",
                      "fDenyTSConnections", 1)


@pytest.fixture(autouse=True)
def key_pool():
    with KeyPool(3) as pool:
        yield pool


def test_a_backend_registered_by_name_runs_the_matrix(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(registry.BACKENDS, "loopback-one", f"{__name__}:SlowLoopbackLab")
    out = tmp_path / "m.json"
    status = main(["matrix", "--backend", "loopback-one", "--lab", "direct", "--jobs", "4",
                   "--faults", "expired-cert", "--remediations",
                   "renew-rdp-certificate,resync-clock", "--json", str(out)])
    err = capsys.readouterr().err
    assert status == 0, err
    assert "runs at most 1 lab(s) at once: --jobs 1" in err  # from the class, not the CLI
    doc = json.loads(out.read_text())
    assert {c["backend"] for c in doc["cells"]} == {"loopback-one"}
    assert {c["remediation"]: c["outcome"] for c in doc["cells"]} == {
        "renew-rdp-certificate": "fixed", "resync-clock": "not-fixed"}


def test_a_fault_action_registered_by_its_function_is_checked_and_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(faults.ACTIONS, "disable_remote_desktop", disable_remote_desktop)
    folder = tmp_path / "scenarios"
    shutil.copytree(REPO / "scenarios", folder)
    text = (folder / "expired-cert.yaml").read_text()
    fault = text.replace("id: expired-cert", "id: rdp-off").replace(
        "action: expire_rdp_certificate, args: {days_ago: 30}",
        "action: disable_remote_desktop, args: {reason: 'a GPO'}")
    fault = fault.split("expected:", 1)[0] + (
        "expected:\n  mstsc-win11: {symptom: tcp/refused, provenance: doc}\ntags: [host]\n")
    (folder / "rdp-off.yaml").write_text(fault)
    monkeypatch.setattr(cell_module, "_catalogs", {})
    opts = CellOptions(lab="direct", backend="loopback", scenarios=str(folder),
                       journal_dir=str(tmp_path / "journals"))
    cells = run_fault(opts, "rdp-off", ["restart-rdp-service", "resync-clock"])
    assert [c.symptoms["mstsc-win11"] for c in cells] == ["tcp/refused", "tcp/refused"]
    assert [c.outcome for c in cells] == ["not-fixed", "not-fixed"], [c.reason for c in cells]
    journal = json.loads(Path(cells[1].journal or "").read_text())
    inject = next(st for st in journal["stages"] if st["stage"] == "inject")
    assert inject["steps"] == ["host: disable_remote_desktop {'reason': 'a GPO'}"]
    assert journal["snapshot"]["name"] == "direct/rdp-off@reproduce"
    # the action's signature is its schema: a misspelt argument stops the catalog
    (folder / "rdp-off.yaml").write_text(fault.replace("reason:", "raeson:"))
    from harness.errors import ConfigError
    from harness.scenario.catalog import load_catalog

    with pytest.raises(ConfigError, match=r"rdp-off\.yaml:\d+: field 'inject\.0\.args\.raeson'"):
        load_catalog(folder)


def test_trainer_commands_take_their_backends_from_the_registry(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`up` and `classroom` offer every registered backend that can stay up under a supervisor,
    and a backend's own `lacks` decides which faults it can be broken with."""
    from harness.training.bringup import resolve_backend_here
    from harness.training.classroom import eligible_faults
    from harness.training.errors import TrainingError

    monkeypatch.setitem(registry.BACKENDS, "loopback-one", f"{__name__}:SlowLoopbackLab")
    assert "loopback-one" in registry.choices(trainable=True)
    assert "vagrant" not in registry.choices(trainable=True)
    assert resolve_backend_here("loopback-one") == "loopback-one"
    with pytest.raises(TrainingError, match="does not run trainer labs"):
        resolve_backend_here("vagrant")
    # SlowLoopbackLab inherits loopback's lacks('netns'): no kernel-network fault is drawn
    drawn = eligible_faults("default", "loopback-one", None)
    assert "firewall-block-drop" not in drawn and "expired-cert" in drawn
    with pytest.raises(TrainingError, match="kernel network faults"):
        eligible_faults("default", "loopback-one", ["firewall-block-drop"])
