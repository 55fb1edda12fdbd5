"""Signals around a lab: SIGTERM/SIGHUP become an exception (so `with` blocks clean up), and
signals arriving while a lab is being created or destroyed wait until that step is done.

Python runs signal handlers in the main thread only, so both helpers do nothing elsewhere.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

TERMINATING = (signal.SIGTERM, signal.SIGHUP)
DEFERRED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Terminated(SystemExit):
    """Raised in the main thread when SIGTERM or SIGHUP arrives during a lab."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated(signum)


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def terminate_as_exception(signums: tuple[int, ...] = TERMINATING) -> Iterator[None]:
    """Within the block, SIGTERM/SIGHUP raise Terminated instead of killing the process."""
    if not _main_thread():
        yield
        return
    previous = {s: signal.signal(s, _raise_terminated) for s in signums}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@contextmanager
def signals_deferred(signums: tuple[int, ...] = DEFERRED) -> Iterator[None]:
    """Hold SIGINT/SIGTERM/SIGHUP until the block ends, then deliver them in arrival order."""
    if not _main_thread():
        yield
        return
    pending: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        pending.append(signum)

    previous: dict[int, Any] = {s: signal.signal(s, hold) for s in signums}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        for s in pending:
            signal.raise_signal(s)
