"""The emulated host's socket driver: accepts connections and runs one ServerConnection each.

The policy is read from its source at every accepted connection. A connection that sends
garbage or stalls is closed with its reason logged; the others are unaffected. Each connection
runs in its own thread with an idle timeout, so nothing waits forever.

Hostile clients (rdp-facts §16): up to the policy's MaxOutstandingConnections incomplete
(not yet activated) connections are held at once, the one over it is reset with event 1006; a
connection must send its first PDU within FIRST_PDU_TIMEOUT (MS-RDPEPS 3.1.2's 10-second timer)
and be activated within the handshake timeout, however it trickles; what one connection may
buffer is bounded by the protocol budgets (rdp.limits), so memory per connection is bounded.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..rdp import events as ev
from ..rdp.errors import RdpError
from ..rdp.server import ServerConnection
from .policy import PolicySource

log = logging.getLogger("rdplab.host")

FIRST_PDU_TIMEOUT = 10.0  # MS-RDPEPS 3.1.2: the first PDU must arrive within 10 s of TCP
MAX_THREADS = 4096  # a ceiling on connection threads whatever the policy says

HostEventSink = Callable[[ev.HostLog], None]


@dataclass
class HostStats:
    accepted: int = 0
    activated: int = 0
    failed: int = 0
    refused: int = 0  # over MaxOutstandingConnections (event 1006)
    outstanding: int = 0  # incomplete connections now
    peak_outstanding: int = 0
    peak_buffered: int = 0  # most bytes of an incomplete PDU one connection held
    reasons: list[str] = field(default_factory=list)
    # One per NLA logon: "ntlm" (raw, FreeRDP), "spnego/ntlm" or "spnego/kerberos" (Windows).
    logons: list[str] = field(default_factory=list)


class EmulatedHost:
    """Serves RDP on a listening socket until stopped."""

    def __init__(
        self,
        policy_source: PolicySource,
        *,
        on_event: HostEventSink | None = None,
        idle_timeout: float = 30.0,
        handshake_timeout: float = 60.0,
        max_connections: int | None = None,
        first_pdu_timeout: float = FIRST_PDU_TIMEOUT,
    ) -> None:
        self._policy_source = policy_source
        self._on_event = on_event
        self._idle_timeout = idle_timeout
        # Windows drops a connection that has not logged on in time (LogonTimeout); without a
        # bound, a client sending one byte per idle period would hold a slot for ever.
        self._handshake_timeout = handshake_timeout
        self._first_pdu_timeout = first_pdu_timeout
        # None: the policy's MaxOutstandingConnections decides (read at each connection)
        self._max_connections = max_connections
        self._slots = threading.BoundedSemaphore(MAX_THREADS)
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._conns: set[socket.socket] = set()
        self._workers: set[threading.Thread] = set()
        self._lock = threading.Lock()
        self.stats = HostStats()

    @property
    def address(self) -> tuple[str, int]:
        assert self._listener is not None, "host not started"
        return self._listener.getsockname()[:2]

    def start(self, listener: socket.socket) -> EmulatedHost:
        """Serve on an already bound and listening socket (loopback or inside a namespace)."""
        self._listener = listener
        listener.settimeout(0.2)
        self._thread = threading.Thread(target=self._accept_loop, name="rdplab-host", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, end every connection and wait (bounded) for all threads to finish.

        A thread blocked in accept() or recv() is not woken by close() on Linux, so the sockets
        are shut down first; each connection thread then sees EOF and closes its own socket.
        """
        deadline = time.monotonic() + timeout
        self._stop.set()
        if self._listener is not None:
            _shutdown(self._listener)
        if self._thread is not None:
            self._thread.join(timeout=max(0.0, deadline - time.monotonic()))
        if self._listener is not None:
            self._listener.close()
        with self._lock:
            conns, workers = list(self._conns), list(self._workers)
        for conn in conns:
            _shutdown(conn)
        for worker in workers:
            worker.join(timeout=max(0.0, deadline - time.monotonic()))
        with self._lock:
            for conn in list(self._conns):
                _close(conn, reset=False)

    def __enter__(self) -> EmulatedHost:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                conn, peer = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            if not self._slots.acquire(blocking=False):
                self._refuse(conn, peer)
                continue
            worker = threading.Thread(target=self._serve, args=(conn, peer), daemon=True,
                                      name=f"rdplab-host-{peer}")
            with self._lock:
                self.stats.accepted += 1
                self._conns.add(conn)
                self._workers = {t for t in self._workers if t.is_alive()}
                self._workers.add(worker)
            worker.start()

    def _refuse(self, conn: socket.socket, peer: object) -> None:
        log.warning("connection from %s refused: too many connections", peer)
        with self._lock:
            self.stats.refused += 1
        self._emit(ev.HostLog("too many incomplete connections", 1006, {"peer": str(peer)}))
        _close(conn, reset=True)

    def _claim_outstanding(self, limit: int) -> bool:
        """Count this connection as incomplete; False (not counted) when that exceeds `limit`."""
        with self._lock:
            if self.stats.outstanding >= limit:
                return False
            self.stats.outstanding += 1
            self.stats.peak_outstanding = max(self.stats.peak_outstanding,
                                              self.stats.outstanding)
            return True

    def _release_outstanding(self) -> None:
        with self._lock:
            self.stats.outstanding -= 1

    def _emit(self, event: ev.HostLog) -> None:
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:  # a broken sink must not take the host down
                log.exception("host event sink failed")

    def _serve(self, sock: socket.socket, peer: object) -> None:
        reason = "closed"
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(self._idle_timeout)
            reason = self._run(sock, peer)
        except Exception as exc:  # the last line of defence: log and drop this connection only
            reason = f"internal error: {type(exc).__name__}: {exc}"
            log.exception("connection from %s failed", peer)
        finally:
            _close(sock, reset=False)  # a no-op when _run closed it already
            with self._lock:
                self._conns.discard(sock)  # the thread stays in _workers until stop() joins it
            self._slots.release()
            log.info("connection from %s ended: %s", peer, reason)

    def _run(self, sock: socket.socket, peer: object) -> str:
        try:
            policy = self._policy_source()
        except Exception as exc:
            _close(sock, reset=True)
            return f"policy unavailable: {exc}"
        limit = self._max_connections or policy.max_outstanding_connections
        if not self._claim_outstanding(limit):
            self._refuse(sock, peer)
            return f"refused: {limit} incomplete connections (MaxOutstandingConnections)"
        state = {"outstanding": True}
        try:
            return self._converse(sock, ServerConnection(policy), state)
        finally:
            if state["outstanding"]:
                self._release_outstanding()

    def _converse(self, sock: socket.socket, conn: ServerConnection,
                  state: dict[str, bool]) -> str:
        start = time.monotonic()
        deadline = start + self._handshake_timeout
        first_pdu_deadline = start + self._first_pdu_timeout
        received = False
        activated = False
        while True:
            while (event := conn.next_event()) is not None:
                if isinstance(event, ev.HostLog):
                    self._emit(event)
                elif isinstance(event, ev.StageFailed):
                    with self._lock:
                        self.stats.failed += 1
                        self.stats.reasons.append(f"{event.stage}: {event.reason}")
                elif isinstance(event, ev.StageCompleted) and event.stage == "credssp":
                    d = event.detail
                    with self._lock:
                        self.stats.logons.append(
                            ("spnego/" if d.get("spnego") else "") + str(d.get("mechanism")))
                elif isinstance(event, ev.StageCompleted) and event.stage == "finalisation":
                    activated = True
                    with self._lock:
                        self.stats.activated += 1
                    state["outstanding"] = False
                    self._release_outstanding()
            out = conn.data_to_send()
            if out:
                try:
                    sock.sendall(out)
                except OSError as exc:
                    _close(sock, reset=False)
                    return f"send failed: {exc}"
            if conn.should_close:
                _close(sock, reset=conn.abort)
                return conn.close_reason or "closed by host"
            if self._stop.is_set():
                _close(sock, reset=False)
                return "host stopping"
            if not activated:
                now = time.monotonic()
                limit_at = deadline if received else min(deadline, first_pdu_deadline)
                left = limit_at - now
                if left <= 0:
                    _close(sock, reset=True)
                    return self._late_reason(received)
                sock.settimeout(min(self._idle_timeout, left))
            else:
                sock.settimeout(self._idle_timeout)
            try:
                data = sock.recv(65536)
            except TimeoutError:
                _close(sock, reset=True)
                now = time.monotonic()
                if not activated and not received and now >= first_pdu_deadline:
                    return self._late_reason(False)
                if not activated and now >= deadline:
                    return self._late_reason(True)
                return f"idle for {self._idle_timeout:g} s"
            except OSError as exc:
                _close(sock, reset=False)
                return f"receive failed: {exc}"
            if self._stop.is_set():  # stop() shut the socket down: this EOF is ours
                _close(sock, reset=False)
                return "host stopping"
            received = received or bool(data)
            try:
                conn.receive_data(data)
            except RdpError as exc:  # the core reports failures as events; this is a bug guard
                _close(sock, reset=True)
                return f"protocol error: {exc}"
            pending = conn.pending_bytes
            if pending > self.stats.peak_buffered:
                with self._lock:
                    self.stats.peak_buffered = max(self.stats.peak_buffered, pending)
            if not data and not conn.data_to_send_pending:
                _close(sock, reset=False)
                return conn.close_reason or "client closed"

    def _late_reason(self, received: bool) -> str:
        if not received:
            return f"no PDU within {self._first_pdu_timeout:g} s of connecting"
        return f"not activated within {self._handshake_timeout:g} s"


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # not connected, or already closed
        sock.shutdown(socket.SHUT_RDWR)


def _close(sock: socket.socket, *, reset: bool) -> None:
    try:
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    except OSError:
        pass


def listen(address: str = "127.0.0.1", port: int = 0, backlog: int = 64) -> socket.socket:
    """A listening TCP socket on loopback (the netns backend makes its own inside a namespace)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, port))
    sock.listen(backlog)
    return sock
