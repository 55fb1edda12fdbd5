"""Server side after the security layer: MCS connect and channels, Client Info, licensing,
Demand Active, finalisation, then graphics bursts. Sans-IO, driven by ServerConnection."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import events as ev
from .capabilities import (
    FASTPATH_OUTPUT_SUPPORTED,
    GeneralCapability,
    find_capability,
    server_capabilities,
)
from .errors import ProtocolFailure
from .fastpath import FASTPATH_ACTION_FASTPATH, FASTPATH_UPDATETYPE_BITMAP, fastpath_update_pdus
from .gcc import (
    ServerCoreData,
    ServerData,
    ServerMessageChannelData,
    ServerNetworkData,
    check_selected_protocol,
)
from .info import ClientInfoPdu
from .licensing import LicensePdu
from .mcs import (
    MCS_SERVER_CHANNEL_ID,
    RT_SUCCESSFUL,
    AttachUserConfirm,
    AttachUserRequest,
    ChannelJoinConfirm,
    ChannelJoinRequest,
    ConnectInitial,
    ConnectResponse,
    DisconnectProviderUltimatum,
    ErectDomainRequest,
    SendDataIndication,
    SendDataRequest,
    assign_channel_ids,
    decode_domain_pdu,
)
from .phases import ServerPhase
from .rdpsec_session import ServerOffer, SessionSecurity, salted_checksum
from .session_common import SHARE_ID, SessionBase, mcs_payload
from .share import (
    CTRLACTION_COOPERATE,
    CTRLACTION_GRANTED_CONTROL,
    CTRLACTION_REQUEST_CONTROL,
    SEC_EXCHANGE_PKT,
    SEC_INFO_PKT,
    SEC_LICENSE_PKT,
    ConfirmActivePdu,
    Control,
    DataPdu,
    DemandActivePdu,
    FontList,
    FontMap,
    RefreshRect,
    SecurityHeader,
    SetErrorInfo,
    ShutdownDenied,
    ShutdownRequest,
    Synchronize,
    bitmap_update_pdus,
    decode_share_pdus,
)
from .tpkt import Frame
from .updates import BitmapUpdate, plan_bitmap_rects

if TYPE_CHECKING:
    from .endpoint import SessionLink

_S = ServerPhase

_ = FASTPATH_ACTION_FASTPATH  # fast-path frames from the client are input events: ignored


class ServerSession(SessionBase[ServerPhase]):
    """The server's stages from `mcs` to `finalisation`, then bursts of bitmap updates."""

    def __init__(self, link: SessionLink[ServerPhase], *, selected_protocol: int,
                 requested_protocols: int, width: int, height: int, burst_bytes: int,
                 deny_error_info: int | None, encryption_level: int | None = None) -> None:
        super().__init__(link)
        self.selected_protocol = selected_protocol
        self.requested_protocols = requested_protocols
        self.width, self.height = width, height
        self.burst_bytes = burst_bytes
        self.deny_error_info = deny_error_info
        self.encryption_level = encryption_level  # set: Standard RDP Security at this level
        self._offer: ServerOffer | None = None
        self._security: SessionSecurity | None = None
        self._fastpath_output = False
        self.user: str | None = None
        self.io_joined = False  # the client joined the I/O channel (Client Info may follow)
        self._user_id = 0
        self._expected_joins: set[int] = set()
        self._io_channel = 1003

    # -- helpers -------------------------------------------------------------------------------

    def _send_io(self, payload: bytes) -> None:
        if self._security is not None:
            payload = self._security.wrap(payload)
        pdu = SendDataIndication(MCS_SERVER_CHANNEL_ID, self._io_channel, payload)
        self._send_mcs(pdu.encode())

    def _send_data(self, body: object) -> None:
        self._send_io(DataPdu(body, SHARE_ID, MCS_SERVER_CHANNEL_ID).encode())  # type: ignore[arg-type]

    def _complete(self, stage: str, next_phase: ServerPhase | None = None,
                  **detail: object) -> None:
        self._emit(ev.StageCompleted(stage, dict(detail)))
        if next_phase is not None:
            self._machine.move(next_phase)

    # -- stages --------------------------------------------------------------------------------

    def _on_frame(self, frame: Frame) -> None:
        if frame.fastpath:
            if self._security is not None:  # decrypted only to keep the RC4 stream in step
                self._security.fastpath(frame.data)
            return  # fast-path input (mouse, keyboard, sync) after activation
        payload = mcs_payload(frame)
        if self.phase is _S.MCS_CONNECT:
            self._on_connect_initial(payload)
            return
        pdu = decode_domain_pdu(payload)
        if isinstance(pdu, ErectDomainRequest):
            return
        if isinstance(pdu, AttachUserRequest):
            self._send_mcs(AttachUserConfirm(RT_SUCCESSFUL, self._user_id).encode())
        elif isinstance(pdu, ChannelJoinRequest):
            self._on_join(pdu)
        elif isinstance(pdu, SendDataRequest):
            self._on_client_data(pdu)
        elif isinstance(pdu, DisconnectProviderUltimatum):
            self.link.close("client sent Disconnect Provider Ultimatum")

    def _on_connect_initial(self, payload: bytes) -> None:
        initial = ConnectInitial.decode(payload)
        client = initial.client_data
        if client.core is None:
            raise ProtocolFailure("mcs", "Connect Initial without client core data",
                                  event="protocol_error")
        check_selected_protocol(client.core, self.selected_protocol)
        channels = assign_channel_ids(len(client.channels), client.message_channel is not None)
        self._io_channel = channels.io_channel
        self._user_id = channels.user_channel
        self._expected_joins = {*channels.all_channels, self._user_id}
        message = (ServerMessageChannelData(channels.message_channel)
                   if channels.message_channel is not None else None)
        if self.encryption_level is not None:
            self._offer = ServerOffer.choose(client.security, self.encryption_level)
        server = ServerData.create(
            ServerCoreData(client_requested_protocols=self.requested_protocols),
            ServerNetworkData(channels.io_channel, channels.static_channels),
            self._offer.data if self._offer is not None else None,
            message_channel=message,
        )
        self._send_mcs(ConnectResponse.from_server_data(server).encode())
        self._machine.move(_S.MCS_DOMAIN)
        self._emit(ev.HostLog("MCS Connect Initial accepted", None,
                                       {"channels": [c.name for c in client.channels]}))

    def _on_join(self, pdu: ChannelJoinRequest) -> None:
        ok = pdu.channel_id in self._expected_joins
        result = RT_SUCCESSFUL if ok else 14
        self._send_mcs(ChannelJoinConfirm(result, self._user_id, pdu.channel_id,
                                          pdu.channel_id if ok else None).encode())
        self._expected_joins.discard(pdu.channel_id)
        if ok and pdu.channel_id == self._io_channel:
            self.io_joined = True

    def _on_client_data(self, pdu: SendDataRequest) -> None:
        if pdu.channel_id != self._io_channel:
            return  # static virtual channel traffic: none is emulated
        data = pdu.user_data
        if self._offer is not None:
            if self.phase is _S.MCS_DOMAIN:
                self._on_security_exchange(data)
                return
            if self._security is None:
                raise ProtocolFailure("mcs", "data before the Security Exchange PDU",
                                      event="protocol_error")
            flags, data = self._security.unwrap(data)
            if flags & SEC_LICENSE_PKT:
                return  # the client's licensing PDUs: Windows in admin mode needs none
            if self.phase is _S.SECURITY_EXCHANGE and flags & SEC_INFO_PKT:
                self._on_client_info(ClientInfoPdu.decode(SecurityHeader(flags).encode() + data))
                return
        elif self.phase is _S.MCS_DOMAIN and len(data) >= 2 and \
                int.from_bytes(data[:2], "little") & SEC_INFO_PKT:
            self._on_client_info(ClientInfoPdu.decode(data))
            return
        for share in decode_share_pdus(data):
            if isinstance(share, ConfirmActivePdu):
                if self._security is not None:
                    self._security.security.salted = salted_checksum(share.capabilities)
                general = find_capability(share.capabilities, GeneralCapability)
                # MS-RDPBCGR 2.2.7.1.1: a client that sets FASTPATH_OUTPUT_SUPPORTED gets its
                # updates as fast-path output, as Windows sends them (aardwolf reads no other);
                # under Standard RDP Security the updates stay slow-path here.
                self._fastpath_output = self._security is None and bool(
                    getattr(general, "extra_flags", 0) & FASTPATH_OUTPUT_SUPPORTED)
                self._complete("capabilities", _S.FINALISATION,
                               client_capability_sets=len(share.capabilities))
                # MS-RDPBCGR 2.2.1.19-20: Synchronize after the Confirm Active, Cooperate after
                # it; clients such as rdesktop wait for both before their Font List.
                self._send_data(Synchronize(self._user_id))
                self._send_data(Control(CTRLACTION_COOPERATE))
            elif isinstance(share, DataPdu):
                self._on_data_pdu(share)

    def _on_security_exchange(self, data: bytes) -> None:
        """The client random, RSA-encrypted: both sides have their session keys after it."""
        assert self._offer is not None and self.encryption_level is not None
        if len(data) < 2 or not int.from_bytes(data[:2], "little") & SEC_EXCHANGE_PKT:
            raise ProtocolFailure("mcs", "expected the Security Exchange PDU",
                                  event="protocol_error")
        security, license_encrypt = self._offer.accept_exchange(data)
        self._security = SessionSecurity(security, self.encryption_level, server=True,
                                         license_encrypt=license_encrypt)
        self._machine.move(_S.SECURITY_EXCHANGE)
        self._emit(ev.HostLog("Security Exchange: session keys derived", None, {
            "method": f"{self._offer.data.encryption_method:#x}",
            "level": self.encryption_level, "license_encrypt": license_encrypt}))

    def _send_license(self, pdu: LicensePdu) -> None:
        if self._security is None:
            self._send_io(pdu.encode())
            return
        body = pdu.encode()[4:]  # preamble and message; the session's header replaces the basic one
        self._send_mcs(SendDataIndication(MCS_SERVER_CHANNEL_ID, self._io_channel,
                                          self._security.wrap_license(body)).encode())

    def _on_client_info(self, info: ClientInfoPdu) -> None:
        self._complete("mcs")
        self.user = info.info.user_name
        self._complete("client_info", _S.LICENSING, user=info.info.user_name,
                       domain=info.info.domain)
        if self.deny_error_info is not None:
            self._send_data(SetErrorInfo(self.deny_error_info))
            self._send_mcs(DisconnectProviderUltimatum().encode())
            self._emit(ev.HostLog(
                f"connection denied with error info {self.deny_error_info:#x}", None))
            self.link.close(f"denied (error info {self.deny_error_info:#x})")
            return
        self._send_license(LicensePdu.valid_client())
        self._complete("licensing", _S.CAPABILITIES, answer="STATUS_VALID_CLIENT")
        caps = server_capabilities(self.width, self.height)
        self._send_io(DemandActivePdu(SHARE_ID, caps).encode())

    def _on_data_pdu(self, pdu: DataPdu) -> None:
        body = pdu.body
        if isinstance(body, Control) and body.action == CTRLACTION_REQUEST_CONTROL:
            # 2.2.1.21: Granted Control answers the client's Request Control.
            self._send_data(Control(CTRLACTION_GRANTED_CONTROL, self._user_id,
                                    MCS_SERVER_CHANNEL_ID))
        elif isinstance(body, FontList):
            # 2.2.1.22: Font Map answers the Font List; the session is then usable.
            self._send_data(FontMap())
            if self.phase is _S.FINALISATION:
                self._complete("finalisation", _S.ACTIVE)
            self._burst()
        elif isinstance(body, RefreshRect):
            self._burst()
        elif isinstance(body, ShutdownRequest):
            self._send_data(ShutdownDenied())

    def _burst(self) -> None:
        """A realistic burst of bitmap updates: full-size segments, ~8 KiB PDUs; none at all
        with burst_bytes 0 (a session that draws nothing: hung)."""
        if self.burst_bytes <= 0:
            return
        if self._fastpath_output:
            rects = plan_bitmap_rects(self.width, self.height, self.burst_bytes)
            for rect in rects:
                update = BitmapUpdate((rect,)).encode()
                self._out.extend(fastpath_update_pdus(FASTPATH_UPDATETYPE_BITMAP, update))
            return
        for pdu in bitmap_update_pdus(self.width, self.height, self.burst_bytes,
                                      share_id=SHARE_ID, pdu_source=MCS_SERVER_CHANNEL_ID):
            self._send_io(pdu)
