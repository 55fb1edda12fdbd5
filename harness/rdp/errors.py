"""The typed errors of the protocol core: every malformed input ends in one of these."""

from __future__ import annotations


class RdpError(Exception):
    """Base of every error the protocol core raises on purpose."""


class ParseError(RdpError):
    """Bytes that do not form a valid PDU of the kind expected."""

    def __init__(self, what: str, detail: str) -> None:
        super().__init__(f"{what}: {detail}")
        self.what = what
        self.detail = detail


class StateError(RdpError):
    """A PDU or an action that is not allowed in the connection's current state."""

    def __init__(self, state: str, detail: str) -> None:
        super().__init__(f"in state {state}: {detail}")
        self.state = state
        self.detail = detail


class ProtocolFailure(RdpError):
    """A well-formed exchange that fails (negotiation failure, auth failure, policy refusal)."""

    def __init__(self, stage: str, reason: str, code: int | None = None, *,
                 event: str = "failed", detail: dict[str, object] | None = None) -> None:
        super().__init__(f"{stage}: {reason}" + (f" (code {code:#x})" if code is not None else ""))
        self.stage = stage
        self.reason = reason
        self.code = code
        self.event = event  # the failure class client profiles map to codes
        self.detail = dict(detail or {})
