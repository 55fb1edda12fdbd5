"""The probe against the emulated host with SecurityLayer 0 (Standard RDP Security), over real
sockets: every profile that real clients back retries without TLS after
SSL_NOT_ALLOWED_BY_SERVER, as mstsc does in zeek's rdp-proprietary-encryption trace, and gets
a usable session; with NLA required the listener still has no CredSSP (rdp-facts §14)."""

from __future__ import annotations

import pytest

from harness.pki import KeyPair
from tests.helpers import policy_for, running_host
from tests.integration.test_probe_host import fast_profile, probe


@pytest.mark.parametrize("profile", ["freerdp2", "mstsc-win11", "rdc-no-nla"])
@pytest.mark.parametrize("nla", [False, True])
def test_probe_retries_with_rdp_security_to_a_usable_session(host_pair: KeyPair, lab_ca: KeyPair,
                                                             profile: str, nla: bool) -> None:
    policy = policy_for(host_pair, security_layer=0, user_authentication=nla)
    with running_host(policy) as (host, log):
        result = probe(host.address[1], fast_profile(profile), lab_ca)
    assert result.ok, (result.failure, [s.as_dict() for s in result.stages])
    outcomes = [(s.stage, s.outcome) for s in result.stages]
    assert outcomes[:3] == [("tcp", "ok"), ("negotiation", "retried"), ("tcp", "ok")]
    assert result.stages[1].detail["reason"].endswith("SSL_NOT_ALLOWED_BY_SERVER")
    assert any(e.message.startswith("Security Exchange") for e in log)


def test_a_profile_without_rdp_security_reports_the_refusal(host_pair: KeyPair,
                                                            lab_ca: KeyPair) -> None:
    from dataclasses import replace

    profile = replace(fast_profile("freerdp2"), rdp_security=False)
    with running_host(policy_for(host_pair, security_layer=0, user_authentication=False)) as (
            host, _):
        result = probe(host.address[1], profile, lab_ca)
    assert result.symptom == "negotiation/failure:SSL_NOT_ALLOWED_BY_SERVER"
    assert result.codes["freerdp2"]["exit"] == 133
