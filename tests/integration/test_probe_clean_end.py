"""The probe ends a usable session as real clients do: an MCS Disconnect Provider Ultimatum and
a TLS close_notify, which the host sees as the client's own disconnect (rdp-facts §10.1)."""

from __future__ import annotations

import logging
import time

import pytest

from harness.pki import KeyPair
from harness.probe.profiles import load_profile
from harness.probe.runner import ProbeOptions, ProbeTarget, run_probe
from tests.helpers import PASSWORD, USER, policy_for, running_host


@pytest.mark.parametrize("nla", [True, False])
def test_usable_session_ends_with_an_ultimatum(nla: bool, host_pair: KeyPair, lab_ca: KeyPair,
                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="rdplab.host")
    profile = load_profile("mstsc-win11" if nla else "freerdp2")
    if not nla:
        profile = profile.with_overrides(requested_protocols=1)
    with running_host(policy_for(host_pair, user_authentication=nla)) as (host, _):
        result = run_probe(ProbeTarget("127.0.0.1", host.address[1], USER, PASSWORD),
                           ProbeOptions(profile, trust_pem=lab_ca.cert_pem, overall_timeout=10))
        assert result.ok, result.failure
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and "ended:" not in caplog.text:
            time.sleep(0.05)
    ended = [r.getMessage() for r in caplog.records if "ended:" in r.getMessage()]
    assert ended and ended[-1].endswith("client sent Disconnect Provider Ultimatum"), ended
