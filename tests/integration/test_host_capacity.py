"""The host holds many clients (issue 10): MaxOutstandingConnections from the model, idle
pre-authentication connections dropped on Windows' schedule, memory per connection bounded,
and slowloris or 500 held sockets do not lock a normal client out (through `rdplab host`)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.host.server import EmulatedHost, listen
from harness.pki import KeyPair
from harness.probe.profiles import load_profile
from harness.probe.runner import ProbeOptions, ProbeTarget, run_probe
from harness.rdp import events as ev
from harness.rdp.errinfo import ERRINFO_SERVER_DENIED_CONNECTION
from tests.helpers import PASSWORD, USER, policy_for
from tests.hostile.peers import connection_request, slowloris
from tests.integration.test_cli_probe_host import PW_VAR, host_process
from tests.integration.test_hostile_cli import probe, rss_kib

pytestmark = pytest.mark.timeout(180)


@contextlib.contextmanager
def host(policy, **kw: object) -> Iterator[tuple[EmulatedHost, list[ev.HostLog]]]:  # type: ignore[no-untyped-def]
    log: list[ev.HostLog] = []
    h = EmulatedHost(lambda: policy, on_event=log.append, **kw)  # type: ignore[arg-type]
    h.start(listen("127.0.0.1", 0, backlog=1024))
    try:
        yield h, log
    finally:
        h.stop()


def probe_in_process(h: EmulatedHost, ca: KeyPair | None = None) -> tuple[bool, float, object]:
    t0 = time.monotonic()
    result = run_probe(ProbeTarget("127.0.0.1", h.address[1], USER, PASSWORD),
                       ProbeOptions(load_profile("mstsc-win11"), cert_policy="ignore",
                                    overall_timeout=20, usable_window=3))
    return result.ok, time.monotonic() - t0, result


def held(port: int, n: int, first_bytes: bytes = b"") -> list[socket.socket]:
    out = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        if first_bytes:
            s.sendall(first_bytes)
        out.append(s)
    return out


def test_max_outstanding_connections_comes_from_the_model(host_pair: KeyPair) -> None:
    policy = policy_for(host_pair, max_outstanding_connections=5)
    with host(policy) as (h, log):
        socks = held(h.address[1], 5, connection_request()[:3])
        try:
            assert _wait(lambda: h.stats.outstanding == 5)
            with contextlib.suppress(ConnectionResetError):  # reset at once, maybe in connect
                extra = socket.create_connection(h.address, timeout=5)
                extra.settimeout(5)
                assert extra.recv(1) == b""
            assert any(e.event_id == 1006 for e in log)
            assert h.stats.refused == 1
        finally:
            for s in socks:
                s.close()
        assert _wait(lambda: h.stats.outstanding == 0)
        assert probe_in_process(h)[0]  # a slot is free again


def test_server_denied_still_reproduces_when_the_model_lowers_the_limit(
        host_pair: KeyPair) -> None:
    """The fault: the model's count of incomplete connections is at its (lowered) limit; the host
    then denies with Set Error Info 7 after MCS (0x904 / 0x7), and the probe's own connection
    is not refused at TCP by the real-connection limit."""
    policy = policy_for(host_pair, max_outstanding_connections=1,
                        deny_error_info=ERRINFO_SERVER_DENIED_CONNECTION)
    with host(policy) as (h, _):
        ok, _, result = probe_in_process(h)
    assert not ok
    assert result.failure.error_info == ERRINFO_SERVER_DENIED_CONNECTION  # type: ignore[attr-defined]


def test_idle_pre_auth_connection_is_dropped_on_the_first_pdu_timer(host_pair: KeyPair) -> None:
    with host(policy_for(host_pair), first_pdu_timeout=0.5) as (h, _):
        s = socket.create_connection(h.address, timeout=5)
        t0 = time.monotonic()
        with contextlib.suppress(ConnectionResetError):
            s.recv(1)
        assert 0.4 < time.monotonic() - t0 < 2
        assert _wait(lambda: h.stats.outstanding == 0)


def test_memory_per_connection_is_bounded(host_pair: KeyPair) -> None:
    """A client that claims the largest TSRequest and fills it never makes the host hold more
    than the budget."""
    from harness.rdp.limits import MAX_TSREQUEST
    from tests.hostile.peers import tls_client

    with host(policy_for(host_pair)) as (h, _):
        tls = tls_client(h.address[1])
        with contextlib.suppress(OSError):
            tls.sendall(b"\x30\x84" + (MAX_TSREQUEST - 6).to_bytes(4, "big")
                        + bytes(MAX_TSREQUEST - 100))
        time.sleep(0.3)
        tls.close()
        assert 0 < h.stats.peak_buffered <= MAX_TSREQUEST


def test_500_held_sockets_and_slowloris_do_not_lock_out_rdplab_host(tmp_path: Path) -> None:
    with host_process("--user", USER, "--password-env", PW_VAR, cwd=tmp_path) as (proc, port):
        idle_code, _, _, _ = probe(f"rdp://{USER}@127.0.0.1:{port}", "--timeout", "20")
        assert idle_code == 0
        before = rss_kib(proc.pid)
        stop = threading.Event()
        joiners = [slowloris(port, stop, interval=0.5) for _ in range(64)]
        socks = held(port, 500, connection_request()[:5])
        try:
            time.sleep(1.0)
            grown = rss_kib(proc.pid) - before
            code, doc, _, _ = probe(f"rdp://{USER}@127.0.0.1:{port}", "--timeout", "20")
            assert code == 0, doc.get("failure")
            assert sum(s["seconds"] for s in doc["stages"]) < 2.0
            assert grown / 564 < 300, f"{grown / 564:.0f} KiB per held connection"
        finally:
            stop.set()
            for s in socks:
                s.close()
            for j in joiners:
                j()


def _wait(check, timeout: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return bool(check())
