"""Real xfreerdp 2.11 through an RD Gateway it cannot reach, next to the freerdp2 profile's
prediction: a gateway that drops the SYN (CONNECT_FAILED, 141), one that resets it
(TLS_CONNECT_FAILED, 143), and a client whose own stack stops the connect (an outbound filter,
a corrupt Winsock catalog: the client namespace's output hook drops it, 141)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from harness.lab.contract import LabBackend
from harness.lab.definition import load_lab
from harness.lab.factory import LabHandle, netns_reason
from harness.matrix.realclient import compare_with_xfreerdp
from harness.net import apply_firewall_ports
from harness.pki import KeyPool

WHY = netns_reason()
pytestmark = [pytest.mark.freerdp, pytest.mark.netns, pytest.mark.xdist_group("freerdp"),
              pytest.mark.skipif(WHY is not None, reason=f"netns unavailable: {WHY}"),
              pytest.mark.skipif(shutil.which("xfreerdp") is None,
                                 reason="xfreerdp is not installed (freerdp2-x11)")]


@pytest.fixture
def lab() -> Iterator[LabBackend]:
    with KeyPool(2), LabHandle(load_lab("default"), "netns") as lab:
        yield lab


def _agree(lab: LabBackend, label: str) -> dict[str, object]:
    run = compare_with_xfreerdp(lab, "test", label, "")
    assert run["agree"] is True, run
    return run


@pytest.mark.parametrize(("action", "exit_code", "symptom"),
                         [("drop", 141, "gateway_tcp/timeout"),
                          ("reject", 143, "gateway_tcp/refused")])
def test_a_gateway_that_drops_or_resets_the_syn(lab: LabBackend, action: str, exit_code: int,
                                                symptom: str) -> None:
    lab.sync()
    apply_firewall_ports(lab.net, {443: action}, node="gateway")  # type: ignore[attr-defined]
    run = _agree(lab, f"gateway 443 {action}")
    assert (run["xfreerdp_exit"], run["probe_symptom"]) == (exit_code, symptom)


@pytest.mark.parametrize(("action", "args", "symptom"),
                         [("set_firewall_outbound_default", {"action": "Block"},
                           "gateway_tcp/blocked"),
                          ("corrupt_winsock", {}, "gateway_tcp/socket_error")])
def test_the_client_stack_stops_xfreerdp_as_it_stops_the_probe(
        lab: LabBackend, action: str, args: dict[str, object], symptom: str) -> None:
    assert _agree(lab, "clean")["xfreerdp_exit"] == 0
    lab.inject("client", action, args)
    lab.sync()
    run = _agree(lab, action)
    assert (run["xfreerdp_exit"], run["probe_symptom"]) == (141, symptom)


def test_a_fault_that_breaks_nothing_keeps_its_xfreerdp_run_and_a_random_path_is_not_compared(
        ) -> None:
    """1 % loss leaves a usable session (not-broken: the cells end in the shared stages); the
    reproduce stage's real xfreerdp run is still in every cell, recorded and not compared."""
    from pathlib import Path

    from harness.matrix.cell import CellOptions
    from harness.matrix.runner import run_matrix
    from harness.scenario.catalog import load_catalog

    catalog = load_catalog().select(["vpn-packet-loss@1pct"], ["reconnect-vpn", "resync-clock"])
    opts = CellOptions(lab=str(Path(__file__).resolve().parents[2] / "labs" / "default.yaml"),
                       backend="netns", with_xfreerdp=True)
    with KeyPool(2):
        result = run_matrix(opts, catalog, jobs=1)
    assert {c.outcome for c in result.cells} == {"not-broken"}
    for cell in result.cells:
        assert [x["step"] for x in cell.xfreerdp] == ["reproduce"]
        run = cell.xfreerdp[0]
        assert run["remediation"] == cell.remediation
        assert run["agree"] is None and "loss_pct 1" in run["not_compared"], run
    assert result.disagreements() == []
