"""Entering a named network namespace from this process: per-thread setns(2) via ctypes.

setns(fd, CLONE_NEWNET) moves only the calling OS thread; sockets keep the namespace they were
created in, and children forked from that thread start in it. So the emulated host can listen
and the probe can connect inside lab namespaces without leaving the Python process. Every switch
is undone before the block ends, under one process-wide lock: keep the blocks short (create a
socket, write a sysctl, spawn a process), never block on I/O inside them.
"""

from __future__ import annotations

import ctypes
import os
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from .cmd import DEFAULT_TIMEOUT, NetError

NETNS_DIR = Path("/run/netns")
ETC_NETNS = Path("/etc/netns")  # `ip netns exec <ns>` bind-mounts /etc/netns/<ns>/* over /etc
CLONE_NEWNET = 0x40000000

_libc = ctypes.CDLL(None, use_errno=True)
_lock = threading.RLock()

P = ParamSpec("P")
T = TypeVar("T")


def netns_path(ns: str) -> Path:
    """The bind-mounted namespace file `ip netns add` made for ns."""
    if not ns or "/" in ns or ns.startswith("."):
        raise ValueError(f"bad namespace name {ns!r}")
    return NETNS_DIR / ns


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@contextmanager
def in_netns(ns: str) -> Iterator[None]:
    """Run the block with the calling thread inside network namespace ns, then switch back."""
    with _lock:
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            try:
                target = os.open(netns_path(ns), os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError as exc:
                raise NetError(f"network namespace {ns!r} does not exist") from exc
            try:
                _setns(target)
            finally:
                os.close(target)
            try:
                yield
            finally:
                _setns(home)
        finally:
            os.close(home)


def ns_call(ns: str, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Call fn with the calling thread inside ns (fn must not block)."""
    with in_netns(ns):
        return fn(*args, **kwargs)


def ns_socket(
    ns: str,
    family: socket.AddressFamily | int = socket.AF_INET,
    type: socket.SocketKind | int = socket.SOCK_STREAM,
    proto: int = 0,
) -> socket.socket:
    """A new socket that lives in network namespace ns (bind/listen/connect it as usual)."""
    with in_netns(ns):
        return socket.socket(family, type, proto)


def ns_exec_argv(ns: str, argv: Sequence[str]) -> list[str]:
    """argv prefixed to run in ns by `ip netns exec` (which bind-mounts /etc/netns/<ns>/*)."""
    return ["ip", "netns", "exec", ns, *argv]


def ns_popen(ns: str, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
    """Start argv in ns by forking from a thread inside it (no mount namespace, no /etc swap)."""
    with in_netns(ns):
        return subprocess.Popen(list(argv), **kwargs)


def ns_run(
    ns: str, argv: Sequence[str], *, input: str | None = None, timeout: float = DEFAULT_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """Run argv to completion inside ns; raise NetError on failure."""
    try:
        proc = ns_popen(
            ns,
            argv,
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    except FileNotFoundError as exc:
        raise NetError(f"{argv[0]}: not installed") from exc
    try:
        out, err = proc.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        proc.kill()
        proc.wait()
        raise NetError(f"{' '.join(argv)} in {ns}: timed out after {timeout} s") from exc
    if proc.returncode != 0:
        raise NetError(f"{' '.join(argv)} in {ns} failed ({proc.returncode}): {err.strip()}")
    return subprocess.CompletedProcess(list(argv), proc.returncode, out, err)


def write_sysctl(ns: str, values: dict[str, str | int]) -> None:
    """Write net.* sysctls (dotted keys) as seen from inside ns."""
    with in_netns(ns):
        for key, value in values.items():
            if not key.startswith("net."):
                raise ValueError(f"only net.* sysctls are per-namespace: {key}")
            Path("/proc/sys", *key.split(".")).write_text(f"{value}\n")


def read_sysctl(ns: str, key: str) -> str:
    """Read a net.* sysctl as seen from inside ns."""
    with in_netns(ns):
        return Path("/proc/sys", *key.split(".")).read_text().strip()
