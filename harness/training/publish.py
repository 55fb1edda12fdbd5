"""Publishing a lab's entry point on a port of this machine, so a real client reaches it.

One listening port, two ways in:
- raw: the bytes go to the entry point (the RD Gateway's 443, or the host's RDP port in a
  direct lab), as a port forward does; mstsc with the names in its hosts file uses this;
- `CONNECT name:port` (an HTTP proxy, what xfreerdp does with `https_proxy`): the name is
  resolved by the lab client's own resolver (its DNS records, cache and hosts file, so a stale
  record misleads the student's client too) and the TCP connection is made from the client node
  (its namespace on netns), never to anything outside the lab. TLS stays end to end: the
  client checks the lab's certificate against the name it asked for.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import selectors
import socket
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

HEADER_MAX = 8192
HEADER_DEADLINE = 10.0
CONNECT_TIMEOUT = 10.0
PUMP_CHUNK = 65536

Connect = Callable[[str, int, float], socket.socket]
Resolve = Callable[[str], "str | None"]


class PublishError(OSError):
    """The published address cannot be bound (in use, not an address of this machine)."""


def bind_listener(address: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        sock.listen(64)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PublishError(exc.errno, f"{address}:{port} is already in use") from None
        raise PublishError(exc.errno, f"cannot listen on {address}:{port}: {exc.strerror}"
                           ) from None
    return sock


def parse_connect(header: bytes) -> tuple[str, int]:
    """(name, port) of an HTTP `CONNECT name:port HTTP/1.x` request head; ValueError else."""
    line = header.split(b"\r\n", 1)[0].decode("latin-1")
    parts = line.split()
    if len(parts) != 3 or parts[0] != "CONNECT" or not parts[2].startswith("HTTP/1."):
        raise ValueError(f"not a CONNECT request: {line[:80]!r}")
    name, sep, port = parts[1].rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536 or not name:
        raise ValueError(f"CONNECT target must be name:port, got {parts[1][:80]!r}")
    return name.strip("[]"), int(port)


class Publisher:
    """Accepts on `listener`; forwards each connection into the lab until either side closes
    or the publisher stops."""

    def __init__(self, listener: socket.socket, entry: tuple[str, int], connect: Connect,
                 resolve: Resolve) -> None:
        self.listener = listener
        self.entry = entry
        self._connect = connect
        self._resolve = resolve
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._thread = threading.Thread(target=self._accept_loop, name="publish", daemon=True)
        self.connections = 0

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.listener.getsockname()[:2]
        return host, port

    def start(self) -> Publisher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        with self._lock:
            for sock in list(self._open):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
        self._thread.join(timeout=5)

    def _track(self, sock: socket.socket, add: bool) -> None:
        with self._lock:
            (self._open.add if add else self._open.discard)(sock)

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            self._track(conn, True)
            threading.Thread(target=self._serve, args=(conn,), name="publish-conn",
                             daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        upstream: socket.socket | None = None
        try:
            conn.settimeout(HEADER_DEADLINE)
            first = conn.recv(8, socket.MSG_PEEK)
            if first.startswith(b"CONNECT"):
                upstream = self._proxy(conn)
            else:
                upstream = self._connect(*self.entry, CONNECT_TIMEOUT)
            if upstream is None:
                return
            self._track(upstream, True)
            conn.settimeout(None)
            upstream.settimeout(None)
            self._pump(conn, upstream)
        except Exception as exc:  # one client's problem never stops the publisher
            log.debug("published connection ended: %s", exc)
        finally:
            for sock in (conn, upstream):
                if sock is not None:
                    self._track(sock, False)
                    sock.close()

    def _proxy(self, conn: socket.socket) -> socket.socket | None:
        header = b""
        while b"\r\n\r\n" not in header:
            chunk = conn.recv(1024)
            if not chunk:
                return None
            header += chunk
            if len(header) > HEADER_MAX:
                conn.sendall(b"HTTP/1.1 431 Request Header Fields Too Large\r\n\r\n")
                return None
        head, _, rest = header.partition(b"\r\n\r\n")
        try:
            name, port = parse_connect(head)
        except ValueError:
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            return None
        address = self._resolve(name)
        if address is None:
            conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\n\r\n")  # the client's resolver: no name
            return None
        try:
            upstream = self._connect(address, port, CONNECT_TIMEOUT)
        except TimeoutError:
            conn.sendall(b"HTTP/1.1 504 Gateway Timeout\r\n\r\n")
            return None
        except OSError:
            conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\n\r\n")
            return None
        except Exception:
            conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\n\r\n")
            return None
        conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        if rest:
            upstream.sendall(rest)
        return upstream

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        peer = {a: b, b: a}
        sel = selectors.DefaultSelector()
        try:
            sel.register(a, selectors.EVENT_READ)
            sel.register(b, selectors.EVENT_READ)
            while not self._stop.is_set():
                for key, _ in sel.select(timeout=1.0):
                    src = key.fileobj
                    assert isinstance(src, socket.socket)
                    data = src.recv(PUMP_CHUNK)
                    if not data:
                        return
                    peer[src].sendall(data)
        finally:
            sel.close()
