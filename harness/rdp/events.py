"""Typed events the client and server state machines emit.

Stage names are the ones in docs/architecture.md; a failure carries a short `event` word that
client profiles map to the codes a real client would show (see harness/probe/profiles.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

STAGES = (
    "tcp",
    "negotiation",
    "tls",
    "credssp",
    "mcs",
    "client_info",
    "licensing",
    "capabilities",
    "finalisation",
    "usable",
)


@dataclass(frozen=True)
class StageCompleted:
    """A stage of the connection sequence finished; detail says what it settled."""

    stage: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StageFailed:
    """A stage failed; `event` is the failure class (e.g. 'closed', 'logon_failure')."""

    stage: str
    event: str
    reason: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StageWarning:
    """Something a real client would warn about but go on past (e.g. a certificate prompt)."""

    stage: str
    message: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ErrorInfoReceived:
    """A Set Error Info PDU arrived from the server."""

    code: int
    name: str


@dataclass(frozen=True)
class UpdateReceived:
    """A complete graphics update PDU (slow-path or fast-path) arrived."""

    kind: str
    nbytes: int


@dataclass(frozen=True)
class HostLog:
    """Something the server side would log (Windows event id when there is one)."""

    message: str
    event_id: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ConnectionClosed:
    """The connection ended; `by_peer` when the other side closed or reset it."""

    reason: str
    by_peer: bool = True


Event = (
    StageCompleted
    | StageFailed
    | StageWarning
    | ErrorInfoReceived
    | UpdateReceived
    | HostLog
    | ConnectionClosed
)
