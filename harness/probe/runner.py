"""The probe driver: moves bytes between a socket and the sans-IO client, timing every stage.

Every wait is bounded by the current stage's timeout from the client profile (and by an overall
cap), so no server can make the probe hang; every exception from the core is a typed failure.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from ..capture.session import keylog_path, wrap_stream
from ..rdp import events as ev
from ..rdp.certverify import load_trust_anchors
from ..rdp.client import ClientConfig, ClientConnection
from ..rdp.errors import RdpError
from ..rdp.waits import adaptive_limit
from .kerberos import KerberosClient
from .profiles import ClientProfile
from .result import Failure, ProbeResult, StageRecord


class Stream(Protocol):
    """What the probe needs of a transport: a socket, or a tunnel through an RD Gateway."""

    def sendall(self, data: bytes, /) -> Any: ...
    def recv(self, n: int, /) -> bytes: ...
    def settimeout(self, t: float | None, /) -> None: ...
    def close(self) -> None: ...


Connector = Callable[[str, int, float], Stream]
Resolver = Callable[[str], str]


def tcp_connect(host: str, port: int, timeout: float) -> socket.socket:
    """A plain TCP connection (the loopback backend's connector)."""
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


@dataclass
class ProbeTarget:
    host: str
    port: int = 3389
    username: str = ""
    password: str = ""
    domain: str = ""

    def url(self) -> str:
        user = f"{self.username}@" if self.username else ""
        return f"rdp://{user}{self.host}:{self.port}"


@dataclass
class ProbeOptions:
    profile: ClientProfile
    cert_policy: str | None = None  # overrides the profile's
    cafile: Path | None = None
    trust_pem: bytes = b""  # trust anchors given directly (the lab's CA)
    overall_timeout: float = 60.0
    clock_offset: float = 0.0  # seconds the client's clock is ahead of real time
    credssp_version: int | None = None  # overrides (client model's patch level)
    allow_encryption_oracle: int | None = None
    tls_max: str | None = None
    connect: Connector = tcp_connect
    resolve: Resolver | None = None
    usable_window: float | None = None  # the longest wait for the first graphics
    # With a floor, each wait for the server adapts to the path as TCP's retransmission timer
    # does (RFC 6298, rdp/waits.py): TURN_FACTOR x the slowest answer the server gave on this
    # connection so far, never less than the floor nor more than the stage's limit (the usable
    # window for graphics). None: always the stage's limit.
    adaptive_floor: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    kerberos: KerberosClient | None = None  # a domain client's realm (the lab's KDC)


def _classify_connect_error(exc: OSError) -> str:
    if isinstance(exc, socket.gaierror):  # the connector resolved the name itself, and failed
        return "dns_failed"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timeout"
    if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return "unreachable"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "blocked"  # WSAEACCES: a local filter refused the connect
    if exc.errno == errno.EINVAL:
        return "socket_error"  # WSAEINVAL: the client's own network stack is broken
    return "failed"


class _Run:
    """State of one probe run: the trace being built and the clock of the current stage."""

    def __init__(self, target: ProbeTarget, options: ProbeOptions) -> None:
        self.target = target
        self.options = options
        self.result = ProbeResult(target=target.url(), profile=options.profile.name)
        self.t0 = time.monotonic()
        self.stage_start = self.t0
        self.slowest_turn = 0.0  # the longest the server took to answer one of our sends

    def record(self, stage: str, outcome: str, detail: dict[str, Any]) -> None:
        now = time.monotonic()
        self.result.stages.append(StageRecord(stage, outcome, now - self.stage_start, detail))
        self.stage_start = now

    def record_timed(self, stage: str, outcome: str, seconds: float,
                     detail: dict[str, Any]) -> None:
        """A stage timed by a connector (an RD Gateway tunnel's gateway_* stages)."""
        self.result.stages.append(StageRecord(stage, outcome, seconds, dict(detail)))
        self.stage_start = time.monotonic()

    def fail(self, stage: str, event: str, reason: str, detail: dict[str, Any] | None = None,
             error_info: int | None = None) -> None:
        detail = dict(detail or {})
        last = self.result.stages[-1] if self.result.stages else None
        if last is None or (last.stage, last.outcome) != (stage, "failed"):  # not yet recorded
            self.record(stage, "failed", {**detail, "reason": reason})
        self.result.failure = Failure(stage, event, reason, detail, error_info)

    def overall_expired(self) -> bool:
        return time.monotonic() >= self.t0 + self.options.overall_timeout

    def overall_reason(self, stage: str) -> str:
        return f"--timeout {self.options.overall_timeout:g} s reached during {stage}"

    def stage_limit(self, stage: str) -> float:
        """How long this stage may wait for the server (see ProbeOptions.adaptive_floor)."""
        limit = self.options.profile.timeout(stage)
        if stage == "usable" and self.options.usable_window is not None:
            limit = self.options.usable_window
        if stage == "usable" or self.slowest_turn > 0:
            limit = adaptive_limit(limit, self.options.adaptive_floor, self.slowest_turn)
        return limit

    def deadline(self, stage: str) -> float:
        per_stage = self.stage_limit(stage)
        overall = self.t0 + self.options.overall_timeout
        return min(self.stage_start + per_stage, overall)


def _client_config(target: ProbeTarget, options: ProbeOptions,
                   requested: int | None = None) -> ClientConfig:
    profile = options.profile
    trust = options.trust_pem
    if options.cafile is not None:
        trust += b"\n" + options.cafile.read_bytes()
    return ClientConfig(
        username=target.username,
        password=target.password,
        domain=target.domain,
        requested_protocols=profile.requested_protocols if requested is None else requested,
        rdp_security=profile.rdp_security,
        cookie=(profile.cookie or "").format(user=target.username) or None,
        tls_min=profile.tls_min,
        tls_max=options.tls_max or profile.tls_max,
        credssp_version=options.credssp_version or profile.credssp_version,
        allow_encryption_oracle=(
            profile.allow_encryption_oracle
            if options.allow_encryption_oracle is None
            else options.allow_encryption_oracle
        ),
        cert_policy=options.cert_policy or profile.cert_policy,
        trust_anchors=load_trust_anchors(trust),
        target_name=target.host,
        clock=lambda: dt.datetime.now(dt.UTC) + dt.timedelta(seconds=options.clock_offset),
        credssp_package=profile.credssp_package,
        keylog_file=keylog_path(),
        kerberos=(
            options.kerberos.mechanism(target.username, target.password, target.host)
            if options.kerberos is not None and profile.credssp_package == "negotiate"
            and profile.os_security  # the machine's own Kerberos: mstsc on a domain member
            else None
        ),
    )


class DeadlineExceeded(BaseException):
    """Raised into the probe by `overall_alarm` when --timeout passes, even mid-computation.

    A BaseException so that no `except Exception` in the protocol code swallows it.
    """


@contextlib.contextmanager
def overall_alarm(seconds: float, grace: float = 0.5) -> Iterator[None]:
    """Interrupt whatever the main thread is doing `seconds` + `grace` from now.

    The probe's own deadlines bound every wait; this also bounds CPU-bound work between two
    waits (decoding, TLS), so `--timeout` holds whatever the server sends. Main thread only.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def fire(signum: int, frame: object) -> None:
        raise DeadlineExceeded

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds + grace)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_probe(target: ProbeTarget, options: ProbeOptions) -> ProbeResult:
    """Connect, run the whole sequence to a usable session, and return the trace and verdict."""
    run = _Run(target, options)
    try:
        requested: int | None = None
        while True:
            stream = _open(run)
            if stream is not None:
                try:
                    _drive(run, stream, requested)
                finally:
                    stream.close()
            if requested is not None or not _retry_without_tls(run):
                break
            requested = 0
    except DeadlineExceeded:  # the CLI's alarm: CPU-bound work ran past --timeout
        stage = run.result.stages[-1].stage if run.result.stages else "tcp"
        if run.result.failure is None:
            run.fail(stage, "timeout", run.overall_reason(stage), {"limit": "overall"})
    failure = run.result.failure
    if failure is not None:
        run.result.codes[options.profile.name] = options.profile.codes_for(
            failure.stage, failure.event, failure.error_info
        )
    elif run.result.warnings:
        w = run.result.warnings[0]
        run.result.codes[options.profile.name] = options.profile.codes_for(w["stage"], w["event"])
    else:
        run.result.codes[options.profile.name] = options.profile.codes_for(None, None)
    return run.result


def _open(run: _Run) -> Stream | None:
    target, options = run.target, run.options
    address = target.host
    if options.resolve is not None:
        try:
            address = options.resolve(target.host)
        except OSError as exc:
            run.fail("tcp", "dns_failed", f"cannot resolve {target.host}: {exc}")
            return None
    via_gateway = bool(getattr(options.connect, "records_stages", False))
    started = time.monotonic()
    try:
        if via_gateway:  # an RD Gateway connector
            stream = options.connect(address, target.port, options.profile.timeout("tcp"),
                                     record=run.record_timed)  # type: ignore[call-arg]
        else:
            stream = options.connect(address, target.port, options.profile.timeout("tcp"))
    except OSError as exc:
        event = _classify_connect_error(exc)
        run.fail("tcp", event, f"connect to {address}:{target.port}: {exc or event}",
                 {"address": address})
        return None
    except RdpError as exc:  # a gateway tunnel reports its own failures
        stage = getattr(exc, "stage", "tcp")
        run.fail(stage, getattr(exc, "event", "failed"), str(exc), getattr(exc, "detail", {}))
        return None
    # the connect is the first round trip (through a gateway, several): later waits scale on it
    run.slowest_turn = max(run.slowest_turn, time.monotonic() - started)
    run.record("tcp", "ok", {"address": address, "port": target.port})
    return wrap_stream(stream, address, target.port, via_gateway=via_gateway)


def _retry_without_tls(run: _Run) -> bool:
    """A server that allows only Standard RDP Security refuses TLS/CredSSP offers with
    SSL_NOT_ALLOWED_BY_SERVER; mstsc, xfreerdp and rdesktop then connect again offering
    PROTOCOL_RDP only (zeek's rdp-proprietary-encryption trace, frames 4-13; rdp-facts §14).
    True when this run should do the same: the failure is kept in the trace as a retry."""
    failure = run.result.failure
    if failure is None or (failure.stage, failure.event) != \
            ("negotiation", "failure:SSL_NOT_ALLOWED_BY_SERVER"):
        return False
    if not run.options.profile.rdp_security or run.options.profile.requested_protocols == 0:
        return False
    last = run.result.stages[-1]
    run.result.stages[-1] = replace(last, outcome="retried",
                                    detail={**last.detail, "retry": "offering PROTOCOL_RDP only"})
    run.result.failure = None
    run.stage_start = time.monotonic()
    return True


def _drive(run: _Run, stream: Stream, requested: int | None = None) -> None:
    conn = ClientConnection(_client_config(run.target, run.options, requested))
    conn.start()
    refresh_sent_at: float | None = None
    awaiting: float | None = None  # when we sent what the server has not answered yet
    while run.result.failure is None:
        out = conn.data_to_send()
        if out:
            try:
                stream.sendall(out)
                if awaiting is None:
                    awaiting = time.monotonic()
            except OSError as exc:
                conn.receive_data(b"")
                _drain(run, conn)
                if run.result.failure is None:
                    run.fail(conn.stage, "closed", f"send failed: {exc}")
                return
        if _drain(run, conn):
            _disconnect(run, conn, stream)
            return
        if conn.activated and refresh_sent_at is None:
            conn.request_refresh()
            refresh_sent_at = time.monotonic()
            continue
        stage = "usable" if conn.activated else conn.stage
        remaining = run.deadline(stage) - time.monotonic()
        if remaining <= 0:
            _on_timeout(run, conn, stage)
            _disconnect(run, conn, stream)
            return
        stream.settimeout(remaining)
        try:
            data = stream.recv(65536)
        except TimeoutError:
            continue  # the deadline check above decides
        except OSError as exc:
            data = b""
            reset = f"connection reset: {exc}"
            conn.receive_data(b"")
            _drain(run, conn, reason=reset)
            return
        if awaiting is not None:
            run.slowest_turn = max(run.slowest_turn, time.monotonic() - awaiting)
            awaiting = None
        conn.receive_data(data)
        if not data:
            _drain(run, conn)
            return


def _disconnect(run: _Run, conn: ClientConnection, stream: Stream) -> None:
    """After a usable session: Disconnect Provider Ultimatum and TLS close_notify, as mstsc
    and xfreerdp end a session; best effort (the verdict is already made)."""
    if run.result.failure is not None or not conn.activated:
        return
    conn.disconnect()
    out = conn.data_to_send()
    if out:
        with contextlib.suppress(OSError):
            stream.sendall(out)


def _on_timeout(run: _Run, conn: ClientConnection, stage: str) -> None:
    if stage == "usable":
        got = run.result.update_bytes
        if got > 0 and conn.pending_bytes == 0:
            run.record("usable", "ok", {"update_bytes": got, "note": "small update, none pending"})
            return
        run.fail("usable", "stalled",
                 f"{got} bytes of complete updates within the window, "
                 f"{conn.pending_bytes} bytes of an incomplete PDU pending",
                 {"update_bytes": got, "pending_bytes": conn.pending_bytes,
                  "wait_seconds": round(run.stage_limit("usable"), 3)})
        return
    if run.overall_expired():
        run.fail(stage, "timeout", run.overall_reason(stage),
                 {"pending_bytes": conn.pending_bytes, "limit": "overall"})
        return
    limit = run.stage_limit(stage)
    if run.options.adaptive_floor is not None and run.slowest_turn > 0:
        # adapted: its length varies run to run, and under load it can reach the profile's own
        # limit; one wording whichever bound, so two runs of a cell read the same
        reason = ("no answer within the wait adapted to the connection's round trips "
                  f"(at most {run.options.profile.timeout(stage):g} s)")
    else:
        reason = f"no answer within {limit:g} s"
    run.fail(stage, "timeout", reason, {"pending_bytes": conn.pending_bytes, "limit": "stage",
                                        "wait_seconds": round(limit, 3)})


def _drain(run: _Run, conn: ClientConnection, reason: str | None = None) -> bool:
    """Process every queued event; True when the run is over (usable or failed)."""
    while (event := conn.next_event()) is not None:
        if isinstance(event, ev.StageCompleted):
            run.record(event.stage, "ok", dict(event.detail))
        elif isinstance(event, ev.StageWarning):
            run.result.warnings.append({"stage": event.stage,
                                        "event": event.detail.get("event", "warning"),
                                        "message": event.message, "detail": dict(event.detail)})
        elif isinstance(event, ev.ErrorInfoReceived):
            run.result.stages.append(StageRecord(conn.stage, "info", 0.0,
                                                 {"error_info": f"{event.code:#x}",
                                                  "name": event.name}))
        elif isinstance(event, ev.UpdateReceived):
            run.result.update_bytes += event.nbytes
            if run.result.update_bytes >= run.options.profile.usable_min_bytes:
                run.record("usable", "ok", {"update_bytes": run.result.update_bytes})
                return True
        elif isinstance(event, ev.StageFailed):
            detail = dict(event.detail)
            if reason:
                detail.setdefault("transport", reason)
            run.fail(event.stage, event.event, event.reason, detail, conn.error_info)
            return True
        elif isinstance(event, ev.ConnectionClosed):
            if run.result.failure is None:
                run.fail(conn.stage, "closed", reason or event.reason, {}, conn.error_info)
            return True
    return run.result.failure is not None
