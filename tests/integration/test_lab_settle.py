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
