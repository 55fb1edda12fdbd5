"""The connection sequence's state machines: the tables, the one typed error, the one failure
path of the shared endpoint."""

from __future__ import annotations

import pytest

from harness.rdp import events as ev
from harness.rdp.client import ClientConfig, ClientConnection
from harness.rdp.errors import StateError
from harness.rdp.events import STAGES
from harness.rdp.phases import (
    CLIENT_STAGES,
    CLIENT_TRANSITIONS,
    SERVER_STAGES,
    SERVER_TRANSITIONS,
    ClientPhase,
    ServerPhase,
    client_machine,
    server_machine,
)
from harness.rdp.server import ServerConnection
from harness.rdp.server_config import ServerConfig


def _reachable(table: dict, start: object) -> set:
    seen, todo = {start}, [start]
    while todo:
        for nxt in table[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


@pytest.mark.parametrize(("table", "stages", "start", "active", "closed"), [
    (CLIENT_TRANSITIONS, CLIENT_STAGES, ClientPhase.INIT, ClientPhase.ACTIVE, ClientPhase.CLOSED),
    (SERVER_TRANSITIONS, SERVER_STAGES, ServerPhase.X224, ServerPhase.ACTIVE, ServerPhase.CLOSED),
])
def test_tables_cover_every_phase(table: dict, stages: dict, start: object, active: object,
                                  closed: object) -> None:
    phases = set(type(start))
    assert set(table) == phases == set(stages)
    assert set(stages.values()) <= set(STAGES)
    assert _reachable(table, start) == phases - {closed}  # CLOSED: through close() only
    dead_ends = {p for p in phases - {closed, active} if active not in _reachable(table, p)}
    assert dead_ends <= {ServerPhase.TLS_ABORT}  # the credential failure can only abort


def test_illegal_transition_raises_one_typed_error_naming_the_phase() -> None:
    machine = server_machine()
    with pytest.raises(StateError) as info:
        machine.move(ServerPhase.FINALISATION)
    assert info.value.state == "server x224"
    assert "finalisation" in str(info.value)
    assert machine.phase is ServerPhase.X224  # unchanged


def test_close_from_anywhere_keeps_the_stage() -> None:
    machine = client_machine()
    machine.move(ClientPhase.X224)
    machine.move(ClientPhase.TLS)
    assert machine.stage == "tls"
    machine.close()
    assert machine.closed and machine.stage == "tls"
    with pytest.raises(StateError):
        machine.move(ClientPhase.CREDSSP)


def test_expect_names_what_was_unexpected() -> None:
    machine = client_machine()
    with pytest.raises(StateError, match=r"client init.*unexpected Demand Active"):
        machine.expect(ClientPhase.CAPABILITIES, what="Demand Active")


def test_client_failure_path_is_one_event_then_silence() -> None:
    conn = ClientConnection(ClientConfig())
    conn.start()
    conn.data_to_send()
    conn.receive_data(b"\x17\x03\x03\x00\x05hello")  # not TPKT
    events = []
    while (e := conn.next_event()) is not None:
        events.append(e)
    assert [type(e) for e in events] == [ev.StageFailed]
    assert (events[0].stage, events[0].event) == ("negotiation", "failed")
    assert conn.closed and conn.phase is ClientPhase.CLOSED and not conn.abort
    conn.receive_data(b"\x03\x00\x00\x13" + b"\x00" * 15)  # ignored from now on
    assert conn.next_event() is None


def test_server_failure_resets_and_names_the_stage() -> None:
    conn = ServerConnection(ServerConfig())
    conn.receive_data(b"GET / HTTP/1.1\r\n\r\n")
    failed = conn.next_event()
    assert isinstance(failed, ev.StageFailed) and failed.stage == "negotiation"
    assert conn.should_close and conn.abort
    assert conn.close_reason == "negotiation: expected TPKT, got byte 0x47"


def test_client_start_twice_is_a_state_error() -> None:
    conn = ClientConnection(ClientConfig())
    conn.start()
    with pytest.raises(StateError, match="client x224"):
        conn.start()
