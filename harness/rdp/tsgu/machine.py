"""The tunnel state machines: `TsguClient` and `TsguServer` run the handshake, tunnel,
tunnel-authorization and channel steps and the data phase; packets in, typed events out,
packets to send back. The server's requests come out as *Requested events so that policy stays
in the driver."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import ClassVar

from ..errors import StateError
from .packets import (
    FREERDP_CLIENT_CAPS,
    HTTP_EXTENDED_AUTH_NONE,
    HTTP_EXTENDED_AUTH_PAA,
    HTTP_TUNNEL_REDIR_ENABLE_ALL,
    MAX_DATA,
    S_OK,
    ChannelCreate,
    ChannelResponse,
    CloseChannel,
    CloseChannelResponse,
    Data,
    HandshakeRequest,
    HandshakeResponse,
    Keepalive,
    Packet,
    PacketSplitter,
    ReauthMessage,
    ServiceMessage,
    TunnelAuth,
    TunnelAuthResponse,
    TunnelCreate,
    TunnelResponse,
    UnknownPacket,
    decode_packet,
    hresult_failed,
    status_name,
)

# -- tunnel state machines ------------------------------------------------------------------------

STEPS = ("handshake", "tunnel_create", "tunnel_auth", "channel_create")


@dataclass(frozen=True)
class HandshakeDone:
    server_version: int
    extended_auth: int


@dataclass(frozen=True)
class TunnelCreated:
    tunnel_id: int | None
    caps: int | None
    consent_message: str | None = None


@dataclass(frozen=True)
class TunnelAuthorized:
    redir_flags: int | None
    idle_timeout: int | None


@dataclass(frozen=True)
class ChannelOpened:
    channel_id: int | None


@dataclass(frozen=True)
class GatewayRefused:
    """A response with a failing status: `step` is one of STEPS."""

    step: str
    status: int

    @property
    def name(self) -> str:
        return status_name(self.status)


@dataclass(frozen=True)
class DataReceived:
    data: bytes


@dataclass(frozen=True)
class ServiceMessageReceived:
    message: str


@dataclass(frozen=True)
class KeepaliveReceived:
    pass


@dataclass(frozen=True)
class ChannelClosed:
    """The channel ended: by a CLOSE_CHANNEL from the peer, or the answer to ours."""

    status: int
    by_peer: bool


@dataclass(frozen=True)
class HandshakeRequested:
    request: HandshakeRequest


@dataclass(frozen=True)
class TunnelCreateRequested:
    request: TunnelCreate


@dataclass(frozen=True)
class TunnelAuthRequested:
    request: TunnelAuth


@dataclass(frozen=True)
class ChannelCreateRequested:
    request: ChannelCreate


TsguEvent = (
    HandshakeDone
    | TunnelCreated
    | TunnelAuthorized
    | ChannelOpened
    | GatewayRefused
    | DataReceived
    | ServiceMessageReceived
    | KeepaliveReceived
    | ChannelClosed
    | HandshakeRequested
    | TunnelCreateRequested
    | TunnelAuthRequested
    | ChannelCreateRequested
)


@dataclass
class _Machine:
    state: str = "initial"
    _split: PacketSplitter = field(default_factory=PacketSplitter)
    _events: deque[TsguEvent] = field(default_factory=deque)
    _out: list[bytes] = field(default_factory=list)

    def receive_data(self, data: bytes) -> None:
        """Bytes of the packet stream (already out of their HTTP/WebSocket framing)."""
        for raw in self._split.feed(data):
            self._handle(decode_packet(raw))

    def next_event(self) -> TsguEvent | None:
        return self._events.popleft() if self._events else None

    def packets_to_send(self) -> list[bytes]:
        """Whole packets, one per element (each goes in its own chunk or frame)."""
        out, self._out = self._out, []
        return out

    def send_data(self, data: bytes) -> None:
        if self.state != "open":
            raise StateError(self.state, "data before the channel is open")
        for i in range(0, len(data), MAX_DATA):
            self._out.append(Data(data[i : i + MAX_DATA]).encode())

    def close(self, status: int = S_OK) -> None:
        """Send CLOSE_CHANNEL; a ChannelClosed event follows the peer's answer."""
        if self.state == "open":
            self._out.append(CloseChannel(status).encode())
            self.state = "closing"

    def _emit(self, event: TsguEvent) -> None:
        self._events.append(event)

    def _common(self, packet: Packet) -> bool:
        """Packets either side may get once the channel is open; True when handled."""
        if isinstance(packet, Data):
            if self.state not in ("open", "closing"):
                raise StateError(self.state, "DATA before the channel is open")
            self._emit(DataReceived(packet.data))
        elif isinstance(packet, Keepalive):
            self._emit(KeepaliveReceived())
        elif isinstance(packet, CloseChannel):
            self._out.append(CloseChannelResponse(S_OK).encode())
            self.state = "closed"
            self._emit(ChannelClosed(packet.status, by_peer=True))
        elif isinstance(packet, CloseChannelResponse):
            self.state = "closed"
            self._emit(ChannelClosed(packet.status, by_peer=False))
        else:
            return False
        return True

    def _handle(self, packet: Packet) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class TsguClient(_Machine):
    """The RDG client's side: handshake → tunnel → tunnel auth → channel, then data.

    Each success answer makes it queue the next request itself (as FreeRDP does); a failing
    status ends in GatewayRefused and state 'failed'. Keepalives are echoed.
    """

    def __init__(
        self,
        target_host: str,
        target_port: int,
        *,
        client_name: str = "RDPLAB",
        caps: int = FREERDP_CLIENT_CAPS,
        paa_cookie: bytes | None = None,
    ) -> None:
        super().__init__()
        self.target_host = target_host
        self.target_port = target_port
        self.client_name = client_name
        self.caps = caps
        self.paa_cookie = paa_cookie

    def start(self) -> None:
        if self.state != "initial":
            raise StateError(self.state, "start twice")
        ext = HTTP_EXTENDED_AUTH_PAA if self.paa_cookie is not None else HTTP_EXTENDED_AUTH_NONE
        self._out.append(HandshakeRequest(extended_auth=ext).encode())
        self.state = "handshake"

    def _refuse(self, step: str, status: int) -> bool:
        if hresult_failed(status):
            self.state = "failed"
            self._emit(GatewayRefused(step, status))
            return True
        return False

    def _handle(self, packet: Packet) -> None:
        if self._common(packet):
            if isinstance(packet, Keepalive):
                self._out.append(Keepalive().encode())
            return
        expected = {
            "handshake": HandshakeResponse,
            "tunnel_create": TunnelResponse,
            "tunnel_auth": TunnelAuthResponse,
            "channel_create": ChannelResponse,
        }.get(self.state)
        if isinstance(packet, ServiceMessage):
            self._emit(ServiceMessageReceived(packet.message))
            return
        if isinstance(packet, UnknownPacket | ReauthMessage):
            return  # FreeRDP logs and ignores unknown control packets
        if expected is None or not isinstance(packet, expected):
            raise StateError(self.state, f"unexpected {type(packet).__name__}")
        if isinstance(packet, HandshakeResponse):
            if not self._refuse("handshake", packet.error_code):
                self._emit(HandshakeDone(packet.server_version, packet.extended_auth))
                self._out.append(TunnelCreate(self.caps, paa_cookie=self.paa_cookie).encode())
                self.state = "tunnel_create"
        elif isinstance(packet, TunnelResponse):
            if not self._refuse("tunnel_create", packet.status):
                self._emit(TunnelCreated(packet.tunnel_id, packet.caps, packet.consent_message))
                self._out.append(TunnelAuth(self.client_name).encode())
                self.state = "tunnel_auth"
        elif isinstance(packet, TunnelAuthResponse):
            if not self._refuse("tunnel_auth", packet.status):
                self._emit(TunnelAuthorized(packet.redir_flags, packet.idle_timeout))
                self._out.append(ChannelCreate((self.target_host,), self.target_port).encode())
                self.state = "channel_create"
        elif isinstance(packet, ChannelResponse) and not self._refuse(
            "channel_create", packet.status
        ):
            self._emit(ChannelOpened(packet.channel_id))
            self.state = "open"


class TsguServer(_Machine):
    """The RDG server's side: requests come out as *Requested events; the driver decides by
    policy and answers with the respond_* methods, which also move the state on."""

    _ORDER: ClassVar[dict[type, tuple[str, str]]] = {
        HandshakeRequest: ("initial", "handshake"),
        TunnelCreate: ("handshake_done", "tunnel_create"),
        TunnelAuth: ("tunnel_created", "tunnel_auth"),
        ChannelCreate: ("tunnel_authorized", "channel_create"),
    }

    def _handle(self, packet: Packet) -> None:
        if self._common(packet):
            return
        order = self._ORDER.get(type(packet))
        if order is None:
            if isinstance(packet, UnknownPacket | ReauthMessage):
                return
            raise StateError(self.state, f"unexpected {type(packet).__name__} from a client")
        want, pending = order
        if self.state != want:
            raise StateError(self.state, f"{type(packet).__name__} out of order")
        self.state = pending
        event_cls = {
            HandshakeRequest: HandshakeRequested,
            TunnelCreate: TunnelCreateRequested,
            TunnelAuth: TunnelAuthRequested,
            ChannelCreate: ChannelCreateRequested,
        }[type(packet)]
        self._emit(event_cls(packet))

    def _answer(self, pending: str, done: str, packet: Packet, status: int) -> None:
        if self.state != pending:
            raise StateError(self.state, f"no {pending} request to answer")
        self._out.append(packet.encode())
        self.state = "failed" if hresult_failed(status) else done

    def respond_handshake(self, status: int = S_OK, extended_auth: int = 0) -> None:
        response = HandshakeResponse(status, extended_auth=extended_auth)
        self._answer("handshake", "handshake_done", response, status)

    def respond_tunnel(
        self, status: int = S_OK, *, tunnel_id: int | None = 1, caps: int | None = None
    ) -> None:
        if hresult_failed(status):
            tunnel_id = caps = None
        response = TunnelResponse(status, tunnel_id=tunnel_id, caps=caps)
        self._answer("tunnel_create", "tunnel_created", response, status)

    def respond_tunnel_auth(
        self,
        status: int = S_OK,
        *,
        redir_flags: int | None = HTTP_TUNNEL_REDIR_ENABLE_ALL,
        idle_timeout: int | None = 0,
    ) -> None:
        if hresult_failed(status):
            redir_flags = idle_timeout = None
        response = TunnelAuthResponse(status, redir_flags, idle_timeout)
        self._answer("tunnel_auth", "tunnel_authorized", response, status)

    def respond_channel(self, status: int = S_OK, *, channel_id: int | None = 1) -> None:
        response = ChannelResponse(status, None if hresult_failed(status) else channel_id)
        self._answer("channel_create", "open", response, status)

    def send_keepalive(self) -> None:
        self._out.append(Keepalive().encode())

    def send_service_message(self, message: str) -> None:
        self._out.append(ServiceMessage(message).encode())
