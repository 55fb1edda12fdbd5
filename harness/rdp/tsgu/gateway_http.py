"""The RD Gateway's HTTP phase, sans-IO: request heads in, response bytes and a decision out.

What a Windows RD Gateway (IIS in front of the RDG service) checks before the tunnel starts, in
its order: the request parses (else 400), the method is RDG_OUT_DATA or RDG_IN_DATA (405), the URI
is /remoteDesktopGateway/ (404), an RDG-Connection-Id is present (400), the transport asked for is
enabled (404), then the NTLM round over 401s (a bare `WWW-Authenticate: NTLM`, the CHALLENGE, then
the request that carries the AUTHENTICATE goes through). FreeRDP authenticates RDG_IN_DATA with
`Content-Length: 0`, takes the 200 and sends the request again with chunked coding: that second
request opens the IN channel. The driver moves bytes and parks channels; it decides nothing.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import ParseError, RdpError, StateError
from ..ntlm import NtlmAcceptor, NtlmAuthError
from .framing import websocket_accept
from .http import (
    RDG_IN,
    RDG_OUT,
    RDG_URI,
    Headers,
    HttpRequest,
    HttpResponse,
    is_websocket_upgrade,
    ntlm_authorization,
    parse_ntlm_value,
    parse_request,
)

SEED = b"\xab\xcd" * 5  # the 10-byte entity body after the OUT channel's 200 (FreeRDP skips 10)
NTLM_NEGOTIATE = 1


class HttpPhase(enum.Enum):
    REQUEST = "request"  # waiting for a request (first, or the next of the NTLM round)
    IN_CHUNKED = "in_chunked"  # IN channel authenticated: waiting for its chunked repeat
    OPEN = "open"  # a channel opened: the tunnel phase follows
    CLOSED = "closed"  # refused: the driver sends the reply and closes


@dataclass(frozen=True)
class ChannelAccepted:
    """An authenticated RDG_OUT_DATA or RDG_IN_DATA channel (the tunnel starts after it)."""

    method: str
    connection_id: str
    user: str
    domain: str
    websocket: bool
    request: HttpRequest


@dataclass(frozen=True)
class HttpStep:
    """What to do after one request: send `reply`, log `note`, then close (`close`), go on
    reading requests, or run the tunnel for `opened`."""

    reply: bytes = b""
    close: bool = False
    note: str | None = None
    opened: ChannelAccepted | None = None


def response(status: int, reason: str, headers: Headers = ()) -> bytes:
    return HttpResponse(status, reason, headers).encode()


def error_page(status: int, reason: str, extra: Headers = ()) -> bytes:
    """An IIS-style error response with a small HTML body."""
    body = f"<html><body>{status} {reason}</body></html>".encode()
    headers = (*extra, ("Content-Type", "text/html"), ("Content-Length", str(len(body))))
    return response(status, reason, headers) + body


_ASK_NTLM = (("WWW-Authenticate", "NTLM"),)


class GatewayHttpServer:
    """One client connection's HTTP phase. `new_acceptor` makes the gateway's NTLM acceptor
    (harness/rdp/ntlm.py `host_acceptor`), made anew, once per NTLM NEGOTIATE."""

    def __init__(self, new_acceptor: Callable[[], NtlmAcceptor], *,
                 websocket_allowed: bool = True, http_allowed: bool = True) -> None:
        self._new_acceptor = new_acceptor
        self._websocket_allowed = websocket_allowed
        self._http_allowed = http_allowed
        self._acceptor: NtlmAcceptor | None = None
        self._user: tuple[str, str] | None = None
        self._pending_in: tuple[str, bool] | None = None
        self.phase = HttpPhase.REQUEST

    def receive_head(self, head: bytes) -> HttpStep:
        """One whole request head (HeadBuffer cuts them)."""
        if self.phase not in (HttpPhase.REQUEST, HttpPhase.IN_CHUNKED):
            raise StateError(f"gateway http {self.phase.value}", "a request after the end")
        try:
            request = parse_request(head)
        except ParseError:
            return self._refuse(400, "Bad Request")
        if self.phase is HttpPhase.IN_CHUNKED:
            return self._in_repeat(request)
        return self._request(request)

    # -- the checks, in Windows' order --------------------------------------------------------

    def _request(self, req: HttpRequest) -> HttpStep:
        if req.method not in (RDG_OUT, RDG_IN):
            return self._refuse(405, "Method Not Allowed")
        if req.target.split("?")[0].rstrip("/").lower() != RDG_URI.rstrip("/").lower():
            return self._refuse(404, "Not Found")
        conn_id = req.header("RDG-Connection-Id")
        if not conn_id:
            return self._refuse(400, "Bad Request")
        websocket = req.method == RDG_OUT and is_websocket_upgrade(req) and \
            self._websocket_allowed
        if not websocket and not self._http_allowed:
            return self._refuse(404, "Not Found", note=f"HTTP transport disabled: 404 "
                                f"({req.method})")
        if self._user is None:
            step = self._authenticate(req)
            if step is not None:
                return step
        assert self._user is not None
        if req.method == RDG_OUT:
            return self._open(req, conn_id, websocket)
        if (req.header("Transfer-Encoding") or "").lower() != "chunked":
            self.phase = HttpPhase.IN_CHUNKED
            self._pending_in = (conn_id, False)
            return HttpStep(reply=response(200, "OK", (("Content-Length", "0"),)))
        return self._open(req, conn_id, False)

    def _authenticate(self, req: HttpRequest) -> HttpStep | None:
        """The NTLM round; None once the user is known (the request goes through)."""
        try:
            token = parse_ntlm_value(req.header("Authorization"))
        except ParseError:
            token = None
        if token is None:
            return HttpStep(reply=error_page(401, "Unauthorized", _ASK_NTLM))
        if self._acceptor is None or token[8:9] == bytes([NTLM_NEGOTIATE]):
            self._acceptor = self._new_acceptor()
        try:
            challenge = self._acceptor.step(token)
        except (NtlmAuthError, RdpError) as exc:
            return self._refuse(401, "Unauthorized", _ASK_NTLM,
                                note=f"HTTP NTLM authentication failed: {exc}")
        if challenge is not None:
            www = (("WWW-Authenticate", ntlm_authorization(challenge)),)
            return HttpStep(reply=error_page(401, "Unauthorized", www))
        self._user = (self._acceptor.user or "", self._acceptor.domain or "")
        return None

    def _in_repeat(self, req: HttpRequest) -> HttpStep:
        assert self._pending_in is not None
        if req.method != RDG_IN or (req.header("Transfer-Encoding") or "").lower() != "chunked":
            return self._refuse(400, "Bad Request")
        return self._open(req, self._pending_in[0], False)

    def _open(self, req: HttpRequest, conn_id: str, websocket: bool) -> HttpStep:
        assert self._user is not None
        self.phase = HttpPhase.OPEN
        opened = ChannelAccepted(req.method, conn_id, *self._user, websocket, req)
        if req.method == RDG_IN:
            return HttpStep(opened=opened)
        note = f"{RDG_OUT} accepted ({'WebSocket' if websocket else 'HTTP'} transport)"
        if websocket:
            accept = websocket_accept(req.header("Sec-WebSocket-Key") or "")
            reply = response(101, "Switching Protocols", (
                ("Upgrade", "websocket"), ("Connection", "Upgrade"),
                ("Sec-WebSocket-Accept", accept)))
        else:
            # HTTP transport: 200 without a length, then the seed; the OUT stream stays open.
            reply = response(200, "OK", (("Cache-Control", "no-cache"),)) + SEED
        return HttpStep(reply=reply, note=note, opened=opened)

    def _refuse(self, status: int, reason: str, extra: Headers = (), *,
                note: str | None = None) -> HttpStep:
        self.phase = HttpPhase.CLOSED
        return HttpStep(reply=error_page(status, reason, extra), close=True, note=note)
