"""The lab against real FreeRDP 2.11: xfreerdp against the emulated host, the probe against
freerdp-shadow-cli. These are the checks that keep the emulation honest."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.freerdp import run_xfreerdp
from harness.pki import KeyPair
from harness.probe.profiles import load_profile
from harness.probe.runner import ProbeOptions, ProbeTarget, run_probe
from harness.shadow import ShadowServer
from tests.helpers import PASSWORD, USER, broken_key_policy, policy_for, running_host

pytestmark = [pytest.mark.freerdp, pytest.mark.xdist_group("freerdp")]


def _xfreerdp(port: int, display: str, **kw: object) -> int:
    run = run_xfreerdp("localhost", port, display=display, username=USER,
                       password=str(kw.pop("password", PASSWORD)), timeout=20, **kw)  # type: ignore[arg-type]
    return run.exit_code


# -- xfreerdp /auth-only against the emulated host --------------------------------------------


def test_xfreerdp_nla_reaches_activation(xfreerdp: str, xdisplay: str, host_pair: KeyPair) -> None:
    with running_host(policy_for(host_pair)) as (host, _):
        assert _xfreerdp(host.address[1], xdisplay) == 0
        assert host.stats.activated == 1


def test_xfreerdp_tls_only_reaches_activation(xfreerdp: str, xdisplay: str,
                                              host_pair: KeyPair) -> None:
    with running_host(policy_for(host_pair, user_authentication=False)) as (host, _):
        assert _xfreerdp(host.address[1], xdisplay, security="tls") == 0
        assert host.stats.activated == 1


def test_xfreerdp_tls_only_against_nla_host_is_133(xfreerdp: str, xdisplay: str,
                                                   host_pair: KeyPair) -> None:
    with running_host(policy_for(host_pair)) as (host, _):
        assert _xfreerdp(host.address[1], xdisplay, security="tls") == 133


def test_xfreerdp_cert_deny_trusts_the_lab_ca(xfreerdp: str, xdisplay: str, host_pair: KeyPair,
                                              cert_files: dict[str, Path]) -> None:
    """The control for the expired case: the same trust set-up accepts a valid certificate."""
    with running_host(policy_for(host_pair)) as (host, _):
        assert _xfreerdp(host.address[1], xdisplay, cert="deny", cafile=cert_files["ca"]) == 0


def test_xfreerdp_expired_certificate_is_143(xfreerdp: str, xdisplay: str, expired_pair: KeyPair,
                                             cert_files: dict[str, Path]) -> None:
    with running_host(policy_for(expired_pair)) as (host, _):
        assert _xfreerdp(host.address[1], xdisplay, cert="deny", cafile=cert_files["ca"]) == 143


def test_xfreerdp_unreadable_key_is_143(xfreerdp: str, xdisplay: str, host_pair: KeyPair) -> None:
    with running_host(broken_key_policy(host_pair)) as (host, log):
        assert _xfreerdp(host.address[1], xdisplay) == 143
    assert any(e.event_id == 36870 for e in log)


def test_xfreerdp_mismatched_key_is_143(xfreerdp: str, xdisplay: str, host_pair: KeyPair,
                                        other_pair: KeyPair, tmp_path: Path) -> None:
    from dataclasses import replace

    from harness.host.credentials import file_credential

    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_bytes(host_pair.cert_pem)
    key.write_bytes(other_pair.key_pem)  # a real key, but not this certificate's
    policy = replace(policy_for(host_pair), load_credential=lambda: file_credential(cert, key))
    with running_host(policy) as (host, log):
        assert _xfreerdp(host.address[1], xdisplay) == 143
    assert any("does not match" in str(e.detail.get("reason")) for e in log)


def test_xfreerdp_wrong_password_fails(xfreerdp: str, xdisplay: str, host_pair: KeyPair) -> None:
    with running_host(policy_for(host_pair)) as (host, _):
        code = _xfreerdp(host.address[1], xdisplay, password="wrong")
    assert code == 134  # ERRCONNECT_LOGON_FAILURE, as the freerdp2 profile predicts
    row = load_profile("freerdp2").codes_for("credssp", "logon_failure")
    assert row["exit"] == code


def test_xfreerdp_and_the_probe_agree_on_a_denied_connection(
    xfreerdp: str, xdisplay: str, host_pair: KeyPair
) -> None:
    """Server denies after MCS with error info 7: the freerdp2 profile must predict xfreerdp."""
    with running_host(policy_for(host_pair, deny_error_info=7)) as (host, _):
        code = _xfreerdp(host.address[1], xdisplay)
        result = run_probe(ProbeTarget("localhost", host.address[1], USER, PASSWORD),
                           ProbeOptions(load_profile("freerdp2"), cert_policy="ignore",
                                        overall_timeout=15))
    assert result.failure is not None and result.failure.error_info == 7
    assert result.codes["freerdp2"]["exit"] == code


# -- the probe against freerdp-shadow-cli --------------------------------------------------------


def _probe_shadow(display: str, pair: KeyPair, ca: KeyPair, *, profile: str = "freerdp2",
                  password: str = PASSWORD, cert_policy: str | None = None,
                  key_pem: bytes | None = None):  # type: ignore[no-untyped-def]
    with ShadowServer(display, users={USER: PASSWORD}, cert_pem=pair.cert_pem,
                      key_pem=key_pem or pair.key_pem) as shadow:
        options = ProbeOptions(load_profile(profile), trust_pem=ca.cert_pem, overall_timeout=20,
                               cert_policy=cert_policy, usable_window=3)
        return run_probe(ProbeTarget("localhost", shadow.port, USER, password), options)


def test_probe_gets_a_usable_session_from_shadow(xdisplay: str, host_pair: KeyPair,
                                                 lab_ca: KeyPair) -> None:
    result = _probe_shadow(xdisplay, host_pair, lab_ca)
    assert result.ok, result.as_dict()
    assert result.update_bytes > 0
    credssp = next(s for s in result.stages if s.stage == "credssp")
    assert abs(credssp.detail["clock_skew_seconds"]) < 5


def test_probe_offering_only_tls_gets_hybrid_required(xdisplay: str, host_pair: KeyPair,
                                                      lab_ca: KeyPair) -> None:
    result = _probe_shadow(xdisplay, host_pair, lab_ca, profile="rdc-no-nla")
    assert result.failure is not None
    assert (result.failure.stage, result.failure.event) == (
        "negotiation", "failure:HYBRID_REQUIRED_BY_SERVER")
    assert result.codes["rdc-no-nla"]["disconnect"] == "0xB09"


def test_probe_sees_verify_error_10_for_an_expired_certificate(
    xdisplay: str, expired_pair: KeyPair, lab_ca: KeyPair
) -> None:
    result = _probe_shadow(xdisplay, expired_pair, lab_ca, cert_policy="strict")
    assert result.failure is not None
    assert (result.failure.stage, result.failure.event) == ("tls", "cert_rejected:10")


def test_probe_sees_a_tls_abort_for_a_broken_key(xdisplay: str, host_pair: KeyPair,
                                                 lab_ca: KeyPair) -> None:
    broken = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
    result = _probe_shadow(xdisplay, host_pair, lab_ca, key_pem=broken)
    assert result.failure is not None
    assert (result.failure.stage, result.failure.event) == ("tls", "closed"), result.as_dict()


def test_probe_fails_at_credssp_for_a_wrong_password(xdisplay: str, host_pair: KeyPair,
                                                     lab_ca: KeyPair) -> None:
    result = _probe_shadow(xdisplay, host_pair, lab_ca, password="wrong")
    assert result.failure is not None and result.failure.stage == "credssp"
