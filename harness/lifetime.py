"""Processes that die with their parent: matrix workers and the helpers they start (Xvfb).

A worker asks the kernel for SIGTERM when its parent dies (prctl PR_SET_PDEATHSIG, through
ctypes), and a watch thread checks the parent every WATCH_INTERVAL as a second line (the
signal is tied to the thread that forked, and is not inherited across exec of set-uid programs).
SIGTERM becomes `Terminated` inside a lab (harness.net.signals), so the lab is destroyed on
the way out; after GRACE seconds the worker exits whatever it is doing. Labs created by a
worker record its parent in their state file, so `rdplab down --all` can tell an orphaned
worker's lab from a live one.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import threading
import time

PR_SET_PDEATHSIG = 1
WATCH_INTERVAL = 0.2
GRACE = 15.0

_parent: int | None = None  # the parent this process must die with, when it is a worker


def set_pdeathsig(sig: int = signal.SIGTERM) -> bool:
    """Ask the kernel to send `sig` to this process when its parent (thread) dies."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def parent_pid() -> int | None:
    """The parent this process watches (None outside matrix workers)."""
    return _parent


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(WATCH_INTERVAL)
    with contextlib.suppress(ProcessLookupError):
        os.kill(os.getpid(), signal.SIGTERM)  # Terminated inside a lab: it is destroyed
    time.sleep(GRACE)
    os._exit(1)


def die_with_parent() -> None:
    """Make this (worker) process end when its parent ends, even by kill -9."""
    global _parent
    _parent = os.getppid()
    set_pdeathsig(signal.SIGTERM)
    if os.getppid() != _parent:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)
    threading.Thread(target=_watch, args=(_parent,), name="rdplab-parent-watch",
                     daemon=True).start()


def child_dies_with_us() -> None:
    """preexec_fn for helper processes (Xvfb): SIGTERM when the process that started them
    ends. Only meaningful from the main thread, which lives as long as the process."""
    set_pdeathsig(signal.SIGTERM)
