"""A probe through the RD Gateway returns only after the gateway has logged the end of its
tunnel (event 303): what a connection writes belongs to the stage that made it."""

from __future__ import annotations

from harness.lab.definition import load_lab
from harness.lab.factory import LabHandle
from harness.pki import KeyPool
from harness.probe.profiles import load_profile


def test_the_gateway_logged_the_disconnect_before_the_probe_returned() -> None:
    spec = load_lab("default")
    assert spec.has_gateway
    with KeyPool(2), LabHandle(spec, "loopback") as lab:
        gateway = lab.nodes["gateway"]
        for attempt in range(5):  # a race shows within a few tries when nothing waits
            before = len(gateway.eventlog.query(event_id=303))
            result = lab.probe(load_profile(spec.profile), usable_window=1.5)
            assert result.ok, result.as_dict()
            after = len(gateway.eventlog.query(event_id=303))
            assert after == before + 1, f"try {attempt}: no 303 yet when the probe returned"


def test_a_client_that_gives_up_on_its_out_channel_ends_the_gateway_connection() -> None:
    """The web client needs a WebSocket; refused one (the HTTP transport's 200), it closes. The
    gateway's parked OUT channel ends then, not after its 10 s wait for an IN channel."""
    spec = load_lab("default")
    with KeyPool(2), LabHandle(spec, "loopback") as lab:
        lab.inject("gateway", "disable_firewall_group", {"group": "Remote Desktop (WebSocket)"})
        lab.sync()
        result = lab.probe(load_profile("rd-web-client"), usable_window=1.5)
        assert result.symptom == "gateway_http/websocket_refused", result.as_dict()
        server = lab.gateway_server
        assert server is not None
        notes = [entry.message for entry in server.log]
        assert "RDG_OUT_DATA closed before its RDG_IN_DATA came" in notes, notes
