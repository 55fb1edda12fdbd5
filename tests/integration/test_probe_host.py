"""The probe against the emulated host on loopback: every host policy and every client profile.

Each case asserts what the probe actually saw on the wire (the stage and event of the first
failure, or a usable session with its details) and the codes the client profile derives from it.
Both ends are real code over real TCP sockets; only the policy and the profile change per case.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from harness.host.server import EmulatedHost, listen
from harness.pki import KeyPair
from harness.probe.profiles import ClientProfile, load_profile
from harness.probe.result import EXIT_BY_STAGE, EXIT_ERROR_INFO, EXIT_USABLE, ProbeResult
from harness.probe.runner import ProbeOptions, ProbeTarget, run_probe
from harness.rdp import events as ev
from harness.rdp import server as server_module
from harness.rdp.events import STAGES
from harness.rdp.phases import ServerPhase
from tests.helpers import PASSWORD, USER, broken_key_policy, policy_for, running_host

pytestmark = pytest.mark.timeout(60)

PROFILES = ("mstsc-win11", "mstsc-legacy-unpatched", "rdc-no-nla", "freerdp2")
FAST = 3.0  # seconds per stage: generous for loopback, short enough that a hang fails fast
NO_NLA = "negotiation/failure:HYBRID_REQUIRED_BY_SERVER"


def fast_profile(name: str, **changes: Any) -> ClientProfile:
    profile = load_profile(name)
    timeouts = {stage: min(seconds, FAST) for stage, seconds in profile.timeouts.items()}
    return profile.with_overrides(timeouts=timeouts, **changes)


def probe(port: int, profile: str | ClientProfile, ca: KeyPair, *, password: str = PASSWORD,
          host: str = "127.0.0.1", **options: Any) -> ProbeResult:
    prof = fast_profile(profile) if isinstance(profile, str) else profile
    opts: dict[str, Any] = {"trust_pem": ca.cert_pem, "overall_timeout": 15, "usable_window": 2}
    opts.update(options)
    return run_probe(ProbeTarget(host, port, USER, password), ProbeOptions(prof, **opts))


def outcome(result: ProbeResult) -> str:
    """'usable', 'usable+stage/event' (with a warning) or 'stage/event' of the failure."""
    if result.failure is not None:
        assert not result.ok
        return f"{result.failure.stage}/{result.failure.event}"
    assert result.ok, result.as_dict()
    return "usable" + (f"+{result.symptom}" if result.warnings else "")


def stage(result: ProbeResult, name: str) -> dict[str, Any]:
    records = [s for s in result.stages if s.stage == name]
    assert len(records) == 1, f"{name}: {result.as_dict()}"
    return records[0].detail


def codes(result: ProbeResult) -> dict[str, Any]:
    return result.codes[result.profile]


# -- usable sessions: every stage and what it settled ------------------------------------------


@pytest.mark.parametrize("profile", PROFILES)
def test_baseline_session_is_usable_with_full_detail(profile: str, host_pair: KeyPair,
                                                     lab_ca: KeyPair) -> None:
    nla = profile != "rdc-no-nla"
    policy = policy_for(host_pair, clock_offset=600, user_authentication=nla)
    with running_host(policy) as (host, _):
        result = probe(host.address[1], profile, lab_ca)
        assert host.stats.activated == 1
    assert result.ok and result.failure is None and not result.warnings, result.as_dict()
    assert result.exit_status() == EXIT_USABLE
    assert codes(result)["result"] == "connected"
    expected_stages = [s for s in STAGES if nla or s != "credssp"]
    assert [(s.stage, s.outcome) for s in result.stages] == [(s, "ok") for s in expected_stages]
    assert result.update_bytes >= load_profile(profile).usable_min_bytes

    selected = {"mstsc-win11": "HYBRID_EX", "mstsc-legacy-unpatched": "HYBRID",
                "rdc-no-nla": "SSL", "freerdp2": "HYBRID"}[profile]
    assert stage(result, "negotiation")["selected"] == selected

    tls = stage(result, "tls")
    assert tls["version"] == ("TLSv1.2" if profile == "mstsc-legacy-unpatched" else "TLSv1.3")
    assert tls["cipher"] and tls["cipher"] != "?"
    cert = tls["certificate"]
    served = host_pair.cert
    assert cert["subject"] == "CN=localhost"
    assert cert["issuer"] == "CN=rdplab test CA"
    assert dt.datetime.fromisoformat(cert["not_before"]) == served.not_valid_before_utc
    assert dt.datetime.fromisoformat(cert["not_after"]) == served.not_valid_after_utc
    der = served.public_bytes(serialization.Encoding.DER)
    assert cert["sha256"] == hashlib.sha256(der).hexdigest()
    assert cert["verify_errors"] == []

    if nla:
        credssp = stage(result, "credssp")
        assert credssp["version"] == (3 if profile == "mstsc-legacy-unpatched" else 6)
        assert credssp["server_version"] == 6
        assert credssp["ntlm_target"] == "LAB"
        assert credssp["ntlm_computer"] == "RDHOST"
        server_time = dt.datetime.fromisoformat(credssp["server_time"])
        now = dt.datetime.now(dt.UTC)
        assert abs((server_time - now).total_seconds() - 600) < 30
        assert abs(credssp["clock_skew_seconds"] - 600) < 5
    mcs = stage(result, "mcs")
    assert mcs["io_channel"] == 1003 and mcs["user_channel"] in mcs["channels"]
    assert stage(result, "licensing")["answer"] == "STATUS_VALID_CLIENT"
    assert stage(result, "finalisation")["received"] == ["cooperate", "fontmap", "granted",
                                                         "synchronize"]


def test_skew_follows_the_client_clock_too(host_pair: KeyPair, lab_ca: KeyPair) -> None:
    """Host +600 s and client +500 s: the skew is the difference, so it is measured, not copied."""
    with running_host(policy_for(host_pair, clock_offset=600)) as (host, _):
        result = probe(host.address[1], "freerdp2", lab_ca, clock_offset=500)
    assert result.ok, result.as_dict()
    assert abs(stage(result, "credssp")["clock_skew_seconds"] - 100) < 5


# -- every policy against every profile ------------------------------------------------------


def _matrix_policies(pair: KeyPair, expired: KeyPair) -> dict[str, Any]:
    return {
        "nla-host": policy_for(pair),
        "tls-only-host": policy_for(pair, user_authentication=False),
        "tls-layer-host": policy_for(pair, security_layer=2, user_authentication=False),
        "force-updated-clients": policy_for(pair, allow_encryption_oracle=0),
        "unpatched-host": policy_for(pair, credssp_version=3, allow_encryption_oracle=2),
        "tls10-only-host": policy_for(pair, tls_min="TLSv1", tls_max="TLSv1"),
        "denying-host": policy_for(pair, deny_error_info=7),
        "expired-cert": policy_for(expired),
        "broken-key": broken_key_policy(pair),
    }


# policy -> (mstsc-win11, mstsc-legacy-unpatched, rdc-no-nla, freerdp2)
EXPECTED = {
    "nla-host": ("usable", "usable", NO_NLA, "usable"),
    "tls-only-host": ("usable", "usable", "usable", "usable"),
    "tls-layer-host": ("usable", "usable", "usable", "usable"),
    "force-updated-clients": ("usable", "credssp/oracle_refused_by_server", NO_NLA, "usable"),
    "unpatched-host": ("credssp/oracle_refused_by_client", "usable", NO_NLA, "usable"),
    "tls10-only-host": ("tls/version_mismatch", "usable", NO_NLA, "tls/version_mismatch"),
    "denying-host": ("licensing/error_info:0x7", "licensing/error_info:0x7", NO_NLA,
                     "licensing/error_info:0x7"),
    "expired-cert": ("usable+tls/cert_prompt:10", "usable+tls/cert_prompt:10", NO_NLA,
                     "tls/cert_rejected:10"),
    "broken-key": ("tls/closed", "tls/closed", NO_NLA, "tls/closed"),
}


@pytest.mark.parametrize("policy_name", list(EXPECTED))
def test_policy_by_profile_matrix(policy_name: str, host_pair: KeyPair, expired_pair: KeyPair,
                                  lab_ca: KeyPair) -> None:
    policy = _matrix_policies(host_pair, expired_pair)[policy_name]
    with running_host(policy) as (host, log):
        got = tuple(outcome(probe(host.address[1], p, lab_ca)) for p in PROFILES)
        activated = host.stats.activated
    assert dict(zip(PROFILES, got, strict=True)) == dict(zip(PROFILES, EXPECTED[policy_name],
                                                            strict=True))
    assert activated == sum(o.startswith("usable") for o in got)
    if policy_name == "broken-key":
        assert sum(e.event_id == 36870 for e in log) == 3  # one per client that reached TLS


# -- the failures the issue names, with the codes each client shows ----------------------------


def test_nla_required_and_a_client_without_nla(host_pair: KeyPair, lab_ca: KeyPair) -> None:
    with running_host(policy_for(host_pair)) as (host, _):
        result = probe(host.address[1], "rdc-no-nla", lab_ca)
        reasons = list(host.stats.reasons)
    assert outcome(result) == NO_NLA
    assert result.failure is not None and result.failure.detail["failure_code"] == 5
    assert codes(result)["disconnect"] == "0xB09"
    assert result.exit_status() == EXIT_BY_STAGE["negotiation"]
    assert [s.stage for s in result.stages] == ["tcp", "negotiation"]
    assert reasons == ["negotiation: answered RDP_NEG_FAILURE HYBRID_REQUIRED_BY_SERVER"]


def test_tls_only_host_serves_a_client_without_nla(host_pair: KeyPair, lab_ca: KeyPair) -> None:
    with running_host(policy_for(host_pair, user_authentication=False)) as (host, _):
        result = probe(host.address[1], "rdc-no-nla", lab_ca)
    assert outcome(result) == "usable"
    assert stage(result, "negotiation") == {"requested": "SSL", "selected": "SSL"}
    assert "credssp" not in [s.stage for s in result.stages]


def test_tls_security_layer_refuses_a_client_offering_no_ssl(host_pair: KeyPair,
                                                            lab_ca: KeyPair) -> None:
    offers_rdp_only = fast_profile("rdc-no-nla", requested_protocols=0)
    policy = policy_for(host_pair, security_layer=2, user_authentication=False)
    with running_host(policy) as (host, _):
        result = probe(host.address[1], offers_rdp_only, lab_ca)
        control = probe(host.address[1], "rdc-no-nla", lab_ca)
    assert outcome(result) == "negotiation/failure:SSL_REQUIRED_BY_SERVER"
    assert result.failure is not None and result.failure.detail["failure_code"] == 1
    assert codes(result)["disconnect"] == "0x406"
    assert outcome(control) == "usable"


def test_expired_certificate_strict_refuses(expired_pair: KeyPair, lab_ca: KeyPair) -> None:
    with running_host(policy_for(expired_pair)) as (host, _):
        result = probe(host.address[1], "mstsc-win11", lab_ca, cert_policy="strict")
        assert host.stats.activated == 0
    assert outcome(result) == "tls/cert_rejected:10"
    assert codes(result)["disconnect"] == "0x1B07"
    assert result.exit_status() == EXIT_BY_STAGE["tls"]
    assert result.failure is not None
    errors = result.failure.detail["certificate"]["verify_errors"]
    assert errors == [{"code": 10, "message": "certificate has expired"}]


def test_expired_certificate_warn_connects_with_a_prompt(expired_pair: KeyPair,
                                                         lab_ca: KeyPair) -> None:
    with running_host(policy_for(expired_pair)) as (host, _):
        result = probe(host.address[1], "mstsc-win11", lab_ca, cert_policy="warn")
        assert host.stats.activated == 1
    assert outcome(result) == "usable+tls/cert_prompt:10"
    assert result.exit_status() == EXIT_USABLE
    assert codes(result)["prompt"].startswith("certificate warning")
    assert codes(result)["disconnect"] is None
    assert stage(result, "tls")["certificate"]["verify_errors"][0]["code"] == 10


def test_expired_certificate_ignore_connects_silently(expired_pair: KeyPair,
                                                      lab_ca: KeyPair) -> None:
    with running_host(policy_for(expired_pair)) as (host, _):
        result = probe(host.address[1], "mstsc-win11", lab_ca, cert_policy="ignore")
    assert outcome(result) == "usable"


def test_broken_key_aborts_tls_and_logs_36870(host_pair: KeyPair, lab_ca: KeyPair) -> None:
    with running_host(broken_key_policy(host_pair)) as (host, log):
        result = probe(host.address[1], "mstsc-win11", lab_ca)
        # the host logs after the probe has seen the abort; give its thread a bounded moment
        deadline = time.monotonic() + 2
        while not host.stats.reasons and time.monotonic() < deadline:
            time.sleep(0.01)
        reasons = list(host.stats.reasons)
    assert outcome(result) == "tls/closed"
    assert codes(result) | {"source": None} == {"disconnect": "0x904", "extended": "0x0",
                                                "confidence": "open", "source": None}
    assert [e.event_id for e in log] == [36870]
    assert "0x8009030D" in log[0].message
    assert reasons == ["tls: keyset does not exist (MachineKeys ACL)"]


@pytest.mark.parametrize(("profile", "key", "value"), [
    ("mstsc-win11", "disconnect", "0x807"),
    ("freerdp2", "exit", 134),
])
def test_wrong_password_is_a_logon_failure(profile: str, key: str, value: object,
                                           host_pair: KeyPair, lab_ca: KeyPair) -> None:
    with running_host(policy_for(host_pair)) as (host, _):
        result = probe(host.address[1], profile, lab_ca, password="wrong")
        reasons = list(host.stats.reasons)
    assert outcome(result) == "credssp/logon_failure"
    assert codes(result)[key] == value
    assert result.exit_status() == EXIT_BY_STAGE["credssp"] == 13
    assert result.failure is not None and result.failure.detail["refused_by"] == "server"
    assert any("wrong password for 'alice'" in r for r in reasons), reasons


@pytest.mark.parametrize(("host_changes", "profile", "expected"), [
    ({"credssp_version": 6, "allow_encryption_oracle": 0}, "mstsc-legacy-unpatched",
     "credssp/oracle_refused_by_server"),
    ({"credssp_version": 6, "allow_encryption_oracle": 1}, "mstsc-legacy-unpatched", "usable"),
    ({"credssp_version": 3}, "mstsc-win11", "credssp/oracle_refused_by_client"),
    ({"credssp_version": 3}, "freerdp2", "usable"),
])
def test_credssp_encryption_oracle_pairings(host_changes: dict[str, int], profile: str,
                                            expected: str, host_pair: KeyPair,
                                            lab_ca: KeyPair) -> None:
    with running_host(policy_for(host_pair, **host_changes)) as (host, _):
        result = probe(host.address[1], profile, lab_ca)
    assert outcome(result) == expected
    if expected == "usable":
        credssp = stage(result, "credssp")
        assert credssp["version"] == min(host_changes["credssp_version"],
                                         load_profile(profile).credssp_version or 0)
        return
    assert result.failure is not None
    side = expected.rsplit("_", 1)[1]
    assert result.failure.detail["refused_by"] == side
    assert "CredSSP encryption oracle" in codes(result)["message"] or side == "server"


@pytest.mark.parametrize(("profile", "expected", "version"), [
    ("mstsc-win11", "tls/version_mismatch", None),
    ("mstsc-legacy-unpatched", "usable", "TLSv1"),
])
def test_tls10_only_host(profile: str, expected: str, version: str | None, host_pair: KeyPair,
                         lab_ca: KeyPair) -> None:
    with running_host(policy_for(host_pair, tls_min="TLSv1", tls_max="TLSv1")) as (host, _):
        result = probe(host.address[1], profile, lab_ca)
    assert outcome(result) == expected
    if version:
        assert stage(result, "tls")["version"] == version
    else:
        assert codes(result)["disconnect"] == "0x906"


def test_denied_connection_is_the_one_0x904_0x7(host_pair: KeyPair, lab_ca: KeyPair) -> None:
    with running_host(policy_for(host_pair, deny_error_info=7)) as (host, log):
        mstsc = probe(host.address[1], "mstsc-win11", lab_ca)
        freerdp = probe(host.address[1], "freerdp2", lab_ca)
    for result in (mstsc, freerdp):
        assert outcome(result) == "licensing/error_info:0x7"
        assert result.failure is not None and result.failure.error_info == 7
        assert result.exit_status() == EXIT_ERROR_INFO
        # the security layer and MCS really completed before the denial
        assert [s.stage for s in result.stages if s.outcome == "ok"] == [
            "tcp", "negotiation", "tls", "credssp", "mcs", "client_info"]
        assert any(s.outcome == "info" and s.detail["error_info"] == "0x7"
                   for s in result.stages)
    assert {k: codes(mstsc)[k] for k in ("disconnect", "extended")} == {
        "disconnect": "0x904", "extended": "0x7"}
    assert codes(freerdp)["exit"] == 131
    assert sum("denied with error info 0x7" in e.message for e in log) == 2


def test_only_the_denial_gives_0x904_0x7(host_pair: KeyPair, expired_pair: KeyPair,
                                         lab_ca: KeyPair) -> None:
    """The articles' favourite pair: every other failure of the matrix shows something else."""
    pairs: dict[str, tuple[object, object]] = {}
    for name, policy in _matrix_policies(host_pair, expired_pair).items():
        with running_host(policy) as (host, _):
            result = probe(host.address[1], "mstsc-win11", lab_ca, cert_policy="strict")
            wrong = probe(host.address[1], "mstsc-win11", lab_ca, password="wrong")
        for label, r in ((name, result), (f"{name}+wrong-password", wrong)):
            c = codes(r)
            pairs[label] = (c.get("disconnect"), c.get("extended"))
    with_7 = sorted(k for k, v in pairs.items() if v == ("0x904", "0x7"))
    assert with_7 == ["denying-host"], pairs


# -- hosts that stop answering ---------------------------------------------------------------


class _SilentAfter(server_module.ServerConnection):
    """A host that runs the sequence up to a session phase, then ignores the client for good."""

    after = "joined"

    def _deaf(self) -> bool:
        if self._session is None:
            return False
        if self.after == "connect_initial":
            return self.phase is ServerPhase.MCS_CONNECT
        return self.phase is ServerPhase.MCS_DOMAIN and self._session.io_joined

    def _on_plaintext(self, data: bytes) -> None:
        if self._deaf():
            return  # deaf and mute: the TCP connection stays open, nothing more is answered
        super()._on_plaintext(data)


@contextlib.contextmanager
def _silent_host(pair: KeyPair, after: str,
                 monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatedHost]:
    silent = type("Silent", (_SilentAfter,), {"after": after})
    monkeypatch.setattr("harness.host.server.ServerConnection", silent)
    with running_host(policy_for(pair)) as (host, _):
        yield host


@pytest.mark.parametrize(("after", "stuck_at"), [
    ("connect_initial", "mcs"),  # TLS and CredSSP done, Connect Initial never answered
    ("joined", "licensing"),  # MCS done and Client Info sent, no licensing answer
])
def test_host_silent_after_mcs_times_out_at_that_stage(after: str, stuck_at: str,
                                                       host_pair: KeyPair, lab_ca: KeyPair,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    profile = fast_profile("mstsc-win11")
    profile = profile.with_overrides(timeouts={**profile.timeouts, stuck_at: 0.4})
    with _silent_host(host_pair, after, monkeypatch) as host:
        t0 = time.monotonic()
        result = probe(host.address[1], profile, lab_ca)
        elapsed = time.monotonic() - t0
    assert outcome(result) == f"{stuck_at}/timeout"
    assert 0.4 <= elapsed < 2.0, elapsed
    done = [s.stage for s in result.stages if s.outcome == "ok"]
    assert done == list(STAGES[: STAGES.index(stuck_at)])
    assert codes(result)["disconnect"] == "0x704"
    assert result.failure is not None and "0.4 s" in result.failure.reason


def test_overall_timeout_caps_the_stage_timeout(host_pair: KeyPair, lab_ca: KeyPair,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    with _silent_host(host_pair, "joined", monkeypatch) as host:
        t0 = time.monotonic()
        result = probe(host.address[1], "mstsc-win11", lab_ca, overall_timeout=0.5)
        elapsed = time.monotonic() - t0
    assert outcome(result) == "licensing/timeout"
    assert elapsed < 1.5


def test_host_never_answering_x224_is_a_negotiation_timeout(lab_ca: KeyPair) -> None:
    # A listening socket nobody accepts from: the kernel completes the TCP handshake, then silence.
    with listen("127.0.0.1", 0) as sock:
        profile = fast_profile("mstsc-win11")
        profile = profile.with_overrides(timeouts={**profile.timeouts, "negotiation": 0.3})
        t0 = time.monotonic()
        result = probe(sock.getsockname()[1], profile, lab_ca)
        elapsed = time.monotonic() - t0
    assert outcome(result) == "negotiation/timeout"
    assert 0.3 <= elapsed < 1.5
    assert [s.stage for s in result.stages] == ["tcp", "negotiation"]
    assert codes(result)["disconnect"] == "0x704"
    assert result.exit_status() == EXIT_BY_STAGE["negotiation"]


@pytest.mark.parametrize(("profile", "key", "value"), [
    ("mstsc-win11", "disconnect", "0x204"),
    ("freerdp2", "exit", 147),
])
def test_nothing_listening_is_tcp_refused(profile: str, key: str, value: object,
                                          lab_ca: KeyPair) -> None:
    # Bound but not listening: the port is ours, so nothing else can be there, and SYN gets RST.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        result = probe(sock.getsockname()[1], profile, lab_ca)
    assert outcome(result) == "tcp/refused"
    assert codes(result)[key] == value
    assert result.exit_status() == EXIT_BY_STAGE["tcp"] == 10
    assert [s.stage for s in result.stages] == ["tcp"]


def test_host_events_reach_the_sink_per_connection(host_pair: KeyPair, lab_ca: KeyPair) -> None:
    """The policy is read at each connection: a changed source changes the next one."""
    policies = iter([policy_for(host_pair), policy_for(host_pair, deny_error_info=0x100)])
    log: list[ev.HostLog] = []
    host = EmulatedHost(lambda: next(policies), on_event=log.append, idle_timeout=5)
    host.start(listen("127.0.0.1", 0))
    try:
        first = probe(host.address[1], "mstsc-win11", lab_ca)
        second = probe(host.address[1], "mstsc-win11", lab_ca)
    finally:
        host.stop()
    assert outcome(first) == "usable"
    assert outcome(second) == "licensing/error_info:0x100"
    assert codes(second)["extended"] == "0x100"


def test_unresolvable_name_is_a_dns_failure(lab_ca: KeyPair) -> None:
    """The default connector resolves the name itself: its gaierror is a DNS failure (0x104),
    not an unmapped connect error. (No real lookup: the test stays on loopback.)"""

    def connect(host: str, port: int, timeout: float) -> socket.socket:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    result = probe(3389, "mstsc-win11", lab_ca, host="rdhost.lab.invalid", connect=connect)
    assert outcome(result) == "tcp/dns_failed"
    assert codes(result)["disconnect"] == "0x104"
    assert result.exit_status() == EXIT_BY_STAGE["tcp"]
