"""Client side after the security layer: MCS connect and channels, Client Info, licensing,
capability exchange, finalisation, then graphics updates. Sans-IO, driven by ClientConnection."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import events as ev
from .capabilities import client_capabilities
from .errinfo import error_info_name
from .errors import ProtocolFailure
from .fastpath import FastPathOutputPdu, FastPathReassembler
from .gcc import ClientCoreData, ClientData, ClientNetworkData, ClientSecurityData
from .info import ClientInfoPdu, ExtendedInfoPacket, InfoPacket
from .licensing import LicensePdu
from .licensing_client import LicensingClient, preamble
from .mcs import (
    MCS_SERVER_CHANNEL_ID,
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
    decode_domain_pdu,
)
from .phases import ClientPhase
from .rdpsec_session import SessionSecurity, client_exchange, salted_checksum
from .session_common import SessionBase, is_license_pdu, mcs_frame, mcs_payload
from .share import (
    CTRLACTION_COOPERATE,
    CTRLACTION_GRANTED_CONTROL,
    CTRLACTION_REQUEST_CONTROL,
    SEC_INFO_PKT,
    SEC_LICENSE_PKT,
    Control,
    DataPdu,
    DeactivateAllPdu,
    DemandActivePdu,
    FontList,
    FontMap,
    Rect16,
    RefreshRect,
    SecurityHeader,
    SetErrorInfo,
    Synchronize,
    decode_share_pdus,
)
from .tpkt import Frame
from .updates import BitmapUpdate

if TYPE_CHECKING:
    from .client import ClientConfig
    from .endpoint import SessionLink

_C = ClientPhase

_FINALISATION_NEEDED = frozenset({"synchronize", "cooperate", "granted", "fontmap"})


class ClientSession(SessionBase[ClientPhase]):
    """The stages from `mcs` to `finalisation`, then update counting."""

    def __init__(self, link: SessionLink[ClientPhase], config: ClientConfig,
                 selected_protocol: int) -> None:
        super().__init__(link)
        self.config = config
        self.selected_protocol = selected_protocol
        self.error_info: int | None = None  # the last non-zero Set Error Info code
        self._io_channel = 1003
        self._user_id = 0
        self._to_join: list[int] = []
        self._joined: list[int] = []
        self._share_id = 0
        self._final_seen: set[str] = set()
        self._fastpath = FastPathReassembler()
        self._security: SessionSecurity | None = None  # Standard RDP Security, once keyed
        self._exchange: bytes | None = None  # the Security Exchange PDU to send after joins
        self._licensing: LicensingClient | None = None  # a server-started licence exchange
        self._server_certificate: bytes | None = None  # from the GCC Server Security Data
        self._machine.move(_C.MCS_CONNECT)
        self._send_connect_initial()

    # -- surface for ClientConnection ----------------------------------------------------------

    def disconnect(self) -> None:
        """Queue the Disconnect Provider Ultimatum once a user channel exists."""
        if self._user_id:
            self._send_mcs(DisconnectProviderUltimatum().encode())

    def refresh_rect(self) -> bytes:
        area = Rect16(0, 0, self.config.desktop_width - 1, self.config.desktop_height - 1)
        return self._data_pdu(RefreshRect((area,)))

    # -- output helpers ------------------------------------------------------------------------

    def _send_io(self, payload: bytes, flags: int = 0) -> None:
        if self._security is not None:
            payload = self._security.wrap(payload, flags)
        self._send_mcs(SendDataRequest(self._user_id, self._io_channel, payload).encode())

    def _data_pdu(self, body: object) -> bytes:
        pdu = DataPdu(body, self._share_id, self._user_id).encode()  # type: ignore[arg-type]
        if self._security is not None:
            pdu = self._security.wrap(pdu)
        return mcs_frame(SendDataRequest(self._user_id, self._io_channel, pdu).encode())

    def _complete(self, stage: str, next_phase: ClientPhase | None = None,
                  **detail: object) -> None:
        self._emit(ev.StageCompleted(stage, dict(detail)))
        if next_phase is not None:
            self._machine.move(next_phase)

    def _failure(self, stage: str, event: str, reason: str) -> ProtocolFailure:
        return ProtocolFailure(stage, reason, event=event)

    # -- stages --------------------------------------------------------------------------------

    def _send_connect_initial(self) -> None:
        core = ClientCoreData(
            desktop_width=self.config.desktop_width,
            desktop_height=self.config.desktop_height,
            client_name=self.config.client_name[:15],
            server_selected_protocol=self.selected_protocol,
        )
        data = ClientData.create(core, network=ClientNetworkData(()),
                                 security=ClientSecurityData(self.config.encryption_methods))
        self._send_mcs(ConnectInitial.from_client_data(data).encode())

    def _on_frame(self, frame: Frame) -> None:
        if frame.fastpath:
            self._on_fastpath(frame.data)
            return
        payload = mcs_payload(frame)
        if self.phase is _C.MCS_CONNECT:
            self._on_connect_response(payload)
            return
        pdu = decode_domain_pdu(payload)
        if isinstance(pdu, DisconnectProviderUltimatum):
            self._emit(ev.HostLog(f"server sent MCS Disconnect Provider Ultimatum "
                                           f"(reason {pdu.reason})"))
        elif isinstance(pdu, AttachUserConfirm):
            self._on_attach_confirm(pdu)
        elif isinstance(pdu, ChannelJoinConfirm):
            self._on_join_confirm(pdu)
        elif isinstance(pdu, SendDataIndication):
            self._on_io_data(pdu.user_data)

    def _on_connect_response(self, payload: bytes) -> None:
        response = ConnectResponse.decode(payload)
        if response.result != 0:
            raise self._failure("mcs", "connect_refused",
                                f"MCS Connect Response result {response.result_name}")
        server = response.server_data
        sec = server.security
        if sec is not None and sec.encryption_method:
            if self.selected_protocol:
                raise self._failure("mcs", "protocol_error", "server asked for Standard RDP "
                                    f"Security (method {sec.encryption_method:#x}) under "
                                    "an enhanced security protocol")
            pdu, keys = client_exchange(sec, license_encrypt=True)
            self._exchange = pdu.encode()
            self._server_certificate = sec.server_certificate
            self._security = SessionSecurity(keys, sec.encryption_level, server=False)
            self._emit(ev.HostLog("server security data", None, {
                "method": f"{sec.encryption_method:#x}", "level": sec.encryption_level,
                "certificate_bytes": len(sec.server_certificate or b"")}))
        net = server.network
        if net is not None:
            self._io_channel = net.mcs_channel_id
            self._to_join = list(net.channel_ids)
        msg = server.message_channel
        if msg is not None:
            self._to_join.append(msg.mcs_channel_id)
        self._send_mcs(ErectDomainRequest().encode())
        self._send_mcs(AttachUserRequest().encode())
        self._machine.move(_C.MCS_ATTACH)

    def _on_attach_confirm(self, pdu: AttachUserConfirm) -> None:
        self._machine.expect(_C.MCS_ATTACH, what="Attach User Confirm")
        if pdu.result != 0 or pdu.initiator is None:
            raise self._failure("mcs", "attach_refused",
                                f"Attach User Confirm result {pdu.result}")
        if pdu.initiator > 0xFFFF:  # UserId is DynamicChannelId (1001..65535)
            raise self._failure("mcs", "protocol_error", "Attach User Confirm assigns user id "
                                f"{pdu.initiator}, outside 1001..65535")
        self._user_id = pdu.initiator
        self._to_join = [self._user_id, self._io_channel, *self._to_join]
        self._machine.move(_C.MCS_JOIN)
        self._join_next()

    def _join_next(self) -> None:
        if self._to_join:
            channel = self._to_join[0]
            self._send_mcs(ChannelJoinRequest(self._user_id, channel).encode())
            return
        self._complete("mcs", user_channel=self._user_id, io_channel=self._io_channel,
                       channels=self._joined)
        info = InfoPacket(domain=self.config.domain, user_name=self.config.username,
                          password=self.config.password,
                          # every optional tail field, as mstsc sends them (Wireshark's RDP
                          # dissector also reads them as present: none malformed in a capture)
                          extra=ExtendedInfoPacket(client_address="0.0.0.0", reserved1=0,
                                                   reserved2=0,
                                                   dynamic_dst_time_zone_key_name=b"",
                                                   dynamic_daylight_time_disabled=0))
        if self._security is not None and self._exchange is not None:
            self._send_mcs(SendDataRequest(self._user_id, self._io_channel,
                                           self._exchange).encode())
            self._exchange = None
            self._machine.move(_C.SECURITY_EXCHANGE)
            self._send_io(ClientInfoPdu(info).encode()[4:], SEC_INFO_PKT)
        else:
            self._send_io(ClientInfoPdu(info).encode())
        self._complete("client_info", _C.LICENSING, user=self.config.username)

    def _on_join_confirm(self, pdu: ChannelJoinConfirm) -> None:
        if self.phase is not _C.MCS_JOIN or not self._to_join or \
                pdu.requested != self._to_join[0]:
            raise self._failure("mcs", "protocol_error",
                                f"unexpected Channel Join Confirm for {pdu.requested}")
        if pdu.result != 0:
            raise self._failure("mcs", "join_refused", f"Channel Join Confirm result "
                                f"{pdu.result} for channel {pdu.requested}")
        self._joined.append(self._to_join.pop(0))
        self._join_next()

    def _on_io_data(self, data: bytes) -> None:
        if self._security is not None:
            flags, data = self._security.unwrap(data)
            is_license = bool(flags & SEC_LICENSE_PKT)
            if is_license:
                data = SecurityHeader(flags).encode() + data  # as under TLS, for the decoder
        else:
            is_license = is_license_pdu(data)
        if self.phase is _C.LICENSING and is_license:
            self._on_license(LicensePdu.decode(data))
            return
        for pdu in decode_share_pdus(data):
            self._on_share_pdu(pdu)

    def _on_license(self, pdu: LicensePdu) -> None:
        """STATUS_VALID_CLIENT ends licensing at once; a License Request starts the exchange
        real clients run (MS-RDPELE, harness/rdp/licensing_client.py)."""
        if self._licensing is None:
            if pdu.is_valid_client:
                self._complete("licensing", _C.CAPABILITIES, answer="STATUS_VALID_CLIENT")
                return
            self._licensing = LicensingClient(self.config.username, self.config.client_name,
                                              fallback_certificate=self._server_certificate)
        step = self._licensing.receive(pdu.msg_type, pdu.message)
        if step.reply is not None:
            body = preamble(*step.reply)
            if self._security is not None:
                self._send_mcs(SendDataRequest(self._user_id, self._io_channel,
                                               self._security.wrap_license(body)).encode())
            else:
                self._send_io(SecurityHeader(SEC_LICENSE_PKT).encode() + body)
        if step.done:
            self._complete("licensing", _C.CAPABILITIES, answer=step.detail,
                           exchange=list(self._licensing.messages),
                           challenge_mac_ok=self._licensing.challenge_mac_ok)

    def _on_share_pdu(self, pdu: object) -> None:
        if isinstance(pdu, DemandActivePdu):
            self._on_demand_active(pdu)
        elif isinstance(pdu, DeactivateAllPdu):
            self._emit(ev.HostLog("server sent Deactivate All"))
        elif isinstance(pdu, DataPdu):
            self._on_data_pdu(pdu)

    def _on_demand_active(self, pdu: DemandActivePdu) -> None:
        if self.phase is _C.LICENSING:
            # Windows always licenses first; accept a server that does not, as FreeRDP does.
            self._complete("licensing", _C.CAPABILITIES, answer="none (server skipped licensing)")
        self._machine.expect(_C.CAPABILITIES, what="Demand Active")
        self._share_id = pdu.share_id
        if self._security is not None:
            self._security.security.salted = salted_checksum(pdu.capabilities)
        caps = client_capabilities(self.config.desktop_width, self.config.desktop_height)
        from .share import ConfirmActivePdu

        confirm = ConfirmActivePdu(self._share_id, caps, pdu_source=self._user_id)
        self._send_io(confirm.encode())
        self._complete("capabilities", _C.FINALISATION, share_id=f"{pdu.share_id:#x}",
                       server_capability_sets=len(pdu.capabilities))
        self._out.append(self._data_pdu(Synchronize(MCS_SERVER_CHANNEL_ID)))
        self._out.append(self._data_pdu(Control(CTRLACTION_COOPERATE)))
        self._out.append(self._data_pdu(Control(CTRLACTION_REQUEST_CONTROL)))
        self._out.append(self._data_pdu(FontList()))

    def _on_data_pdu(self, pdu: DataPdu) -> None:
        body = pdu.body
        if isinstance(body, SetErrorInfo):
            if body.error_info:
                self.error_info = body.error_info
                self._emit(ev.ErrorInfoReceived(body.error_info,
                                                error_info_name(body.error_info)))
            return
        if isinstance(body, BitmapUpdate):
            self._emit(ev.UpdateReceived("slow-path bitmap", body.byte_count))
            return
        if self.phase is not _C.FINALISATION:
            if body.PDUTYPE2 == 2:  # PDUTYPE2_UPDATE of another kind (orders, palette, sync)
                self._emit(ev.UpdateReceived("slow-path update", len(body.encode())))
            return
        if isinstance(body, Synchronize):
            self._final_seen.add("synchronize")
        elif isinstance(body, Control) and body.action == CTRLACTION_COOPERATE:
            self._final_seen.add("cooperate")
        elif isinstance(body, Control) and body.action == CTRLACTION_GRANTED_CONTROL:
            self._final_seen.add("granted")
        elif isinstance(body, FontMap):
            self._final_seen.add("fontmap")
        if self._final_seen >= _FINALISATION_NEEDED:
            self._complete("finalisation", _C.ACTIVE, received=sorted(self._final_seen))

    def _on_fastpath(self, data: bytes) -> None:
        if self._security is not None:
            data = self._security.fastpath(data)
        pdu = FastPathOutputPdu.decode(data)
        if pdu.encrypted is not None:
            self._emit(ev.UpdateReceived("fast-path (encrypted)", len(data)))
            return
        for update in self._fastpath.feed(pdu):
            self._emit(ev.UpdateReceived(f"fast-path code {update.update_code}",
                                                  len(update.data)))
