"""The two state machines without any I/O: pumped against each other in memory, then fed
arbitrary, re-chunked and mutated bytes.

The properties: neither machine ever raises on what the peer sends (every malformed input ends in
a StageFailed event on the client and `should_close` on the server, at the latest when the peer
closes), and the framing does not depend on how the byte stream is cut into chunks.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.pki import KeyPair
from harness.rdp import events as ev
from harness.rdp.client import ClientConfig, ClientConnection
from harness.rdp.events import STAGES
from harness.rdp.server import ServerConnection
from harness.rdp.x224 import ConnectionConfirm, ConnectionRequest, Protocol
from tests.helpers import PASSWORD, USER, policy_for

pytestmark = pytest.mark.timeout(120)

BURST = 8192  # the host's update burst in these exchanges: small keeps byte-wise feeding cheap
FUZZ = settings(max_examples=150, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

Chunker = Callable[[bytes], Iterator[bytes]]
# (side whose plaintext write is changed, index of that write, position, kind, value)
Mutation = tuple[str, int, int, int, int]


def whole(data: bytes) -> Iterator[bytes]:
    yield data


def bytewise(data: bytes) -> Iterator[bytes]:
    for i in range(len(data)):
        yield data[i : i + 1]


def split_by(sizes: list[int]) -> Chunker:
    """A chunker cutting the stream into the given sizes, cycling through them."""
    state = {"i": 0}

    def chunks(data: bytes) -> Iterator[bytes]:
        pos = 0
        while pos < len(data):
            n = sizes[state["i"] % len(sizes)]
            state["i"] += 1
            yield data[pos : pos + n]
            pos += n

    return chunks


def new_pair(pair: KeyPair, *, requested: int = int(Protocol.SSL | Protocol.HYBRID_EX
                                                      | Protocol.HYBRID),
             password: str = PASSWORD, **policy: Any) -> tuple[ClientConnection,
                                                              ServerConnection]:
    client = ClientConnection(ClientConfig(username=USER, password=password, cert_policy="ignore",
                                           target_name="localhost",
                                           requested_protocols=requested))
    server = ServerConnection(policy_for(pair, update_burst_bytes=BURST, **policy))
    return client, server


def _mutated(data: bytes, position: int, kind: int, value: int) -> bytes:
    b = bytearray(data)
    p = position % len(b)
    if kind == 0:  # flip bits of one byte
        b[p] ^= value or 0x80
    elif kind == 1:  # drop a run of bytes
        del b[p : p + 1 + value % 16]
    elif kind == 2:  # insert bytes
        b[p:p] = bytes([value]) * (1 + value % 5)
    else:  # a length-looking field set to its maximum
        b[p : p + 2] = b"\xff\xff"
    return bytes(b)


def _intercept_plaintext(side: str, conn: ClientConnection | ServerConnection,
                         mutation: Mutation | None, writes: dict[str, int]) -> None:
    """Count (and maybe change) the plaintext the connection hands to its TLS layer."""
    original = conn._send

    def send(data: bytes) -> None:
        index = writes[side]
        writes[side] += 1
        if mutation is not None and mutation[0] == side and mutation[1] == index and data:
            data = _mutated(data, *mutation[2:])
        original(data)

    conn._send = send  # type: ignore[method-assign]


@dataclass
class Exchange:
    client: ClientConnection
    server: ServerConnection
    client_events: list[ev.Event] = field(default_factory=list)
    server_events: list[ev.Event] = field(default_factory=list)
    to_server: bytearray = field(default_factory=bytearray)
    to_client: bytearray = field(default_factory=bytearray)
    writes: dict[str, int] = field(default_factory=lambda: {"c": 0, "s": 0})

    def failures(self, side: str) -> list[ev.StageFailed]:
        events = self.client_events if side == "c" else self.server_events
        return [e for e in events if isinstance(e, ev.StageFailed)]

    def completed(self, side: str) -> list[ev.StageCompleted]:
        events = self.client_events if side == "c" else self.server_events
        return [e for e in events if isinstance(e, ev.StageCompleted)]

    @property
    def update_bytes(self) -> int:
        return sum(e.nbytes for e in self.client_events if isinstance(e, ev.UpdateReceived))

    def summary(self) -> dict[str, Any]:
        """What the exchange settled, without the parts that depend on the clock."""
        volatile = {"server_time", "clock_skew_seconds", "cookie"}

        def stages(side: str) -> list[tuple[str, dict[str, Any]]]:
            return [(e.stage, {k: v for k, v in e.detail.items() if k not in volatile})
                    for e in self.completed(side)]

        return {"client": stages("c"), "server": stages("s"), "activated": self.client.activated,
                "updates": self.update_bytes, "client_failed": self.failures("c"),
                "server_failed": self.failures("s")}


def pump(client: ClientConnection, server: ServerConnection, *, to_server: Chunker = whole,
         to_client: Chunker = whole, mutation: Mutation | None = None,
         wire_mutation: tuple[str, int, int, int] | None = None, deliver_eof: bool = True,
         max_rounds: int = 500) -> Exchange:
    """Move bytes between the two machines until neither has anything to say.

    A side that fails or closes is treated as closing its socket: the peer then receives EOF.
    `wire_mutation` (direction, byte offset in that direction's stream, kind, value) changes the
    bytes in flight, after TLS; `mutation` changes a plaintext write, before TLS.
    """
    x = Exchange(client, server)
    _intercept_plaintext("c", client, mutation, x.writes)
    _intercept_plaintext("s", server, mutation, x.writes)
    client.start()
    eof_to_server = eof_to_client = False

    def deliver(direction: str, data: bytes) -> None:
        stream = x.to_server if direction == "c" else x.to_client
        start = len(stream)
        if wire_mutation is not None and wire_mutation[0] == direction and \
                start <= wire_mutation[1] < start + len(data):
            data = _mutated(data, wire_mutation[1] - start, *wire_mutation[2:])
        stream += data
        target = server if direction == "c" else client
        for chunk in (to_server if direction == "c" else to_client)(data):
            target.receive_data(chunk)

    for _ in range(max_rounds):
        moved = False
        out = client.data_to_send()
        if out and not server.should_close:
            deliver("c", out)
            moved = True
        out = server.data_to_send()
        if out and not client.closed:
            deliver("s", out)
            moved = True
        if deliver_eof and server.should_close and not eof_to_client:
            client.receive_data(b"")
            eof_to_client = moved = True
        if deliver_eof and client.closed and not eof_to_server:
            server.receive_data(b"")
            eof_to_server = moved = True
        while (e := client.next_event()) is not None:
            x.client_events.append(e)
        while (e := server.next_event()) is not None:
            x.server_events.append(e)
        if not moved:
            return x
    raise AssertionError(f"no quiescence after {max_rounds} rounds")


def hang_up(x: Exchange) -> None:
    """Both peers close their sockets (what the drivers' timeouts end in)."""
    x.client.receive_data(b"")
    x.server.receive_data(b"")
    while (e := x.client.next_event()) is not None:
        x.client_events.append(e)
    while (e := x.server.next_event()) is not None:
        x.server_events.append(e)


def assert_ended_cleanly(x: Exchange) -> None:
    """After the peers hang up, each side has ended: the client in one StageFailed (or it had a
    usable session), the server with should_close and a reason."""
    hang_up(x)
    client_failures = x.failures("c")
    if x.client.activated and not client_failures:
        pass  # the session reached activation despite the change (e.g. a flipped padding bit)
    else:
        assert client_failures, x.client_events
        assert client_failures[0].stage in STAGES
        assert x.client.closed
    assert x.server.should_close and x.server.close_reason


@pytest.fixture(scope="module")
def reference(host_pair: KeyPair) -> Exchange:
    x = pump(*new_pair(host_pair))
    assert x.client.activated and not x.failures("c") and not x.failures("s")
    return x


# -- the sans-IO proof -------------------------------------------------------------------------


def test_in_memory_pump_reaches_a_usable_session(host_pair: KeyPair,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole sequence with no socket and no thread: the core is bytes in, events out."""

    def no_io(*_: object, **__: object) -> None:
        raise AssertionError("the sans-IO core must not do I/O or start threads")

    monkeypatch.setattr(socket, "socket", no_io)
    monkeypatch.setattr(socket, "create_connection", no_io)
    monkeypatch.setattr(threading.Thread, "start", no_io)
    x = pump(*new_pair(host_pair, clock_offset=120))
    client_stages = [e.stage for e in x.completed("c")]
    assert client_stages == [s for s in STAGES if s not in ("tcp", "usable")]
    server_stages = [e.stage for e in x.completed("s")]
    assert server_stages == ["negotiation", "tls", "credssp", "mcs", "client_info", "licensing",
                             "capabilities", "finalisation"]
    assert x.client.activated and x.client.selected_protocol == Protocol.HYBRID_EX
    assert x.server.user == USER and x.server.selected == Protocol.HYBRID_EX
    assert x.failures("c") == [] and x.failures("s") == []
    assert x.update_bytes >= BURST
    credssp = dict(x.completed("c")[2].detail)
    assert credssp["version"] == 6 and abs(credssp["clock_skew_seconds"] - 120) < 5
    assert not x.server.should_close and not x.client.closed
    # the first bytes on the wire are the X.224 request and confirm, in the clear
    cr_len, cc_len = x.to_server[3], x.to_client[3]  # TPKT lengths (both under 256)
    assert ConnectionRequest.decode(bytes(x.to_server[:cr_len])).requested_protocols == 11
    assert ConnectionConfirm.decode(bytes(x.to_client[:cc_len])).selected_protocol == 8
    assert x.to_server[cr_len] == 0x16 and x.to_client[cc_len] == 0x16  # then TLS records


@pytest.mark.parametrize(("requested", "nla", "expected"), [
    (int(Protocol.SSL | Protocol.HYBRID), True, "HYBRID"),
    (int(Protocol.SSL), False, "SSL"),
])
def test_in_memory_pump_other_security_protocols(requested: int, nla: bool, expected: str,
                                                 host_pair: KeyPair) -> None:
    x = pump(*new_pair(host_pair, requested=requested, user_authentication=nla))
    assert x.client.activated, x.client_events
    assert x.completed("c")[0].detail["selected"] == expected
    assert ("credssp" in [e.stage for e in x.completed("c")]) == nla


def test_in_memory_pump_wrong_password_ends_both_sides(host_pair: KeyPair) -> None:
    x = pump(*new_pair(host_pair, password="wrong"))
    assert [(f.stage, f.event) for f in x.failures("c")] == [("credssp", "logon_failure")]
    assert [(f.stage, f.event) for f in x.failures("s")] == [("credssp", "logon_failure")]
    assert x.server.should_close and x.client.closed


# -- framing does not depend on chunking -------------------------------------------------------


def test_bytewise_feeding_reaches_the_same_outcome(host_pair: KeyPair,
                                                   reference: Exchange) -> None:
    """One byte per receive_data() in both directions: every split point of every PDU at once."""
    x = pump(*new_pair(host_pair), to_server=bytewise, to_client=bytewise)
    assert x.summary() == reference.summary()
    assert x.client.activated


@FUZZ
@given(to_server=st.lists(st.integers(1, 3000), min_size=1, max_size=8),
       to_client=st.lists(st.integers(1, 3000), min_size=1, max_size=8))
def test_any_chunking_reaches_the_same_outcome(to_server: list[int], to_client: list[int],
                                               host_pair: KeyPair, reference: Exchange) -> None:
    x = pump(*new_pair(host_pair), to_server=split_by(to_server), to_client=split_by(to_client))
    assert x.summary() == reference.summary()


@settings(max_examples=40, deadline=None, database=None, derandomize=True)
@given(split=st.integers(0, 10_000), direction=st.sampled_from("cs"))
def test_one_split_anywhere_reaches_the_same_outcome(split: int, direction: str,
                                                     host_pair: KeyPair,
                                                     reference: Exchange) -> None:
    """The whole stream of one direction cut once, at an arbitrary offset."""
    total = len(reference.to_server if direction == "c" else reference.to_client)
    cut = split % total
    seen = {"n": 0}

    def once(data: bytes) -> Iterator[bytes]:
        start, seen["n"] = seen["n"], seen["n"] + len(data)
        if start < cut < start + len(data):
            yield data[: cut - start]
            yield data[cut - start :]
        else:
            yield data

    kw = {"to_server": once} if direction == "c" else {"to_client": once}
    x = pump(*new_pair(host_pair), **kw)  # type: ignore[arg-type]
    assert x.summary() == reference.summary()


# -- arbitrary bytes never raise ---------------------------------------------------------------


@FUZZ
@given(data=st.lists(st.binary(min_size=0, max_size=300), max_size=6))
def test_server_fed_arbitrary_bytes_never_raises(data: list[bytes], host_pair: KeyPair) -> None:
    server = ServerConnection(policy_for(host_pair))
    for chunk in data:
        if chunk:
            server.receive_data(chunk)
    server.data_to_send()
    server.receive_data(b"")  # then the client hangs up
    assert server.should_close and server.close_reason


@FUZZ
@given(prefix=st.sampled_from([b"", b"\x03", b"\x03\x00", b"\x03\x00\x00\x13\x0e\xd0"]),
       data=st.lists(st.binary(min_size=0, max_size=300), max_size=6))
def test_client_fed_arbitrary_bytes_never_raises(prefix: bytes, data: list[bytes]) -> None:
    client = ClientConnection(ClientConfig(cert_policy="ignore"))
    client.start()
    for chunk in [prefix, *data]:
        if chunk:
            client.receive_data(chunk)
    client.receive_data(b"")
    events = []
    while (e := client.next_event()) is not None:
        events.append(e)
    failures = [e for e in events if isinstance(e, ev.StageFailed)]
    assert len(failures) == 1 and client.closed, events
    assert failures[0].stage in ("negotiation", "tls")


@FUZZ
@given(data=st.lists(st.binary(min_size=1, max_size=400), min_size=1, max_size=6),
       requested=st.sampled_from([1, 3, 11]))
def test_garbage_after_a_valid_x224_exchange_never_raises(data: list[bytes], requested: int,
                                                          host_pair: KeyPair) -> None:
    """Garbage where the TLS records should be, in both directions."""
    client, server = new_pair(host_pair, requested=requested, user_authentication=requested != 1)
    client.start()
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())  # client now in TLS: its ClientHello is queued
    for chunk in data:
        server.receive_data(chunk)
        client.receive_data(chunk)
    client.receive_data(b"")
    server.receive_data(b"")
    events = []
    while (e := client.next_event()) is not None:
        events.append(e)
    assert [e.stage for e in events if isinstance(e, ev.StageFailed)] == ["tls"], events
    assert server.should_close


# -- a valid exchange, re-chunked and mutated --------------------------------------------------


@FUZZ
@given(side=st.sampled_from("cs"), index=st.integers(0, 12), position=st.integers(0, 1 << 16),
       kind=st.integers(0, 3), value=st.integers(0, 255),
       sizes=st.lists(st.integers(1, 2000), min_size=1, max_size=4))
def test_mutated_plaintext_ends_in_a_failure_never_an_exception(
    side: str, index: int, position: int, kind: int, value: int, sizes: list[int],
    host_pair: KeyPair, reference: Exchange,
) -> None:
    """One PDU changed before encryption (so TLS delivers it intact): the parsers must cope."""
    index %= reference.writes[side]
    x = pump(*new_pair(host_pair), mutation=(side, index, position, kind, value),
             to_server=split_by(sizes), to_client=split_by(sizes[::-1]))
    assert_ended_cleanly(x)


@FUZZ
@given(direction=st.sampled_from("cs"), offset=st.integers(0, 1 << 20), kind=st.integers(0, 3),
       value=st.integers(0, 255), sizes=st.lists(st.integers(1, 2000), min_size=1, max_size=4))
def test_mutated_wire_bytes_end_in_a_failure_never_an_exception(
    direction: str, offset: int, kind: int, value: int, sizes: list[int], host_pair: KeyPair,
    reference: Exchange,
) -> None:
    """One change in the bytes in flight (X.224 in the clear, or a TLS record)."""
    total = len(reference.to_server if direction == "c" else reference.to_client)
    x = pump(*new_pair(host_pair), wire_mutation=(direction, offset % total, kind, value),
             to_server=split_by(sizes), to_client=split_by(sizes[::-1]))
    assert_ended_cleanly(x)
    if not x.client.activated:
        return
    # a change that still activated must have hit the clear text after activation or a byte
    # that TLS does not authenticate: never a silently corrupted security exchange
    assert not x.failures("s")
