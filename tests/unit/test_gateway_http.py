"""The RD Gateway's HTTP phase without sockets: the checks in order, the NTLM 401 round with a
real NTLM initiator, FreeRDP's repeated RDG_IN_DATA, and the WebSocket upgrade."""

from __future__ import annotations

import functools

import pytest

from harness.rdp import tsgu
from harness.rdp.errors import StateError
from harness.rdp.ntlm import NtlmInitiator, host_acceptor

USERS = {"alice": "Secret1!"}
ACCEPTOR = functools.partial(host_acceptor, USERS, domain="LAB", computer_name="RDGW",
                             dns_domain="lab.test")


def _head(method: str = tsgu.RDG_OUT, *, target: str = tsgu.RDG_URI,
          authorization: str | None = None, chunked: bool = False,
          websocket: bool = False, conn_id: str | None = "{X}") -> bytes:
    req = tsgu.rdg_request(method, "gw.lab.test", conn_id or "", authorization=authorization,
                           chunked=chunked, websocket_key="abc" if websocket else None)
    headers = tuple(h for h in req.headers if conn_id or h[0] != "RDG-Connection-Id")
    return tsgu.HttpRequest(method, target, headers).encode()


def _status(step: tsgu.HttpStep) -> int:
    return tsgu.parse_response(step.reply[: step.reply.index(b"\r\n\r\n") + 4]).status


def _authenticate(http: tsgu.GatewayHttpServer, method: str, password: str = "Secret1!",
                  **kw: object) -> tsgu.HttpStep:
    """Run the 401 round as FreeRDP does; the step answering the AUTHENTICATE."""
    first = http.receive_head(_head(method, **kw))  # type: ignore[arg-type]
    assert _status(first) == 401 and b"WWW-Authenticate: NTLM\r\n" in first.reply
    initiator = NtlmInitiator("alice", password, "LAB")
    step = http.receive_head(_head(method, authorization=tsgu.ntlm_authorization(
        initiator.step()), **kw))  # type: ignore[arg-type]
    assert _status(step) == 401 and not step.close
    challenge = tsgu.response_ntlm_token(tsgu.parse_response(
        step.reply[: step.reply.index(b"\r\n\r\n") + 4]))
    assert challenge is not None
    return http.receive_head(_head(method, authorization=tsgu.ntlm_authorization(
        initiator.step(challenge)), **kw))  # type: ignore[arg-type]


@pytest.mark.parametrize(("head", "status"), [
    (b"garbage\r\n\r\n", 400),
    (_head("GET"), 405),
    (_head(target="/other/"), 404),
    (_head(conn_id=None), 400),
])
def test_checks_refuse_in_windows_order(head: bytes, status: int) -> None:
    http = tsgu.GatewayHttpServer(ACCEPTOR)
    step = http.receive_head(head)
    assert (_status(step), step.close, step.opened) == (status, True, None)
    assert http.phase is tsgu.HttpPhase.CLOSED
    with pytest.raises(StateError, match="gateway http closed"):
        http.receive_head(_head())


def test_http_transport_disabled_is_404_before_authentication() -> None:
    step = tsgu.GatewayHttpServer(ACCEPTOR, http_allowed=False).receive_head(_head())
    assert _status(step) == 404 and step.close and "HTTP transport disabled" in (step.note or "")


def test_out_channel_after_ntlm_gets_200_and_the_seed() -> None:
    step = _authenticate(tsgu.GatewayHttpServer(ACCEPTOR), tsgu.RDG_OUT)
    assert _status(step) == 200 and step.reply.endswith(b"\r\n\r\n" + tsgu.SEED)
    assert step.opened is not None
    assert (step.opened.user, step.opened.connection_id, step.opened.websocket) == \
        ("alice", "{X}", False)


def test_wrong_password_ends_with_401_and_a_note() -> None:
    step = _authenticate(tsgu.GatewayHttpServer(ACCEPTOR), tsgu.RDG_OUT, password="nope")
    assert _status(step) == 401 and step.close and step.opened is None
    assert "NTLM authentication failed" in (step.note or "")


def test_in_channel_is_opened_by_its_chunked_repeat() -> None:
    http = tsgu.GatewayHttpServer(ACCEPTOR)
    step = _authenticate(http, tsgu.RDG_IN)
    assert (_status(step), step.opened, http.phase) == (200, None, tsgu.HttpPhase.IN_CHUNKED)
    step = http.receive_head(_head(tsgu.RDG_IN, chunked=True))
    assert step.reply == b"" and step.opened is not None and step.opened.method == tsgu.RDG_IN


def test_in_channel_repeat_without_chunked_is_400() -> None:
    http = tsgu.GatewayHttpServer(ACCEPTOR)
    _authenticate(http, tsgu.RDG_IN)
    step = http.receive_head(_head(tsgu.RDG_IN))
    assert _status(step) == 400 and step.close


@pytest.mark.parametrize(("allowed", "status"), [(True, 101), (False, 200)])
def test_websocket_upgrade_only_when_allowed(allowed: bool, status: int) -> None:
    http = tsgu.GatewayHttpServer(ACCEPTOR, websocket_allowed=allowed)
    step = _authenticate(http, tsgu.RDG_OUT, websocket=True)
    assert _status(step) == status and step.opened is not None
    assert step.opened.websocket is allowed
    if allowed:
        assert f"Sec-WebSocket-Accept: {tsgu.websocket_accept('abc')}".encode() in step.reply
