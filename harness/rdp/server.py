"""The server role of the connection sequence, sans-IO (what the emulated host drives).

Its behaviour comes from one ServerConfig, read when the connection is accepted: which security
protocols it selects, the TLS credential (loaded now; an unusable key makes it abort after the
ClientHello, as Schannel does), CredSSP version and oracle policy, users, clock, and denial.
Phases and their order: harness/rdp/phases.py (ServerPhase, SERVER_TRANSITIONS).
"""

from __future__ import annotations

from cryptography import x509

from . import events as ev
from .certverify import subject_public_key
from .credssp import CredSspFailure, CredSspServer
from .endpoint import Endpoint
from .errors import ProtocolFailure
from .kerberos import KerberosAcceptor
from .ntlm import host_acceptor
from .phases import ServerPhase, server_machine
from .server_config import (
    SECURITY_LAYER_RDP,
    SECURITY_LAYER_TLS,
    CredentialUnavailable,
    ServerConfig,
)
from .session_server import ServerSession
from .tls import TlsEndpoint, server_context
from .x224 import ConnectionConfirm, ConnectionRequest, NegFailure, Protocol, describe_protocols

EARLY_AUTH_SUCCESS = b"\x00\x00\x00\x00"
TLS_HANDSHAKE_RECORD = 0x16  # the first byte of a TLS ClientHello record
TSREQUEST_TAG = 0x30  # a TSRequest is a DER SEQUENCE

_S = ServerPhase


def select_protocol(policy: ServerConfig, requested: int | None) -> tuple[int | None, int | None]:
    """(selected protocol, failure code) as Windows decides from SecurityLayer and NLA.

    RDSTLS (0x4) and RDSAAD (0x10) are never selected: Windows uses RDSTLS only for a client
    redirected with a redirection cookie, which the lab's host never issues, and decides from
    the other bits as if they were absent (rdp-facts §10) [open]."""
    if requested is None:
        requested = 0
    nla_offered = requested & (Protocol.HYBRID | Protocol.HYBRID_EX)
    if policy.security_layer == SECURITY_LAYER_RDP:
        # The listener has Standard RDP Security only: any offer of TLS or CredSSP is refused
        # with SSL_NOT_ALLOWED_BY_SERVER ("configured to only use Standard RDP Security ... does
        # not support any External Security Protocols", MS-RDPBCGR 2.2.1.2.2; zeek's
        # rdp-proprietary-encryption trace, frame 5), UserAuthentication or not: NLA needs
        # CredSSP, which this listener does not have. The client's retry without TLS gets RDP
        # security (frame 13). rdp-facts §14.
        return (0, None) if requested == 0 else (None, NegFailure.SSL_NOT_ALLOWED_BY_SERVER)
    if nla_offered:
        return (Protocol.HYBRID_EX if requested & Protocol.HYBRID_EX else Protocol.HYBRID), None
    if policy.user_authentication:
        return None, NegFailure.HYBRID_REQUIRED_BY_SERVER
    if requested & Protocol.SSL:
        return Protocol.SSL, None
    if policy.security_layer == SECURITY_LAYER_TLS:
        return None, NegFailure.SSL_REQUIRED_BY_SERVER
    return 0, None  # negotiate, client offers only standard RDP security


class ServerConnection(Endpoint[ServerPhase]):
    """Server state machine; `should_close` tells the driver to close, `abort` to reset."""

    _RESET_ON_ERROR = True

    def __init__(self, policy: ServerConfig) -> None:
        super().__init__(server_machine())
        self.policy = policy
        self.requested: int | None = None
        self.selected: int | None = None
        self.user: str | None = None
        self._credential_error: CredentialUnavailable | None = None
        self._direct = False  # TLS came first (the direct approach)
        self._public_key = b""
        self._credssp: CredSspServer | None = None
        self._session: ServerSession | None = None

    def _receive(self, data: bytes) -> None:
        if not data:
            self._end(f"client closed during {self.stage}")
            return
        phase = self.phase
        if phase is _S.X224:
            self._on_raw(data)
        elif phase is _S.TLS_ABORT:
            self._on_client_hello()
        elif self._tls is None and self._session is not None:  # Standard RDP Security
            self._on_plaintext(data)
        elif self._tls is not None:
            self._tls.feed(data)
            self._on_tls()

    def _on_credssp_failure(self, exc: CredSspFailure) -> None:
        """A refused logon ends by CredSSP version (rdp-facts §10.1): 3, 4 and 6 carry the
        status in a TSRequest errorCode; 2 and 5 have no errorCode, and Windows ends TLS with an
        alert there; ours is close_notify (Python's ssl sends no other alert)."""
        if self._credssp is not None and self._credssp.pending_error_reply:
            self._send(self._credssp.pending_error_reply)
        elif self._tls is not None and self._tls.handshake_done:
            self._tls.close()
            self._flush_tls()
        self._fail("credssp", exc.event, str(exc))

    def _flush_session(self) -> None:
        if self._session is not None:
            out = self._session.data_to_send()
            if out:
                self._send(out)

    # -- negotiation ---------------------------------------------------------------------------

    def _on_raw(self, data: bytes) -> None:
        if not self._frames.pending and data[0] == TLS_HANDSHAKE_RECORD:
            self._start_direct(data)
            return
        got = self._next_tpkt(data, "X.224 Connection Request")
        if got is None:
            return
        frame, rest = got
        request = ConnectionRequest.decode(frame.data)
        self.requested = request.requested_protocols
        selected, failure = select_protocol(self.policy, request.requested_protocols)
        if failure is not None:
            self._send_raw(ConnectionConfirm(failure=int(failure)).encode())
            name = NegFailure(failure).name
            self._fail("negotiation", f"failure:{name}", f"answered RDP_NEG_FAILURE {name}")
            return
        assert selected is not None
        self.selected = int(selected)
        # MS-RDPBCGR 3.3.5.3.2: no rdpNegData in the confirm when the request carried none;
        # flags 0 with PROTOCOL_RDP selected, as zeek's rdp-proprietary-encryption trace shows.
        flags = self.policy.neg_rsp_flags if self.selected else 0
        confirm = ConnectionConfirm() if request.requested_protocols is None else \
            ConnectionConfirm(selected_protocol=self.selected, flags=flags)
        self._send_raw(confirm.encode())
        if self.selected == 0:  # Standard RDP Security (MS-RDPBCGR 5.3): no TLS, MCS follows
            self._complete("negotiation", requested=describe_protocols(self.requested or 0),
                           selected=describe_protocols(0), cookie=request.cookie)
            self._start_session()
            if rest:
                self._receive(rest)
            return
        self._complete("negotiation", requested=describe_protocols(self.requested or 0),
                       selected=describe_protocols(self.selected), cookie=request.cookie)
        self._start_tls()
        if rest:
            self._receive(rest)

    # -- the direct approach (MS-RDPBCGR 5.4.2.2): TLS first, the X.224 exchange inside it -----

    def _start_direct(self, data: bytes) -> None:
        """A TLS ClientHello as the first bytes. Windows accepts it (rdp-facts §10): TLS, then
        either CredSSP or the X.224 Connection Request, both inside TLS."""
        if self.policy.security_layer == SECURITY_LAYER_RDP:
            raise ProtocolFailure("negotiation", "TLS ClientHello before any X.224 Connection "
                                  "Request, and SecurityLayer 0 allows no TLS")
        self._direct = True
        self._start_tls()
        self._receive(data)

    def _on_direct_plaintext(self, data: bytes) -> None:
        """The first bytes inside TLS decide: a TSRequest starts CredSSP, TPKT is the
        Connection Request of a TLS-only client."""
        if self.phase is _S.TLS:
            if data[0] == TSREQUEST_TAG:
                self.selected = int(Protocol.HYBRID)
                self._start_credssp()
                self._on_plaintext(data)
                return
            self._move(_S.DIRECT_X224)
        got = self._next_tpkt(data, "X.224 Connection Request inside TLS")
        if got is None:
            return
        frame, rest = got
        request = ConnectionRequest.decode(frame.data)
        self.requested = requested = request.requested_protocols or 0
        hybrid = Protocol.HYBRID | Protocol.HYBRID_EX
        if self.selected is None:  # TLS only so far
            failure = NegFailure.HYBRID_REQUIRED_BY_SERVER if self.policy.user_authentication \
                else None if requested & Protocol.SSL else NegFailure.INCONSISTENT_FLAGS
            selected = int(Protocol.SSL)
        else:  # CredSSP done: the request must name it (else INCONSISTENT_FLAGS, 2.2.1.2.2)
            failure = None if requested & hybrid else NegFailure.INCONSISTENT_FLAGS
            selected = self.selected
        if failure is not None:
            self._send(ConnectionConfirm(failure=int(failure)).encode())
            name = NegFailure(failure).name
            self._fail("negotiation", f"failure:{name}", f"answered RDP_NEG_FAILURE {name} "
                       "inside TLS (direct approach)")
            return
        self.selected = selected
        self._send(ConnectionConfirm(selected_protocol=selected,
                                     flags=self.policy.neg_rsp_flags).encode())
        self._complete("negotiation", requested=describe_protocols(requested),
                       selected=describe_protocols(selected), cookie=request.cookie,
                       direct=True)
        self._start_session()
        if rest:
            self._on_plaintext(rest)

    # -- TLS -----------------------------------------------------------------------------------

    def _start_tls(self) -> None:
        if self.policy.load_credential is None:
            self._credential_error = CredentialUnavailable("no certificate configured")
        else:
            try:
                credential = self.policy.load_credential()
                ctx = server_context(credential.cert_pem, credential.key_pem,
                                     self.policy.tls_min, self.policy.tls_max)
                cert = x509.load_pem_x509_certificate(credential.cert_pem)
                self._public_key = subject_public_key(cert)
                self._tls = TlsEndpoint(ctx, server_side=True)
                self._move(_S.TLS)
                return
            except CredentialUnavailable as exc:
                self._credential_error = exc
            except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
                self._credential_error = CredentialUnavailable(f"TLS credential unusable: {exc}")
        self._move(_S.TLS_ABORT)

    def _on_client_hello(self) -> None:
        """Schannel cannot acquire its credential: it aborts once the ClientHello arrives."""
        err = self._credential_error
        reason = err.reason if err else "no credential"
        status = err.status if err else "0x8009030D"
        self._emit(ev.HostLog(
            "A fatal error occurred when attempting to access the TLS server credential "
            f"private key. The error code returned from the cryptographic module is {status}.",
            err.event_id if err else 36870, {"reason": reason}))
        self._fail("tls", "credential_unavailable", reason, reset=True)

    def _on_tls(self) -> None:
        assert self._tls is not None
        if not self._tls.handshake_done:
            try:
                done = self._tls.do_handshake()
            finally:
                self._flush_tls()
            if not done:
                return
            info = self._tls.info
            self._complete("tls", version=info.version if info else "?",
                           cipher=info.cipher if info else "?")
            if self._direct:
                pass  # the first plaintext decides (_on_direct_plaintext)
            elif self.selected is not None and \
                    self.selected & (Protocol.HYBRID | Protocol.HYBRID_EX):
                self._start_credssp()
            else:
                self._start_session()
        data = self._tls.read()
        self._flush_tls()
        if data:
            self._on_plaintext(data)

    # -- CredSSP -------------------------------------------------------------------------------

    def _start_credssp(self) -> None:
        self._move(_S.CREDSSP)
        p = self.policy
        acceptor = host_acceptor(p.users, domain=p.domain, computer_name=p.computer_name,
                                 dns_domain=p.dns_domain, clock_offset=p.clock_offset)
        keytab = p.kerberos_keytab
        self._credssp = CredSspServer(acceptor, version=p.credssp_version,
                                      oracle_policy=p.allow_encryption_oracle,
                                      public_key=self._public_key,
                                      kerberos=(lambda: KerberosAcceptor(keytab)) if keytab
                                      else None)

    def _on_plaintext(self, data: bytes) -> None:
        if self._direct and self.phase in (_S.TLS, _S.DIRECT_X224):
            self._on_direct_plaintext(data)
        elif self.phase is _S.CREDSSP:
            assert self._credssp is not None
            self._plain += data
            self._pump_credssp(self._credssp, self._credssp_done, _S.CREDSSP)
        elif self._session is not None:
            self._session.receive(data)

    def _credssp_done(self) -> None:
        assert self._credssp is not None
        creds = self._credssp.credentials
        self.user = getattr(creds, "user_name", None) or self._credssp.user
        self._complete("credssp", user=self.user, version=self._credssp.negotiated_version,
                       client_version=self._credssp.client_version,
                       mechanism=self._credssp.mechanism, spnego=self._credssp.spnego)
        if self.selected is not None and self.selected & Protocol.HYBRID_EX:
            self._send(EARLY_AUTH_SUCCESS)
        rest = bytes(self._plain)
        self._plain.clear()
        if self._direct:
            self._move(_S.DIRECT_X224)  # the Connection Request follows, inside TLS
        else:
            self._start_session()
        if rest:
            self._on_plaintext(rest)

    # -- MCS and later -------------------------------------------------------------------------

    def _start_session(self) -> None:
        self._move(_S.MCS_CONNECT)
        p = self.policy
        self._session = ServerSession(
            self.link,
            selected_protocol=self.selected or 0,
            requested_protocols=self.requested or 0,
            width=p.desktop_width,
            height=p.desktop_height,
            burst_bytes=p.update_burst_bytes,
            deny_error_info=p.deny_error_info,
            encryption_level=p.min_encryption_level if self.selected == 0 else None,
        )
