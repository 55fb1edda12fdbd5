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
