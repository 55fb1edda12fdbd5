"""What the client and server state machines share: output and event queues, TLS plumbing and
the two framings of the decrypted stream (DER TSRequests during CredSSP, TPKT/fast-path after)."""

from __future__ import annotations

from collections import deque

from . import events as ev
from .credssp import TSREQUEST_HEADER_MAX, tsrequest_length
from .tls import TlsEndpoint
from .tpkt import FrameBuffer


class Endpoint:
    """Base of ClientConnection and ServerConnection; holds no protocol logic of its own."""

    def __init__(self) -> None:
        self.stage = "negotiation"
        self._phase = "init"  # the subclass's own phase names
        self.closed = False
        self._events: deque[ev.Event] = deque()
        self._out = bytearray()
        self._raw = bytearray()  # bytes received before TLS starts
        self._tls: TlsEndpoint | None = None
        self._plain = bytearray()  # decrypted bytes not yet framed (CredSSP phase)
        self._frames = FrameBuffer()

    # -- the sans-IO surface ------------------------------------------------------------------

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

    # -- helpers for subclasses ---------------------------------------------------------------

    def _emit(self, event: ev.Event) -> None:
        self._events.append(event)

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

    def _pump_credssp(self, credssp: object, on_done: object) -> None:
        """Feed every whole TSRequest received to `credssp` (a CredSspClient or CredSspServer),
        send its replies, and call `on_done` once it is done (which moves the phase on)."""
        while self._phase == "credssp":
            message = self._next_tsrequest()
            if message is None:
                return
            reply = credssp.receive(message)  # type: ignore[attr-defined]
            if reply:
                self._send(reply)
            if credssp.done:  # type: ignore[attr-defined]
                on_done()  # type: ignore[operator]

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

    def _complete(self, stage: str, **detail: object) -> None:
        self._emit(ev.StageCompleted(stage, dict(detail)))

    def _fail(self, stage: str, event: str, reason: str, **detail: object) -> None:
        if self.closed:
            return
        self.closed = True
        self._emit(ev.StageFailed(stage, event, reason, dict(detail)))
