"""The connection sequence as explicit state machines: one phase enum per role, one table of
allowed transitions each, and the report stage every phase belongs to.

Like h11's `_state.py`: the tables are data, `PhaseMachine.move` is the only way to change phase,
and an illegal move raises one typed error (`StateError`) naming the role and the phase. The
client and server connections (and their MCS/activation sessions) share one machine per
connection, so the phase is always one value, never a string set in several places.

Room is left on purpose for what other parts of the core add: `SECURITY_EXCHANGE` (standard RDP
security, MS-RDPBCGR 5.3: Security Exchange PDU after the channel joins, encryption after it)
and `LICENSING` exchanges of more than one message; SPNEGO and Kerberos live inside `CREDSSP`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Generic, TypeVar

from .errors import StateError


class ClientPhase(enum.Enum):
    """Where the client (the probe) is in the connection sequence."""

    INIT = "init"  # nothing sent yet
    X224 = "x224"  # Connection Request sent, waiting for the Connection Confirm
    TLS = "tls"  # TLS handshake (after X.224, or straight away in the direct approach)
    CREDSSP = "credssp"  # TSRequests (NTLM, SPNEGO, Kerberos inside)
    EARLY_AUTH = "early_auth"  # HYBRID_EX: waiting for the Early User Authorization Result
    MCS_CONNECT = "mcs_connect"  # Connect Initial sent, waiting for the Connect Response
    MCS_ATTACH = "mcs_attach"  # Erect Domain and Attach User sent, waiting for the confirm
    MCS_JOIN = "mcs_join"  # joining channels one at a time
    SECURITY_EXCHANGE = "security_exchange"  # standard RDP security only (MS-RDPBCGR 5.3.2)
    LICENSING = "licensing"  # Client Info sent, the server's licensing PDUs
    CAPABILITIES = "capabilities"  # waiting for Demand Active
    FINALISATION = "finalisation"  # Confirm Active sent, waiting for the server's finalisation
    ACTIVE = "active"  # usable: updates flow
    CLOSED = "closed"  # ended (failure or close): every later input is ignored


class ServerPhase(enum.Enum):
    """Where the server (the emulated host) is in the connection sequence."""

    X224 = "x224"  # waiting for the Connection Request (or a TLS ClientHello: direct approach)
    TLS = "tls"
    TLS_ABORT = "tls_abort"  # no usable credential: abort when the ClientHello arrives
    DIRECT_X224 = "direct_x224"  # direct approach: the Connection Request inside TLS (5.4.2.2)
    CREDSSP = "credssp"
    MCS_CONNECT = "mcs_connect"  # waiting for the Connect Initial
    MCS_DOMAIN = "mcs_domain"  # Erect Domain, Attach User, Channel Joins
    SECURITY_EXCHANGE = "security_exchange"  # standard RDP security only (MS-RDPBCGR 5.3.2)
    LICENSING = "licensing"  # Client Info received, licensing PDUs
    CAPABILITIES = "capabilities"  # Demand Active sent, waiting for Confirm Active
    FINALISATION = "finalisation"  # Confirm Active received, finalisation PDUs
    ACTIVE = "active"
    CLOSED = "closed"


C, S = ClientPhase, ServerPhase

CLIENT_TRANSITIONS: Mapping[ClientPhase, frozenset[ClientPhase]] = {
    C.INIT: frozenset({C.X224, C.TLS}),
    C.X224: frozenset({C.TLS, C.MCS_CONNECT}),  # MCS_CONNECT: standard RDP security selected
    C.TLS: frozenset({C.CREDSSP, C.MCS_CONNECT}),
    C.CREDSSP: frozenset({C.EARLY_AUTH, C.MCS_CONNECT}),
    C.EARLY_AUTH: frozenset({C.MCS_CONNECT}),
    C.MCS_CONNECT: frozenset({C.MCS_ATTACH}),
    C.MCS_ATTACH: frozenset({C.MCS_JOIN}),
    C.MCS_JOIN: frozenset({C.SECURITY_EXCHANGE, C.LICENSING}),
    C.SECURITY_EXCHANGE: frozenset({C.LICENSING}),
    C.LICENSING: frozenset({C.CAPABILITIES, C.FINALISATION}),  # Demand Active ends licensing
    C.CAPABILITIES: frozenset({C.FINALISATION}),
    C.FINALISATION: frozenset({C.ACTIVE}),
    C.ACTIVE: frozenset({C.CAPABILITIES}),  # Deactivate All, then a new Demand Active
    C.CLOSED: frozenset(),
}

SERVER_TRANSITIONS: Mapping[ServerPhase, frozenset[ServerPhase]] = {
    S.X224: frozenset({S.TLS, S.TLS_ABORT, S.MCS_CONNECT}),  # TLS directly: 'direct approach'
    S.TLS: frozenset({S.CREDSSP, S.MCS_CONNECT, S.DIRECT_X224}),
    S.TLS_ABORT: frozenset(),
    S.DIRECT_X224: frozenset({S.MCS_CONNECT}),
    S.CREDSSP: frozenset({S.MCS_CONNECT, S.DIRECT_X224}),
    S.MCS_CONNECT: frozenset({S.MCS_DOMAIN}),
    S.MCS_DOMAIN: frozenset({S.SECURITY_EXCHANGE, S.LICENSING}),
    S.SECURITY_EXCHANGE: frozenset({S.LICENSING}),
    S.LICENSING: frozenset({S.CAPABILITIES}),
    S.CAPABILITIES: frozenset({S.FINALISATION}),
    S.FINALISATION: frozenset({S.ACTIVE}),
    S.ACTIVE: frozenset(),
    S.CLOSED: frozenset(),
}

# The stage (events.STAGES) a phase reports under: what a failure in that phase is charged to.
CLIENT_STAGES: Mapping[ClientPhase, str] = {
    C.INIT: "negotiation", C.X224: "negotiation", C.TLS: "tls", C.CREDSSP: "credssp",
    C.EARLY_AUTH: "credssp", C.MCS_CONNECT: "mcs", C.MCS_ATTACH: "mcs", C.MCS_JOIN: "mcs",
    C.SECURITY_EXCHANGE: "mcs", C.LICENSING: "licensing", C.CAPABILITIES: "capabilities",
    C.FINALISATION: "finalisation", C.ACTIVE: "usable", C.CLOSED: "usable",
}

SERVER_STAGES: Mapping[ServerPhase, str] = {
    S.X224: "negotiation", S.TLS: "tls", S.TLS_ABORT: "tls", S.DIRECT_X224: "negotiation",
    S.CREDSSP: "credssp",
    S.MCS_CONNECT: "mcs", S.MCS_DOMAIN: "mcs", S.SECURITY_EXCHANGE: "mcs",
    S.LICENSING: "licensing", S.CAPABILITIES: "capabilities", S.FINALISATION: "finalisation",
    S.ACTIVE: "usable", S.CLOSED: "usable",
}

P = TypeVar("P", ClientPhase, ServerPhase)


class PhaseMachine(Generic[P]):
    """One connection's phase: moves only along its role's table; CLOSED is reachable from
    everywhere and final. The stage it reports freezes when the machine closes."""

    def __init__(self, role: str, initial: P, transitions: Mapping[P, frozenset[P]],
                 stages: Mapping[P, str], closed: P) -> None:
        self.role = role
        self.phase: P = initial
        self._transitions = transitions
        self._stages = stages
        self._closed = closed
        self._stage_at_close: str | None = None

    @property
    def stage(self) -> str:
        """The report stage of the current phase (the last open one once closed)."""
        if self._stage_at_close is not None:
            return self._stage_at_close
        return self._stages[self.phase]

    @property
    def closed(self) -> bool:
        return self.phase is self._closed

    def move(self, to: P) -> None:
        """Change phase; raises StateError when the table does not allow it."""
        if to is self._closed:
            self.close()
            return
        if to not in self._transitions[self.phase]:
            raise StateError(f"{self.role} {self.phase.value}",
                             f"no transition to {to.value}")
        self.phase = to

    def close(self, stage: str | None = None) -> None:
        """Enter CLOSED from any phase, keeping `stage` (default: the current one) reported."""
        if self.phase is not self._closed:
            self._stage_at_close = stage or self._stages[self.phase]
            self.phase = self._closed

    def expect(self, *phases: P, what: str) -> None:
        """Raise StateError unless the machine is in one of `phases` (a PDU out of order)."""
        if self.phase not in phases:
            raise StateError(f"{self.role} {self.phase.value}", f"unexpected {what}")


def client_machine() -> PhaseMachine[ClientPhase]:
    return PhaseMachine("client", C.INIT, CLIENT_TRANSITIONS, CLIENT_STAGES, C.CLOSED)


def server_machine() -> PhaseMachine[ServerPhase]:
    return PhaseMachine("server", S.X224, SERVER_TRANSITIONS, SERVER_STAGES, S.CLOSED)
