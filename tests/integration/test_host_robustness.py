"""The emulated host against hostile clients: every bad connection is closed with a logged reason,
the good ones are unaffected, and stop() leaves no thread behind."""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from harness.host.policy import HostPolicy
from harness.host.server import EmulatedHost, listen
from harness.pki import KeyPair
from harness.probe.profiles import load_profile
from harness.probe.runner import ProbeOptions, ProbeTarget, run_probe
from harness.rdp import events as ev
from harness.rdp.x224 import ConnectionConfirm, ConnectionRequest, Protocol
from tests.helpers import PASSWORD, USER, policy_for

pytestmark = pytest.mark.timeout(60)

IDLE = 1.0  # the host's idle timeout in these tests
ENDED = re.compile(r"connection from \('127\.0\.0\.1', (\d+)\) ended: (.*)")


def _host_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("rdplab-host")}


@contextlib.contextmanager
def hardened_host(policy: HostPolicy, **kw: object) -> Iterator[tuple[EmulatedHost,
                                                                      list[ev.HostLog]]]:
    log: list[ev.HostLog] = []
    before = _host_threads()
    host = EmulatedHost(lambda: policy, on_event=log.append, idle_timeout=IDLE, **kw)  # type: ignore[arg-type]
    host.start(listen("127.0.0.1", 0))
    try:
        yield host, log
    finally:
        t0 = time.monotonic()
        host.stop()
        assert time.monotonic() - t0 < 5.5
    # no thread leak: every thread of this host is gone once stop() returns
    assert _host_threads() - before == set()


class Ended:
    """The host's 'connection from PEER ended: REASON' log lines, by client port."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self.caplog = caplog
        caplog.set_level(logging.INFO, logger="rdplab.host")

    def reasons(self) -> dict[int, str]:
        out = {}
        for record in self.caplog.records:
            if record.name == "rdplab.host" and (m := ENDED.match(record.getMessage())):
                out[int(m.group(1))] = m.group(2)
        return out

    def wait_for(self, ports: set[int], timeout: float = 5.0) -> dict[int, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.reasons()
            if ports <= got.keys():
                return {p: got[p] for p in ports}
            time.sleep(0.02)
        missing = ports - self.reasons().keys()
        raise AssertionError(f"no 'ended' log line for client ports {sorted(missing)}")


@pytest.fixture
def ended(caplog: pytest.LogCaptureFixture) -> Ended:
    return Ended(caplog)


def connect(host: EmulatedHost) -> socket.socket:
    sock = socket.create_connection(host.address, timeout=5)
    sock.settimeout(5)
    return sock


def reset_on_arrival(host: EmulatedHost) -> tuple[int, str]:
    """Connect to a host that drops the connection at once: (client port, 'reset' | 'eof').

    The host may reset before connect() returns here, so the port is bound beforehand.
    """
    with socket.socket() as sock:
        sock.settimeout(5)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        try:
            sock.connect(host.address)
        except ConnectionResetError:
            return port, "reset"
        return port, read_until_closed(sock)[1]


def read_until_closed(sock: socket.socket, timeout: float = 5.0) -> tuple[bytes, str]:
    """Everything the host sends until it closes: (bytes, 'eof' | 'reset'); fails on a hang."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        return data, "reset"
    except TimeoutError as exc:
        raise AssertionError(f"the host kept the connection open for {timeout} s") from exc
    return data, "eof"


def client_hello() -> bytes:
    """A real TLS ClientHello, as the first TLS flight of a client."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing)
    with contextlib.suppress(ssl.SSLWantReadError):
        obj.do_handshake()
    hello = outgoing.read()
    assert hello[:1] == b"\x16" and len(hello) > 100
    return hello


CR = ConnectionRequest(int(Protocol.SSL | Protocol.HYBRID), "mstshash=mallory").encode()


def probe_ok(host: EmulatedHost, ca: KeyPair) -> None:
    result = run_probe(ProbeTarget("127.0.0.1", host.address[1], USER, PASSWORD),
                       ProbeOptions(load_profile("mstsc-win11"), trust_pem=ca.cert_pem,
                                    overall_timeout=20, usable_window=3))
    assert result.ok, result.as_dict()


# -- one hostile client at a time -------------------------------------------------------------


@pytest.mark.parametrize(("payload", "reason"), [
    (b"GET / HTTP/1.1\r\nHost: rdp\r\n\r\n", "negotiation: expected TPKT, got byte 0x47"),
    (b"\x03\x00\x00\x07\x02\xf0\x80", "negotiation: X.224 Connection Request: "),  # a DT TPDU
    (b"\x03\x00\x00\x00", "negotiation: TPKT: "),  # TPKT with length 0
])
def test_garbage_is_closed_with_a_reason(payload: bytes, reason: str, host_pair: KeyPair,
                                         lab_ca: KeyPair, ended: Ended) -> None:
    with hardened_host(policy_for(host_pair)) as (host, _):
        sock = connect(host)
        with sock:
            port = sock.getsockname()[1]
            sock.sendall(payload)
            data, how = read_until_closed(sock)
        assert data == b""  # nothing is answered to garbage
        assert how == "reset"  # a protocol error resets, as Windows does
        got = ended.wait_for({port})[port]
        assert got.startswith(reason), got
        assert host.stats.failed == 1 and host.stats.reasons[0].startswith("negotiation")
        probe_ok(host, lab_ca)  # and the host still serves


def test_huge_tpkt_length_waits_then_idles_out(host_pair: KeyPair, ended: Ended) -> None:
    with hardened_host(policy_for(host_pair)) as (host, _):
        sock = connect(host)
        with sock:
            port = sock.getsockname()[1]
            sock.sendall(b"\x03\x00\xff\xff" + b"\x00" * 100)  # announces 65535 bytes, sends 104
            t0 = time.monotonic()
            data, how = read_until_closed(sock, timeout=IDLE + 4)
            elapsed = time.monotonic() - t0
        assert (data, how) == (b"", "reset")
        assert IDLE - 0.1 <= elapsed < IDLE + 2
        assert ended.wait_for({port})[port] == f"idle for {IDLE:g} s"


def test_huge_tpkt_filled_with_garbage_is_a_parse_error(host_pair: KeyPair,
                                                        ended: Ended) -> None:
    with hardened_host(policy_for(host_pair)) as (host, _):
        sock = connect(host)
        with sock:
            port = sock.getsockname()[1]
            with contextlib.suppress(ConnectionResetError, BrokenPipeError):
                sock.sendall(b"\x03\x00\xff\xff" + b"\xa5" * (0xFFFF - 4))
            _, how = read_until_closed(sock)
        assert how == "reset"
        assert ended.wait_for({port})[port] == (
            "negotiation: X.224 Connection Request: length indicator 165 does not match 65530 "
            "bytes (at offset 1)")


def test_silent_client_idles_out(host_pair: KeyPair, ended: Ended) -> None:
    with hardened_host(policy_for(host_pair)) as (host, _):
        sock = connect(host)
        with sock:
            port = sock.getsockname()[1]
            t0 = time.monotonic()
            data, how = read_until_closed(sock, timeout=IDLE + 4)
            elapsed = time.monotonic() - t0
        assert (data, how) == (b"", "reset")
        assert IDLE - 0.1 <= elapsed < IDLE + 2
        assert ended.wait_for({port})[port] == f"idle for {IDLE:g} s"


@pytest.mark.parametrize("hello_part", [0, 60, None])  # nothing, a partial, a whole ClientHello
def test_client_leaving_mid_tls(hello_part: int | None, host_pair: KeyPair,
                                ended: Ended) -> None:
    with hardened_host(policy_for(host_pair)) as (host, _):
        sock = connect(host)
        with sock:
            port = sock.getsockname()[1]
            sock.sendall(CR)
            cc = ConnectionConfirm.decode(sock.recv(19))
            assert cc.selected_protocol == Protocol.HYBRID
            hello = client_hello()
            sock.sendall(hello if hello_part is None else hello[:hello_part])
            if hello_part is None:  # the host answers with its flight before we leave
                assert sock.recv(5)[:1] == b"\x16"
            sock.shutdown(socket.SHUT_WR)
            read_until_closed(sock)
        assert ended.wait_for({port})[port] == "client closed during tls"
        assert host.stats.activated == 0


def test_client_reset_mid_credssp(host_pair: KeyPair, ended: Ended) -> None:
    """A client that resets (RST) instead of closing: the host logs it and carries on."""
    with hardened_host(policy_for(host_pair)) as (host, _):
        sock = connect(host)
        port = sock.getsockname()[1]
        sock.sendall(CR)
        sock.recv(19)
        sock.sendall(client_hello())
        sock.recv(4096)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()
        got = ended.wait_for({port})[port]
        assert got.startswith(("receive failed", "client closed", "send failed")), got


def test_broken_event_sink_does_not_take_the_host_down(host_pair: KeyPair,
                                                       lab_ca: KeyPair) -> None:
    def sink(_: ev.HostLog) -> None:
        raise RuntimeError("sink is broken")

    host = EmulatedHost(lambda: policy_for(host_pair), on_event=sink, idle_timeout=IDLE)
    host.start(listen("127.0.0.1", 0))
    try:
        probe_ok(host, lab_ca)  # the MCS accept emits a HostLog into the broken sink
    finally:
        host.stop()


def test_policy_source_failure_drops_only_that_connection(host_pair: KeyPair, lab_ca: KeyPair,
                                                          ended: Ended) -> None:
    calls = iter([RuntimeError("registry unreadable"), policy_for(host_pair)])

    def source() -> HostPolicy:
        item = next(calls)
        if isinstance(item, Exception):
            raise item
        return item

    host = EmulatedHost(source, idle_timeout=IDLE)
    host.start(listen("127.0.0.1", 0))
    try:
        port, how = reset_on_arrival(host)
        assert how == "reset"
        assert ended.wait_for({port})[port] == "policy unavailable: registry unreadable"
        probe_ok(host, lab_ca)
    finally:
        host.stop()


# -- many at once, with a good client in the middle -------------------------------------------


def _hostile_kinds() -> list[tuple[str, Callable[[socket.socket], None], str]]:
    hello = client_hello()

    def garbage(s: socket.socket) -> None:
        s.sendall(b"\x00\xff" * 32)

    def huge(s: socket.socket) -> None:
        s.sendall(b"\x03\x00\xff\xff\x02\xf0")

    def silent(s: socket.socket) -> None:
        pass

    def mid_tls(s: socket.socket) -> None:
        s.sendall(CR)
        s.recv(19)
        s.sendall(hello[:50])
        s.shutdown(socket.SHUT_WR)

    return [
        ("garbage", garbage, "negotiation: expected TPKT, got byte 0x00"),
        ("huge", huge, f"idle for {IDLE:g} s"),
        ("silent", silent, f"idle for {IDLE:g} s"),
        ("mid_tls", mid_tls, "client closed during tls"),
    ]


def test_fifty_hostile_connections_and_a_good_probe(host_pair: KeyPair, lab_ca: KeyPair,
                                                    ended: Ended) -> None:
    kinds = _hostile_kinds()
    expected: dict[int, str] = {}
    socks: list[socket.socket] = []
    errors: list[BaseException] = []
    with hardened_host(policy_for(host_pair)) as (host, _):
        try:
            for i in range(50):
                sock = connect(host)
                socks.append(sock)
                expected[sock.getsockname()[1]] = kinds[i % len(kinds)][2]

            def attack(i: int, sock: socket.socket) -> None:
                try:
                    kinds[i % len(kinds)][1](sock)
                    read_until_closed(sock, timeout=IDLE + 4)
                except BaseException as exc:  # reported below, in the test's thread
                    errors.append(exc)

            attackers = [threading.Thread(target=attack, args=(i, s)) for i, s in enumerate(socks)]
            for t in attackers:
                t.start()
            t0 = time.monotonic()
            probe_ok(host, lab_ca)  # while all fifty are connected
            probe_seconds = time.monotonic() - t0
            for t in attackers:
                t.join(timeout=IDLE + 6)
            assert not any(t.is_alive() for t in attackers)
        finally:
            for sock in socks:
                sock.close()
        assert errors == []
        got = ended.wait_for(set(expected))
        assert got == expected
        assert host.stats.accepted == 51 and host.stats.activated == 1
    assert probe_seconds < IDLE, "the good probe must not wait for the hostile ones"


def test_connection_limit_refuses_with_event_1006(host_pair: KeyPair, lab_ca: KeyPair,
                                                  ended: Ended) -> None:
    with hardened_host(policy_for(host_pair), max_connections=2) as (host, log):
        held = [connect(host) for _ in range(2)]
        try:
            time.sleep(0.1)  # both accepted and holding their slots
            assert reset_on_arrival(host)[1] == "reset"
            deadline = time.monotonic() + 2
            while not log and time.monotonic() < deadline:
                time.sleep(0.01)
            assert [e.event_id for e in log] == [1006]
        finally:
            for s in held:
                s.close()
        deadline = time.monotonic() + 3  # the slots come back once the held ones are closed
        while len(ended.reasons()) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        probe_ok(host, lab_ca)
        assert host.stats.activated == 1


def test_stop_ends_live_connections_promptly(host_pair: KeyPair) -> None:
    before = _host_threads()
    host = EmulatedHost(lambda: policy_for(host_pair), idle_timeout=60)
    host.start(listen("127.0.0.1", 0))
    socks = [connect(host) for _ in range(5)]
    try:
        deadline = time.monotonic() + 3
        while len(_host_threads() - before) < 6 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(_host_threads() - before) == 6  # the accept loop and five connections
        t0 = time.monotonic()
        host.stop()
        assert time.monotonic() - t0 < 1.0  # not the 60 s idle timeout
        assert _host_threads() - before == set()
        for s in socks:
            assert read_until_closed(s, timeout=2)[0] == b""
    finally:
        for s in socks:
            s.close()


def test_a_trickling_client_is_dropped_at_the_handshake_deadline() -> None:
    """One byte at a time, each within the idle timeout, must not hold a slot for ever."""
    import socket as socketlib
    import time as timelib

    from harness.host.policy import HostPolicy
    from harness.host.server import EmulatedHost, listen

    host = EmulatedHost(lambda: HostPolicy(), idle_timeout=0.5, handshake_timeout=1.0)
    host.start(listen("127.0.0.1", 0))
    try:
        sock = socketlib.create_connection(host.address, timeout=5)
        request = bytes.fromhex("030000130ee000000000000100080003000000")
        t0 = timelib.monotonic()
        closed_after = None
        for byte in request * 3:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                closed_after = timelib.monotonic() - t0
                break
            timelib.sleep(0.3)
            sock.settimeout(0.01)
            try:
                if sock.recv(4096) == b"":
                    closed_after = timelib.monotonic() - t0
                    break
            except TimeoutError:
                pass
            except OSError:
                closed_after = timelib.monotonic() - t0
                break
        sock.close()
    finally:
        host.stop()
    assert closed_after is not None and closed_after < 3.0
