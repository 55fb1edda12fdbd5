"""What the client and server connections share: the phase machine, output and event queues,
TLS plumbing, the framing of the decrypted stream (DER TSRequests during CredSSP, TPKT/fast-path
before TLS and after), and the one failure path.

Every failure, from either role or from its MCS/activation session, ends in `_fail`: a typed
error raised anywhere below `receive_data` is caught there, turned into one StageFailed event
and closes the machine. A close that is not a failure (a Disconnect Provider Ultimatum, a denied
logon) goes through `_end`. The driver reads `closed` (alias `should_close`), `abort` (reset the
TCP connection instead of closing it) and `close_reason`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Protocol

from . import events as ev
from .credssp import TSREQUEST_HEADER_MAX, CredSspFailure, tsrequest_length
from .errors import ProtocolFailure, RdpError
from .phases import P, PhaseMachine
from .tls import TlsEndpoint
from .tpkt import Frame, FrameBuffer


class _CredSsp(Protocol):
    done: bool

    def receive(self, data: bytes) -> bytes | None: ...


@dataclass(frozen=True)
class SessionLink(Generic[P]):
    """What an MCS/activation session may use of its connection: the shared phase machine,
    the event queue and the non-failure close (failures are raised, never reported here)."""

    machine: PhaseMachine[P]
    emit: Callable[[ev.Event], None]
    close: Callable[[str], None]


class Endpoint(Generic[P]):
    """Base of ClientConnection and ServerConnection."""

    # Whether a malformed or out-of-order input makes this role reset the TCP connection
    # (Windows does, as a server) rather than close it.
    _RESET_ON_ERROR = False

    def __init__(self, machine: PhaseMachine[P]) -> None:
        self._machine = machine
        self.closed = False
        self.abort = False
        self.close_reason: str | None = None
        self._events: deque[ev.Event] = deque()
        self._out = bytearray()
        self._tls: TlsEndpoint | None = None
        self._plain = bytearray()  # decrypted bytes not yet framed (CredSSP phase)
        self._frames = FrameBuffer()  # TPKT frames before TLS (X.224 negotiation)
        self.link = SessionLink(machine, self._emit, self._end)

    # -- the sans-IO surface ------------------------------------------------------------------

    @property
    def phase(self) -> P:
        return self._machine.phase

    @property
    def stage(self) -> str:
        """The report stage (events.STAGES) the connection is in, or ended in."""
        return self._machine.stage

    @property
    def should_close(self) -> bool:
        """The driver's cue to close (or, with `abort`, reset) the connection."""
        return self.closed

    def next_event(self) -> ev.Event | None:
        return self._events.popleft() if self._events else None

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    @property
    def data_to_send_pending(self) -> bool:
        return bool(self._out)

    @property
    def pending_bytes(self) -> int:
        """Bytes of an incomplete PDU received so far (a stalled transfer leaves some)."""
        return self._frames.pending + len(self._plain)

    def receive_data(self, data: bytes) -> None:
        """Bytes from the peer (b"" for end of stream). Never raises for bad input: every
        failure becomes a StageFailed event and closes the connection."""
        if self.closed:
            return
        try:
            self._receive(data)
        except CredSspFailure as exc:
            self._on_credssp_failure(exc)
        except ProtocolFailure as exc:
            self._fail(exc.stage, self._failure_event(exc), exc.reason,
                       reset=self._RESET_ON_ERROR, **exc.detail)
        except RdpError as exc:
            self._fail(self.stage, "protocol_error", str(exc), reset=self._RESET_ON_ERROR)
        finally:
            self._flush_session()

    # -- what each role provides --------------------------------------------------------------

    def _receive(self, data: bytes) -> None:
        raise NotImplementedError

    def _flush_session(self) -> None:
        """Move the session's queued output into ours (batched: one TLS write per input)."""

    def _failure_event(self, exc: ProtocolFailure) -> str:
        return exc.event

    def _on_credssp_failure(self, exc: CredSspFailure) -> None:
        self._fail("credssp", exc.event, str(exc))

    # -- the one failure path and the one close path ------------------------------------------

    def _fail(self, stage: str, event: str, reason: str, *, reset: bool = False,
              **detail: object) -> None:
        if self.closed:
            return
        self._emit(ev.StageFailed(stage, event, reason, dict(detail)))
        self._end(f"{stage}: {reason}", reset=reset, stage=stage)

    def _end(self, reason: str, *, reset: bool = False, stage: str | None = None) -> None:
        if self.closed:
            return
        self.closed = True
        self.abort = reset
        self.close_reason = reason
        self._machine.close(stage)

    # -- helpers for subclasses ---------------------------------------------------------------

    def _move(self, to: P) -> None:
        self._machine.move(to)

    def _emit(self, event: ev.Event) -> None:
        self._events.append(event)

    def _complete(self, stage: str, **detail: object) -> None:
        self._emit(ev.StageCompleted(stage, dict(detail)))

    def _send_raw(self, data: bytes) -> None:
        self._out += data

    def _send(self, data: bytes) -> None:
        """Send application bytes: through TLS once it is up."""
        if self._tls is not None:
            self._tls.write(data)
            self._out += self._tls.outgoing()
        else:
            self._out += data

    def _flush_tls(self) -> None:
        if self._tls is not None:
            self._out += self._tls.outgoing()

    def _next_tpkt(self, data: bytes, what: str) -> tuple[Frame, bytes] | None:
        """Buffer `data`; the first whole TPKT frame and the bytes after it, None until one is
        complete. Anything but TPKT here (before TLS) is a ProtocolFailure in negotiation."""
        if data and not self._frames.pending and data[0] != 3:
            raise ProtocolFailure("negotiation", f"expected TPKT, got byte {data[0]:#04x}",
                                  detail={"expected": what})
        self._frames.feed(data)
        frame = self._frames.next_frame()
        if frame is None:
            return None
        rest = self._frames.take_all()
        return frame, rest

    def _pump_credssp(self, credssp: _CredSsp, on_done: Callable[[], None],
                      active: P) -> None:
        """Feed every whole TSRequest received to `credssp` (a CredSspClient or CredSspServer),
        send its replies, and call `on_done` once it is done (which moves the phase on)."""
        while self.phase is active:
            message = self._next_tsrequest()
            if message is None:
                return
            reply = credssp.receive(message)
            if reply:
                self._send(reply)
            if credssp.done:
                on_done()

    def _next_tsrequest(self) -> bytes | None:
        """Cut one whole TSRequest (DER) off the decrypted bytes, None until one is complete.

        Only the header is parsed, so a trickled TSRequest costs linear time, and a length claim
        over the budget (rdp.limits) fails at once, before the rest is buffered.
        """
        length = tsrequest_length(bytes(self._plain[:TSREQUEST_HEADER_MAX]))
        if length is None or len(self._plain) < length:
            return None
        message = bytes(self._plain[:length])
        del self._plain[:length]
        return message
