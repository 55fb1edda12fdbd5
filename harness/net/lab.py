"""NetLab: one lab network in kernel namespaces, with a state file and guaranteed cleanup.

    with NetLab(Topology.standard()) as lab:
        srv = lab.socket("host"); srv.bind(("0.0.0.0", 3389)); srv.listen()
        cli = lab.socket("client"); cli.connect((lab.address("host"), 3389))

Leaving the block (normally, by exception, Ctrl-C, or SIGTERM/SIGHUP, which the block turns
into `Terminated`) destroys everything; destroy() is idempotent. A lab that is never entered
is destroyed at interpreter exit; one whose process was SIGKILLed is removed by `down_all`.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import socket
import subprocess
import tempfile
import threading
import weakref
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import Any

from . import dns
from .cleanup import NS_PREFIX, teardown
from .cmd import ip_batch
from .namespaces import create_topology
from .nsenter import ETC_NETNS, ns_exec_argv, ns_run, ns_socket
from .signals import signals_deferred, terminate_as_exception
from .state import LabState, Resource, default_state_dir, process_start
from .topology import Topology

_live: weakref.WeakSet[NetLab] = weakref.WeakSet()


class NetLab:
    """A topology instantiated as namespaces named rdplab-<lab id>-<node>."""

    def __init__(
        self,
        topology: Topology | None = None,
        *,
        lab_id: str | None = None,
        state_dir: str | Path | None = None,
        handle_signals: bool = True,
    ) -> None:
        self.topology = topology or Topology.standard()
        self.lab_id = lab_id or secrets.token_hex(4)
        if not self.lab_id.isalnum() or len(self.lab_id) > 16:
            raise ValueError("lab_id must be at most 16 letters or digits")
        self.prefix = f"{NS_PREFIX}{self.lab_id}-"
        self.names = {n: f"{self.prefix}{n}" for n in self.topology.nodes}
        self.state_dir = Path(state_dir) if state_dir is not None else default_state_dir()
        self.handle_signals = handle_signals
        self.state: LabState | None = None
        self.faults: dict[str, Any] = {}
        self._sockets: weakref.WeakSet[socket.socket] = weakref.WeakSet()
        self._procs: list[subprocess.Popen[Any]] = []
        self._lock = threading.RLock()
        self._stack: ExitStack | None = None
        self._tmp_count = 0
        self._closers: dict[str, Callable[[], None]] = {}

    # naming --------------------------------------------------------------------------------
    def ns(self, node: str) -> str:
        """The namespace name of node."""
        return self.names[node]

    def address(self, node: str) -> str:
        """node's primary address (see Topology.address)."""
        return self.topology.address(node)

    def iface(self, node: str, peer: str | None = None) -> str:
        """Name of node's interface towards peer (default: towards the router)."""
        return self.topology.iface(node, peer).name

    @property
    def router(self) -> str:
        return self.topology.router

    # lifecycle ------------------------------------------------------------------------------
    def create(self) -> NetLab:
        """Create namespaces, veths, addresses, routes, sysctls and hosts files."""
        with self._lock, signals_deferred():
            if self.state is not None:
                raise RuntimeError(f"lab {self.lab_id} already created")
            self.state = LabState.new(self.state_dir, self.lab_id)
            _live.add(self)
            resources: list[Resource] = [{"kind": "netns", "name": n} for n in self.names.values()]
            resources += [
                {"kind": "veth", "ns": self.names[i.node], "dev": i.name}
                for i in self.topology.ifaces
            ]
            resources += [
                {"kind": "etc_netns", "path": str(ETC_NETNS / n)} for n in self.names.values()
            ]
            self.state.add(*resources)
            create_topology(self.topology, self.names)
            for node in self.topology.nodes:
                dns.write_hosts(self, node, dns.lab_hosts(self.topology))
        return self

    def destroy(self) -> list[str]:
        """Remove everything the lab created (safe to call again); return what was removed."""
        with self._lock, signals_deferred():
            if self.state is None:
                return []
            for key, fn in list(self._closers.items()):
                with contextlib.suppress(Exception):
                    fn()
                self._closers.pop(key, None)
            for s in list(self._sockets):
                with contextlib.suppress(OSError):
                    s.close()
            removed = teardown(self.state.resources, scan_processes=bool(self._procs))
            for p in self._procs:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    p.wait(timeout=1)
            self._procs.clear()
            self.state.remove()
            self.state = None
            self.faults.clear()
            _live.discard(self)
            return removed

    @property
    def alive(self) -> bool:
        return self.state is not None

    def __enter__(self) -> NetLab:
        stack = ExitStack()
        if self.handle_signals:
            stack.enter_context(terminate_as_exception())
        try:
            self.create()
        except BaseException:
            try:
                self.destroy()
            finally:
                stack.close()
            raise
        self._stack = stack
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.destroy()
        finally:
            if self._stack is not None:
                self._stack.close()
                self._stack = None

    # recording -------------------------------------------------------------------------------
    def record(self, *resources: Resource) -> None:
        """Add resources to the state file (before creating them)."""
        with self._lock:
            if self.state is None:
                raise RuntimeError(f"lab {self.lab_id} is not created")
            self.state.add(*resources)

    def forget(self, *resources: Resource) -> None:
        """Drop resources from the state file (after removing them)."""
        with self._lock:
            if self.state is not None:
                self.state.discard(*resources)

    def on_destroy(self, key: str, fn: Callable[[], None] | None) -> None:
        """Run fn first thing in destroy() (in-process helpers such as the netem thread);
        fn None cancels key."""
        if fn is None:
            self._closers.pop(key, None)
        else:
            self._closers[key] = fn

    # running things inside ---------------------------------------------------------------------
    def socket(
        self,
        node: str,
        family: socket.AddressFamily | int = socket.AF_INET,
        type: socket.SocketKind | int = socket.SOCK_STREAM,
    ) -> socket.socket:
        """A socket inside node's namespace; closed by destroy() if still open."""
        s = ns_socket(self.ns(node), family, type)
        self._sockets.add(s)
        return s

    def exec_argv(self, node: str, argv: Sequence[str]) -> list[str]:
        """argv prefixed with `ip netns exec <ns>` (sees the lab's /etc/netns/<ns>/hosts)."""
        return ns_exec_argv(self.ns(node), argv)

    def popen(self, node: str, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start argv inside node via `ip netns exec`, in its own session; recorded and killed
        by destroy()."""
        kwargs.setdefault("start_new_session", True)
        with self._lock:
            proc = subprocess.Popen(self.exec_argv(node, argv), **kwargs)
            self._procs.append(proc)
            self.record({"kind": "pid", "pid": proc.pid, "start": process_start(proc.pid)})
        return proc

    def tempdir(self) -> Path:
        """A new temporary directory removed by destroy()."""
        with self._lock:
            self._tmp_count += 1
            path = Path(tempfile.gettempdir()) / f"{self.prefix}{os.getpid()}-{self._tmp_count}"
            self.record({"kind": "tempdir", "path": str(path)})
            path.mkdir(mode=0o700)
        return path

    def ip(self, node: str, *lines: str) -> None:
        """Run ip commands (one per line, without `ip`) inside node."""
        ip_batch(lines, ns=self.ns(node))

    def nft(self, node: str, script: str) -> None:
        """Load an nft script inside node."""
        ns_run(self.ns(node), ["nft", "-f", "-"], input=script)


@atexit.register
def _destroy_leftovers() -> None:
    for lab in list(_live):
        with contextlib.suppress(Exception):
            lab.destroy()
