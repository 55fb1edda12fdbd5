"""The probe's adaptive waits on a real socket: a server that accepts and never answers."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from harness.probe.profiles import bounded, load_profile
from harness.probe.runner import ProbeOptions, ProbeTarget, run_probe


@pytest.fixture
def silent_server() -> Iterator[int]:
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(2)
    for s in held:
        s.close()
    listener.close()


@pytest.mark.parametrize("floor", [None, 0.2, 5.0])
def test_a_silent_server_times_out_after_the_adapted_wait(silent_server: int,
                                                          floor: float | None) -> None:
    profile = bounded(load_profile("mstsc-win11"), 1.0)
    result = run_probe(ProbeTarget("127.0.0.1", silent_server, "u", "p", "d"),
                       ProbeOptions(profile, adaptive_floor=floor, overall_timeout=10))
    failure = result.failure
    assert failure is not None and (failure.stage, failure.event) == ("negotiation", "timeout")
    detail = result.stages[-1].detail
    if floor is None:
        assert detail["wait_seconds"] == 1.0 and failure.reason == "no answer within 1 s"
    else:
        # the TCP connect on loopback is far under 20 ms: the floor decides, up to the
        # profile's own limit; the reason reads the same whichever bound (a loaded machine
        # reaches the profile's limit where a quiet one stops at the adapted wait)
        assert detail["wait_seconds"] == min(floor, 1.0)
        assert failure.reason == ("no answer within the wait adapted to the connection's round"
                                  " trips (at most 1 s)")
