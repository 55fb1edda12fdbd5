"""The emulated RD Gateway and the client tunnel, on loopback, relaying to a small echo server."""

from __future__ import annotations

import contextlib
import shutil
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import harness
from harness.gateway.client import GatewayError, open_tunnel
from harness.gateway.policy import GatewayPolicy
from harness.gateway.server import GatewayServer, default_connect
from harness.host.policy import CredentialUnavailable, TlsCredential
from harness.pki import KeyPair, expired_window, issue_server_cert, make_ca
from harness.rdp import tsgu

USERS = {"alice": "Passw0rd!", "bob": "hunter2"}
GW_NAME = "gw.lab.test"


@pytest.fixture(scope="module")
def ca() -> KeyPair:
    return make_ca()


@pytest.fixture(scope="module")
def gw_cert(ca: KeyPair) -> KeyPair:
    return issue_server_cert(ca, GW_NAME, names=[GW_NAME, "127.0.0.1"])


@pytest.fixture(scope="module")
def cafile(ca: KeyPair, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    path.write_bytes(ca.cert_pem)
    return str(path)


class EchoServer:
    """Echoes every byte; remembers what arrived first on each connection."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.first: list[bytes] = []
        self.close_after_first = False
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                continue
            t = threading.Thread(target=self._echo, args=(conn,), daemon=True)
            self._threads.append(t)
            t.start()

    def _echo(self, conn: socket.socket) -> None:
        conn.settimeout(0.2)
        first = True
        with conn:
            while not self._stop.is_set():
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not data:
                    return
                if first:
                    self.first.append(data)
                    first = False
                    if self.close_after_first:
                        return
                conn.sendall(data)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for t in self._threads:
            t.join(2)
        self.listener.close()


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


GatewayFactory = Callable[..., tuple[GatewayServer, int]]


@pytest.fixture
def gateway(gw_cert: KeyPair) -> Iterator[GatewayFactory]:
    started: list[tuple[GatewayServer, socket.socket]] = []

    def start(**overrides: Any) -> tuple[GatewayServer, int]:
        connect = overrides.pop("connect", default_connect)
        fields: dict[str, Any] = {
            "load_credential": lambda: TlsCredential(gw_cert.cert_pem, gw_cert.key_pem),
            "users": USERS,
        }
        fields.update(overrides)
        listener = socket.create_server(("127.0.0.1", 0))
        server = GatewayServer(listener, GatewayPolicy(**fields), connect=connect, timeout=5.0)
        server.start()
        started.append((server, listener))
        return server, listener.getsockname()[1]

    yield start
    for server, listener in started:
        server.stop()
        listener.close()


class Recorder:
    def __init__(self) -> None:
        self.stages: list[tuple[str, str, dict[str, Any]]] = []

    def __call__(self, stage: str, outcome: str, seconds: float, detail: dict[str, Any]) -> None:
        assert seconds >= 0
        self.stages.append((stage, outcome, detail))

    def outcomes(self) -> list[tuple[str, str]]:
        return [(s, o) for s, o, _ in self.stages]


def _open(port: int, target_port: int, rec: Recorder | None = None, **kw: Any) -> Any:
    args: dict[str, Any] = {
        "username": "alice", "password": USERS["alice"], "domain": "LAB", "verify": False,
        "timeout": 5.0, "record": rec,
    }
    args.update(kw)
    return open_tunnel("127.0.0.1", port, "127.0.0.1", target_port, **args)


def _echo_round(tunnel: Any, payload: bytes) -> bytes:
    tunnel.sendall(payload)
    got = b""
    while len(got) < len(payload):
        chunk = tunnel.recv(65536)
        assert chunk, "tunnel closed early"
        got += chunk
    return got


# -- the working path ---------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["http", "websocket", "auto"])
def test_bytes_echo_through_the_tunnel(
    transport: str, gateway: GatewayFactory, echo: EchoServer, cafile: str
) -> None:
    server, port = gateway()
    rec = Recorder()
    tunnel = _open(port, echo.port, rec, transport=transport, verify=True, cafile=cafile,
                   server_hostname=GW_NAME)
    try:
        assert tunnel.transport == ("http" if transport == "http" else "websocket")
        cr = bytes.fromhex("0300002a25e00000000000436f6f6b69653a206d737473686173683d616c6963650d0a"
                           "010008000b000000")
        assert _echo_round(tunnel, cr) == cr
        big = bytes(range(256)) * 800  # 200 KB: several DATA packets of at most 64 KiB
        assert _echo_round(tunnel, big) == big
    finally:
        tunnel.close()
    assert echo.first[0] == cr
    assert rec.outcomes() == [
        ("gateway_tcp", "ok"), ("gateway_tls", "ok"), ("gateway_http", "ok"),
        ("gateway_tunnel", "ok"),
    ]
    assert rec.stages[1][2]["subject"] == f"CN={GW_NAME}"
    ids = {e.event_id for e in server.log}
    assert {200, 302} <= ids


def test_target_closing_ends_the_tunnel(gateway: GatewayFactory, echo: EchoServer) -> None:
    echo.close_after_first = True
    _, port = gateway()
    tunnel = _open(port, echo.port, transport="websocket")
    try:
        tunnel.sendall(b"hello")
        assert tunnel.recv(100) == b""
        assert tunnel.close_status == tsgu.S_OK
        with pytest.raises(BrokenPipeError):
            tunnel.sendall(b"more")
    finally:
        tunnel.close()


def test_connect_callable_is_used(gateway: GatewayFactory, echo: EchoServer) -> None:
    asked: list[tuple[str, int, float]] = []

    def connect(host: str, port: int, timeout: float) -> socket.socket:
        asked.append((host, port, timeout))
        return socket.create_connection(("127.0.0.1", echo.port), timeout=timeout)

    _, port = gateway(connect=connect)
    tunnel = open_tunnel("127.0.0.1", port, "rdhost.lab.test", 3389, username="bob",
                         password="hunter2", verify=False, timeout=5.0, transport="http")
    with tunnel:
        assert _echo_round(tunnel, b"ping") == b"ping"
    assert asked == [("rdhost.lab.test", 3389, 5.0)]


# -- failures, one per stage --------------------------------------------------------------------


def test_expired_gateway_certificate_fails_at_gateway_tls(
    gateway: GatewayFactory, ca: KeyPair, cafile: str, echo: EchoServer
) -> None:
    start, end = expired_window()
    expired = issue_server_cert(ca, GW_NAME, names=[GW_NAME], not_before=start, not_after=end)
    _, port = gateway(load_credential=lambda: TlsCredential(expired.cert_pem, expired.key_pem))
    rec = Recorder()
    with pytest.raises(GatewayError) as err:
        _open(port, echo.port, rec, verify=True, cafile=cafile, server_hostname=GW_NAME)
    assert err.value.stage == "gateway_tls"
    assert "expired" in err.value.reason
    assert rec.outcomes() == [("gateway_tcp", "ok"), ("gateway_tls", "failed")]
    assert rec.stages[-1][2]["verify_code"] == 10  # X509_V_ERR_CERT_HAS_EXPIRED
    # the same gateway with a client that does not verify gets through
    with _open(port, echo.port, verify=False) as tunnel:
        assert _echo_round(tunnel, b"x") == b"x"


def test_unreadable_gateway_key_fails_at_gateway_tls(
    gateway: GatewayFactory, echo: EchoServer
) -> None:
    def broken() -> TlsCredential:
        raise CredentialUnavailable("keyset does not exist")

    server, port = gateway(load_credential=broken)
    with pytest.raises(GatewayError) as err:
        _open(port, echo.port)
    assert err.value.stage == "gateway_tls"
    assert any(e.event_id == 36870 for e in server.log)


@pytest.mark.parametrize("transport", ["http", "websocket"])
def test_wrong_password_fails_at_gateway_http_with_401(
    transport: str, gateway: GatewayFactory, echo: EchoServer
) -> None:
    server, port = gateway()
    rec = Recorder()
    with pytest.raises(GatewayError) as err:
        _open(port, echo.port, rec, password="wrong", transport=transport)
    assert (err.value.stage, err.value.http_status) == ("gateway_http", 401)
    assert rec.outcomes()[-1] == ("gateway_http", "failed")
    assert any("authentication failed" in e.message for e in server.log)


def test_unknown_user_fails_at_gateway_http(gateway: GatewayFactory, echo: EchoServer) -> None:
    _, port = gateway()
    with pytest.raises(GatewayError) as err:
        _open(port, echo.port, username="mallory")
    assert (err.value.stage, err.value.http_status) == ("gateway_http", 401)


@pytest.mark.parametrize("transport", ["http", "websocket"])
def test_resource_denied_fails_at_gateway_tunnel(
    transport: str, gateway: GatewayFactory, echo: EchoServer
) -> None:
    server, port = gateway(allowed_resources=("rdhost.lab.test:3389",))
    rec = Recorder()
    with pytest.raises(GatewayError) as err:
        _open(port, echo.port, rec, transport=transport)
    assert err.value.stage == "gateway_tunnel"
    assert err.value.tsgu_error == tsgu.E_PROXY_RAP_ACCESSDENIED
    assert rec.stages[-1][2]["step"] == "channel_create"
    assert any(e.event_id == 301 for e in server.log)
    assert not echo.first  # the gateway never connected


def test_user_not_in_cap_fails_at_tunnel_authorization(
    gateway: GatewayFactory, echo: EchoServer
) -> None:
    server, port = gateway(allowed_users=frozenset({"LAB\\bob"}))
    with pytest.raises(GatewayError) as err:
        _open(port, echo.port)
    assert err.value.stage == "gateway_tunnel"
    assert err.value.tsgu_error == tsgu.E_PROXY_NAP_ACCESSDENIED
    assert any(e.event_id == 201 for e in server.log)
    with _open(port, echo.port, username="bob", password="hunter2") as tunnel:
        assert _echo_round(tunnel, b"ok") == b"ok"


def test_websocket_blocked_fails_when_insisted_and_falls_back_on_auto(
    gateway: GatewayFactory, echo: EchoServer
) -> None:
    _, port = gateway(websocket_allowed=False)
    rec = Recorder()
    with pytest.raises(GatewayError) as err:
        _open(port, echo.port, rec, transport="websocket")
    assert (err.value.stage, err.value.http_status) == ("gateway_http", 200)
    assert "WebSocket" in err.value.reason
    with _open(port, echo.port, transport="auto") as tunnel:
        assert tunnel.transport == "http"
        assert _echo_round(tunnel, b"fallback") == b"fallback"


def test_http_transport_disabled_gives_404(gateway: GatewayFactory, echo: EchoServer) -> None:
    _, port = gateway(http_allowed=False)
    with pytest.raises(GatewayError) as err:
        _open(port, echo.port, transport="http")
    assert (err.value.stage, err.value.http_status) == ("gateway_http", 404)
    with _open(port, echo.port, transport="websocket") as tunnel:
        assert _echo_round(tunnel, b"ws") == b"ws"


def test_target_unreachable_fails_channel_create(gateway: GatewayFactory) -> None:
    closed = socket.create_server(("127.0.0.1", 0))
    dead_port = closed.getsockname()[1]
    closed.close()  # nothing listens there now: connection refused
    server, port = gateway()
    rec = Recorder()
    with pytest.raises(GatewayError) as err:
        _open(port, dead_port, rec)
    assert err.value.stage == "gateway_tunnel"
    assert err.value.tsgu_error == tsgu.E_PROXY_TS_CONNECTFAILED
    assert rec.stages[-1][2]["tsgu_error"] == "E_PROXY_TS_CONNECTFAILED"
    assert any("could not connect" in e.message for e in server.log)


def test_gateway_firewalled_from_hosts_fails_channel_create(
    gateway: GatewayFactory, echo: EchoServer
) -> None:
    _, port = gateway(host_reachable=False)
    with pytest.raises(GatewayError) as err:
        _open(port, echo.port, transport="websocket")
    assert err.value.tsgu_error == tsgu.E_PROXY_TS_CONNECTFAILED
    assert not echo.first


def test_gateway_not_listening_fails_at_gateway_tcp(echo: EchoServer) -> None:
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    rec = Recorder()
    with pytest.raises(GatewayError) as err:
        _open(port, echo.port, rec)
    assert err.value.stage == "gateway_tcp"
    assert rec.outcomes() == [("gateway_tcp", "failed")]


def test_bad_transport_name() -> None:
    with pytest.raises(ValueError):
        open_tunnel("127.0.0.1", 1, "h", 1, username="u", password="p", transport="rpc")  # type: ignore[arg-type]


# -- the server against odd clients -------------------------------------------------------------


def _raw_tls(port: int) -> Any:
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    return ctx.wrap_socket(sock)


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 405),
        (b"RDG_OUT_DATA /elsewhere/ HTTP/1.1\r\nRDG-Connection-Id: {1}\r\n\r\n", 404),
        (b"RDG_OUT_DATA /remoteDesktopGateway/ HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"RDG_OUT_DATA /remoteDesktopGateway/ HTTP/1.1\r\nRDG-Connection-Id: {1}\r\n\r\n", 401),
        (b"complete nonsense\r\n\r\n", 400),
    ],
)
def test_server_answers_odd_requests(
    gateway: GatewayFactory, request_bytes: bytes, status: int
) -> None:
    _, port = gateway()
    with contextlib.closing(_raw_tls(port)) as tls:
        tls.sendall(request_bytes)
        buf = tsgu.HeadBuffer()
        head = None
        while head is None:
            chunk = tls.recv(4096)
            assert chunk
            head = buf.feed(chunk)
        assert tsgu.parse_response(head).status == status


def test_server_survives_garbage_after_upgrade(gateway: GatewayFactory, echo: EchoServer) -> None:
    """A client that authenticates, upgrades, then sends a broken frame is dropped cleanly."""
    _, port = gateway()
    tunnel = _open(port, echo.port, transport="websocket")
    tunnel._out.tls.sendall(b"\xff\xff\xff")  # reserved bits: the gateway must drop us
    tunnel.settimeout(5)
    assert tunnel.recv(10) == b""
    tunnel.close()
    with _open(port, echo.port) as again:  # and the server still works
        assert _echo_round(again, b"fine") == b"fine"


def test_policy_matching() -> None:
    p = GatewayPolicy(allowed_users=frozenset({"alice", "LAB\\Bob"}),
                      allowed_resources=("rdhost", "*:3390", "db.lab.test:3389"))
    assert p.user_allowed("ALICE") and p.user_allowed("bob", "lab")
    assert not p.user_allowed("bob", "OTHER")
    assert p.resource_allowed("RDHOST", 1) and p.resource_allowed("any", 3390)
    assert p.resource_allowed("db.lab.test.", 3389) and not p.resource_allowed("db.lab.test", 22)
    assert GatewayPolicy().resource_allowed("x", 1) and GatewayPolicy().user_allowed("x")


def test_gateway_codes_data_file_loads() -> None:
    import yaml

    path = Path(harness.__file__).parent / "data" / "gateway_codes.yaml"
    data = yaml.safe_load(path.read_text())
    tsgu_codes = {e["name"]: int(e["code"], 16) for e in data["tsgu_status"]}
    assert tsgu_codes["E_PROXY_RAP_ACCESSDENIED"] == tsgu.E_PROXY_RAP_ACCESSDENIED
    assert all(e["confidence"] in ("doc", "run", "open") for e in data["tsgu_status"])
    assert {e["exit"] for e in data["freerdp"]} >= {131, 143, 155}
    for entry in data["mstsc_gateway_disconnect"]:
        assert entry["confidence"] in ("doc", "run", "open")
        assert int(entry["code"], 16) >= 0x3000001


def test_request_in_the_same_segment_as_the_tls_finished(gateway: GatewayFactory) -> None:
    """TLS 1.3 clients (FreeRDP) may send their first request right behind Finished."""
    from harness.rdp.tls import TlsEndpoint, client_context

    _, port = gateway()
    client = TlsEndpoint(client_context(), server_side=False, server_hostname=GW_NAME)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        while not client.do_handshake():
            sock.sendall(client.outgoing())
            client.feed(sock.recv(65536))
        req = tsgu.rdg_request(tsgu.RDG_OUT, GW_NAME, "{1}")
        client.write(req.encode())
        sock.sendall(client.outgoing())  # Finished and the request in one write
        heads = tsgu.HeadBuffer()
        head = None
        while head is None:
            data = sock.recv(65536)
            assert data, "gateway closed instead of answering"
            client.feed(data)
            head = heads.feed(client.read())
        assert tsgu.parse_response(head).status == 401


# -- real FreeRDP through the gateway -----------------------------------------------------------

pytestmark_freerdp = pytest.mark.skipif(
    not (shutil.which("xfreerdp") and shutil.which("Xvfb")), reason="needs xfreerdp and Xvfb"
)


@pytest.fixture(scope="module")
def display() -> Iterator[str]:
    from harness.xdisplay import Xvfb

    with Xvfb() as x:
        assert x.display
        yield x.display


def _xfreerdp(display: str, gw: str, transport: str, password: str = "Passw0rd!", **kw: Any) -> Any:
    from harness.freerdp import run_xfreerdp

    extra = [f"/g:{gw}", "/gu:alice", f"/gp:{password}", "/gd:LAB", f"/gt:{transport}"]
    return run_xfreerdp("rdhost.lab.test", 3389, display=display, username="alice",
                        password="Passw0rd!", domain="LAB", extra=extra, timeout=20, **kw)


def _to_echo(echo: EchoServer) -> Callable[[str, int, float], socket.socket]:
    def connect(host: str, port: int, timeout: float) -> socket.socket:
        assert (host, port) == ("rdhost.lab.test", 3389)
        return socket.create_connection(("127.0.0.1", echo.port), timeout=timeout)

    return connect


@pytest.mark.freerdp
@pytestmark_freerdp
@pytest.mark.parametrize("transport", ["http", "http,no-websockets"])
def test_xfreerdp_reaches_the_target_through_the_gateway(
    transport: str, display: str, gateway: GatewayFactory, echo: EchoServer
) -> None:
    echo.close_after_first = True  # record the X.224 Connection Request, then hang up
    server, port = gateway(connect=_to_echo(echo))
    run = _xfreerdp(display, f"127.0.0.1:{port}", transport)
    assert echo.first, run.output[-2000:]
    cr = echo.first[0]
    assert cr[:2] == b"\x03\x00" and int.from_bytes(cr[2:4], "big") == len(cr)
    assert b"Cookie: mstshash=" in cr
    websocket = "no-websockets" not in transport
    kind = "WebSocket" if websocket else "HTTP"
    assert any(f"({kind} transport)" in e.message for e in server.log)
    assert run.exit_code == 147  # the target hung up after the Connection Request


@pytest.mark.freerdp
@pytestmark_freerdp
@pytest.mark.parametrize(
    ("overrides", "password", "exit_code", "text"),
    [
        ({}, "wrong", 155, "ERRCONNECT_ACCESS_DENIED"),
        ({"allowed_users": frozenset({"bob"})}, "Passw0rd!", 131, "E_PROXY_NAP_ACCESSDENIED"),
        ({"allowed_resources": ("other",)}, "Passw0rd!", 131, "E_PROXY_RAP_ACCESSDENIED"),
        ({"host_reachable": False}, "Passw0rd!", 131, "E_PROXY_TS_CONNECTFAILED"),
    ],
)
def test_xfreerdp_gateway_refusals(
    display: str, gateway: GatewayFactory, echo: EchoServer, overrides: dict[str, Any],
    password: str, exit_code: int, text: str,
) -> None:
    _, port = gateway(connect=_to_echo(echo), **overrides)
    run = _xfreerdp(display, f"127.0.0.1:{port}", "http", password=password)
    assert run.exit_code == exit_code, run.output[-2000:]
    assert text in run.output
    assert not echo.first


@pytest.mark.freerdp
@pytestmark_freerdp
def test_xfreerdp_refuses_an_expired_gateway_certificate(
    display: str, gateway: GatewayFactory, ca: KeyPair, echo: EchoServer, tmp_path: Path
) -> None:
    start, end = expired_window()
    expired = issue_server_cert(ca, "localhost", names=["localhost"], not_before=start,
                                not_after=end)
    _, port = gateway(connect=_to_echo(echo),
                      load_credential=lambda: TlsCredential(expired.cert_pem, expired.key_pem))
    cafile = tmp_path / "ca.pem"
    cafile.write_bytes(ca.cert_pem)
    run = _xfreerdp(display, f"localhost:{port}", "http", cert="deny", cafile=cafile)
    assert run.exit_code == 143, run.output[-2000:]  # TLS_CONNECT_FAILED
    assert not echo.first


# -- glue for the probe -------------------------------------------------------------------------


def test_gateway_error_carries_what_the_probe_reads(
    gateway: GatewayFactory, echo: EchoServer
) -> None:
    from harness.rdp.errors import RdpError

    _, port = gateway(allowed_resources=("elsewhere",))
    with pytest.raises(RdpError) as err:
        _open(port, echo.port)
    assert isinstance(err.value, GatewayError)
    assert err.value.stage == "gateway_tunnel"
    assert err.value.event == "tsgu:E_PROXY_RAP_ACCESSDENIED"
    assert err.value.detail["tsgu_error"] == "E_PROXY_RAP_ACCESSDENIED"
    with pytest.raises(GatewayError) as err2:
        _open(port, echo.port, password="nope")
    assert err2.value.event == "http_401"


def test_parse_gateway_url() -> None:
    from harness.gateway.probe_support import parse_gateway_url

    assert parse_gateway_url("https://gw.lab.test") == ("gw.lab.test", 443, None, None)
    assert parse_gateway_url("https://LAB%5Calice@gw:8443") == ("gw", 8443, "alice", "LAB")
    assert parse_gateway_url("gw:444") == ("gw", 444, None, None)
    for bad in ("http://gw", "https://", "https://gw:port"):
        with pytest.raises(ValueError):
            parse_gateway_url(bad)


def test_gateway_connector_opens_a_tunnel(gateway: GatewayFactory, echo: EchoServer) -> None:
    from types import SimpleNamespace

    from harness.gateway.probe_support import gateway_connector

    _, port = gateway()
    target = SimpleNamespace(username="alice", password=USERS["alice"], domain="LAB")
    options = SimpleNamespace(cert_policy="ignore", cafile=None, profile=None)
    rec = Recorder()
    connect = gateway_connector(f"https://127.0.0.1:{port}", target, options, record=rec)
    with connect("127.0.0.1", echo.port, 5.0) as tunnel:
        assert _echo_round(tunnel, b"probe") == b"probe"
    assert [s for s, _ in rec.outcomes()][-1] == "gateway_tunnel"
