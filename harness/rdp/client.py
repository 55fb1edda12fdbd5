"""The client role of the connection sequence, sans-IO (what the probe drives).

Feed it what the server sent with receive_data(); take what to send with data_to_send(); read
what happened with next_event(). It runs every stage from the X.224 request to the end of
finalisation by itself, then reports updates until the driver is satisfied.
"""

from __future__ import annotations

import datetime as dt
import functools
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography import x509

from . import events as ev
from .certverify import verify_certificate
from .credssp import CredSspClient, CredSspFailure
from .endpoint import Endpoint
from .errinfo import error_info_name
from .errors import ProtocolFailure
from .ntlm import NtlmInitiator
from .phases import ClientPhase, client_machine
from .session_client import ClientSession
from .spnego import Mechanism, NtlmMechanism, SpnegoInitiator, negotiate_mechanisms
from .tls import TlsEndpoint, client_context
from .x224 import ConnectionConfirm, ConnectionRequest, NegFailure, Protocol, describe_protocols

_C = ClientPhase

EARLY_AUTH_SUCCESS = 0x00000000
EARLY_AUTH_ACCESS_DENIED = 0x00000005


@dataclass
class ClientConfig:
    """How this client behaves (from a client profile plus the client machine's model)."""

    username: str = ""
    password: str = ""
    domain: str = ""
    requested_protocols: int = int(Protocol.SSL | Protocol.HYBRID)
    cookie: str | None = None
    tls_min: str = "TLSv1.2"
    tls_max: str = "TLSv1.3"
    credssp_version: int | None = 6
    # "ntlm": raw NTLM in negoTokens (FreeRDP 2); "negotiate": SPNEGO as Windows' Negotiate
    # package sends it, Kerberos first when `kerberos` can make a context (a domain), else NTLM.
    credssp_package: str = "ntlm"
    kerberos: Callable[[], Mechanism] | None = None
    allow_encryption_oracle: int = 1
    cert_policy: str = "warn"  # ignore | warn | strict
    trust_anchors: list[x509.Certificate] = field(default_factory=list)
    target_name: str | None = None
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
    client_name: str = "RDPLAB-PROBE"
    desktop_width: int = 1024
    desktop_height: int = 768
    # Standard RDP Security when the server selects it (mstsc, FreeRDP and rdesktop all do)
    rdp_security: bool = True
    # TS_UD_CS_SEC encryptionMethods: 40 | 128 | 56-bit | FIPS, as mstsc sends (0x1B)
    encryption_methods: int = 0x1B
    # SSLKEYLOGFILE-format file for this connection's TLS secrets (a capture, or Wireshark)
    keylog_file: str | None = None


def _tls_event(reason: str) -> str:
    text = reason.upper()
    if "PROTOCOL" in text and any(w in text for w in ("VERSION", "UNSUPPORTED", "NO_PROTOCOLS")):
        return "version_mismatch"
    if "EOF" in text or "RESET" in text:
        return "closed"
    return "handshake_failed"


class ClientConnection(Endpoint[ClientPhase]):
    """Client state machine: negotiation, TLS, CredSSP, then the MCS and activation session.
    Phases and their order: harness/rdp/phases.py (ClientPhase, CLIENT_TRANSITIONS)."""

    def __init__(self, config: ClientConfig) -> None:
        super().__init__(client_machine())
        self.config = config
        self.selected_protocol: int | None = None
        self._credssp: CredSspClient | None = None
        self._session: ClientSession | None = None
        self._server_public_key = b""

    # -- driver surface ------------------------------------------------------------------------

    @property
    def activated(self) -> bool:
        """Finalisation is done: the session is usable."""
        return self.phase is _C.ACTIVE or (self.closed and self.stage == "usable")

    @property
    def error_info(self) -> int | None:
        """The last non-zero Set Error Info code the server sent, if any."""
        return self._session.error_info if self._session is not None else None

    @property
    def pending_bytes(self) -> int:
        """Bytes of an incomplete PDU received so far (a stalled transfer leaves some)."""
        session = self._session.pending_bytes if self._session is not None else 0
        return len(self._plain) + self._frames.pending + session

    def start(self) -> None:
        """Queue the X.224 Connection Request."""
        self._move(_C.X224)
        cr = ConnectionRequest(self.config.requested_protocols, self.config.cookie)
        self._send_raw(cr.encode())

    def disconnect(self) -> None:
        """End the session as real clients do: MCS Disconnect Provider Ultimatum
        (rn-user-requested) once attached, then TLS close_notify; nothing is read after."""
        if self.closed:
            return
        if self._session is not None:
            self._session.disconnect()
            self._flush_session()
        if self._tls is not None and self._tls.handshake_done:
            self._tls.close()
            self._flush_tls()
        self._end("client disconnected")

    def request_refresh(self) -> None:
        """Ask the server to repaint the whole screen (Refresh Rect PDU)."""
        if self._session is not None and self.activated:
            self._send(self._session.refresh_rect())

    def _receive(self, data: bytes) -> None:
        if not data:
            self._on_eof()
        elif self._tls is None and self._session is not None:  # Standard RDP Security
            self._on_plaintext(data)
        elif self._tls is None:
            self._on_raw(data)
        else:
            self._tls.feed(data)
            self._on_tls()

    def _failure_event(self, exc: ProtocolFailure) -> str:
        return _tls_event(exc.reason) if exc.stage == "tls" else exc.event

    def _on_credssp_failure(self, exc: CredSspFailure) -> None:
        self._fail("credssp", exc.event, str(exc), refused_by=exc.refused_by,
                   status=None if exc.status is None else f"{exc.status:#010x}")

    def _flush_session(self) -> None:
        if self._session is not None:
            out = self._session.data_to_send()
            if out:
                self._send(out)

    # -- stages --------------------------------------------------------------------------------

    def _on_eof(self) -> None:
        if self._tls is not None and not self._tls.handshake_done:
            self._fail("tls", "closed", "the server closed the connection during the TLS handshake")
        elif self.error_info:
            self._fail(self.stage, f"error_info:{self.error_info:#x}",
                       f"server sent error info {error_info_name(self.error_info)} and closed",
                       error_info=f"{self.error_info:#x}")
        else:
            self._fail(self.stage, "closed", "the server closed the connection")
        self._emit(ev.ConnectionClosed("closed by server"))

    def _on_raw(self, data: bytes) -> None:
        if self.phase is not _C.X224:
            return
        got = self._next_tpkt(data, "X.224 Connection Confirm")
        if got is None:
            return
        frame, rest = got
        cc = ConnectionConfirm.decode(frame.data)
        if cc.failure is not None:
            name = NegFailure(cc.failure).name if cc.failure in NegFailure._value2member_map_ \
                else f"{cc.failure:#x}"
            self._fail("negotiation", f"failure:{name}", f"server answered RDP_NEG_FAILURE {name}",
                       failure_code=cc.failure)
            return
        selected = cc.selected_protocol if cc.selected_protocol is not None else 0
        self.selected_protocol = selected
        self._complete("negotiation", requested=describe_protocols(self.config.requested_protocols),
                       selected=describe_protocols(selected))
        if selected == 0:  # Standard RDP Security (MS-RDPBCGR 5.3): MCS follows, no TLS
            if not self.config.rdp_security:
                self._fail("negotiation", "rdp_security",
                           "server selected standard RDP security, which this client refuses")
                return
            self._start_session(leftover=rest)
            return
        if not selected & self.config.requested_protocols & 0xB:
            self._fail("negotiation", "protocol_error",
                       f"server selected {describe_protocols(selected)}, which was not offered")
            return
        self._move(_C.TLS)
        if self.config.keylog_file:  # a context of its own: the cached ones stay untouched
            ctx = client_context(self.config.tls_min, self.config.tls_max)
            ctx.keylog_filename = self.config.keylog_file
        else:
            ctx = _client_context(self.config.tls_min, self.config.tls_max)
        self._tls = TlsEndpoint(ctx, server_side=False, server_hostname=self.config.target_name)
        self._tls.do_handshake()
        self._flush_tls()
        if rest:
            self._tls.feed(rest)
            self._on_tls()

    def _on_tls(self) -> None:
        assert self._tls is not None
        if not self._tls.handshake_done:
            done = self._tls.do_handshake()
            self._flush_tls()
            if not done:
                return
            if not self._after_handshake():
                return
        data = self._tls.read()
        self._flush_tls()
        if data:
            self._on_plaintext(data)

    def _after_handshake(self) -> bool:
        assert self._tls is not None and self._tls.info is not None
        info = self._tls.info
        if not info.peer_cert_der:
            self._fail("tls", "handshake_failed", "the server sent no certificate")
            return False
        report = verify_certificate(info.peer_cert_der, trust_anchors=self.config.trust_anchors,
                                    target_name=self.config.target_name, now=self.config.clock())
        self._server_public_key = report.public_key
        detail = {"version": info.version, "cipher": info.cipher, "certificate": report.as_dict()}
        if report.problems and self.config.cert_policy != "ignore":
            first = report.problems[0]
            if self.config.cert_policy == "strict":
                self._fail("tls", f"cert_rejected:{first.code}",
                           f"certificate verification error {first.code}: {first.message}",
                           **detail)
                return False
            self._emit(ev.StageWarning("tls", f"certificate warning ({first.message}); "
                                       "the user may connect anyway",
                                       {"event": f"cert_prompt:{first.code}", **detail}))
        self._complete("tls", **detail)
        if self.selected_protocol and \
                self.selected_protocol & (Protocol.HYBRID | Protocol.HYBRID_EX):
            self._start_credssp()
        else:
            self._start_session()
        return True

    def _start_credssp(self) -> None:
        self._move(_C.CREDSSP)
        version = self.config.credssp_version
        if version is None:
            self._fail("credssp", "not_supported", "this client cannot do CredSSP")
            return
        cfg = self.config

        def ntlm() -> NtlmInitiator:
            return NtlmInitiator(cfg.username, cfg.password, cfg.domain,
                                 workstation=cfg.client_name)

        context = None
        if cfg.credssp_package == "negotiate":
            context = SpnegoInitiator(negotiate_mechanisms(lambda: NtlmMechanism(ntlm()),
                                                           cfg.kerberos))
        self._credssp = CredSspClient(
            ntlm() if context is None else cfg.username, cfg.password, cfg.domain,
            version=version, oracle_policy=cfg.allow_encryption_oracle,
            server_public_key=self._server_public_key, context=context,
        )
        self._send(self._credssp.first_message())

    def _on_plaintext(self, data: bytes) -> None:
        if self.phase in (_C.CREDSSP, _C.EARLY_AUTH):
            self._plain += data
            self._on_credssp_bytes()
            return
        if self._session is not None:
            self._session.receive(data)

    def _on_credssp_bytes(self) -> None:
        assert self._credssp is not None
        self._pump_credssp(self._credssp, self._credssp_done, _C.CREDSSP)
        if self.phase is _C.EARLY_AUTH and len(self._plain) >= 4:
            result = int.from_bytes(self._plain[:4], "little")
            del self._plain[:4]
            if result != EARLY_AUTH_SUCCESS:
                self._fail("credssp", "access_denied",
                           f"Early User Authorization Result {result:#x} (access denied)")
                return
            leftover = bytes(self._plain)
            self._plain.clear()  # later bytes belong to the session: none may linger here
            self._start_session(leftover=leftover)

    def _credssp_done(self) -> None:
        assert self._credssp is not None
        c = self._credssp
        detail: dict[str, object] = {"version": c.negotiated_version,
                                     "server_version": c.server_version,
                                     "mechanism": c.mechanism,
                                     "spnego": isinstance(c.context, SpnegoInitiator)}
        fallback = getattr(c.context, "fallback", None)
        if fallback:
            detail["kerberos_fallback"] = fallback
        if c.challenge is not None:
            detail["ntlm_target"] = c.challenge.target_name
            detail["ntlm_computer"] = c.challenge.nb_computer
            if c.challenge.timestamp is not None:
                server_time = c.challenge.timestamp
                skew = (server_time - self.config.clock()).total_seconds()
                detail["server_time"] = server_time.isoformat()
                detail["clock_skew_seconds"] = round(skew, 3)
        self._complete("credssp", **detail)
        if self.selected_protocol is not None and self.selected_protocol & Protocol.HYBRID_EX:
            self._move(_C.EARLY_AUTH)  # what follows in _plain is the 4-byte result: keep it
        else:
            leftover = bytes(self._plain)
            self._plain.clear()
            self._start_session(leftover=leftover)

    def _start_session(self, leftover: bytes = b"") -> None:
        assert self.selected_protocol is not None
        self._session = ClientSession(self.link, self.config, self.selected_protocol)
        if leftover:
            self._session.receive(leftover)


@functools.lru_cache(maxsize=16)
def _client_context(tls_min: str, tls_max: str) -> ssl.SSLContext:
    """One context per version range: it only holds settings (no certificate checks happen in
    it), and building one costs more than the ClientHello it is used for."""
    return client_context(tls_min, tls_max)
