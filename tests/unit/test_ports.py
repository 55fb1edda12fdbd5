"""Free ports for programs that bind later: below the ephemeral range, free for TCP and UDP."""

from __future__ import annotations

import socket

from harness.net.ports import PORT_FLOOR, ephemeral_low, free_port


def test_free_ports_come_from_below_the_ephemeral_range_and_bind() -> None:
    low = ephemeral_low()
    for _ in range(20):
        port = free_port(udp=True)
        assert PORT_FLOOR <= port < low
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            with socket.socket(socket.AF_INET, kind) as s:
                s.bind(("127.0.0.1", port))


def test_a_port_in_use_is_not_handed_out(monkeypatch) -> None:
    import random

    import harness.net.ports as ports

    with socket.create_server(("127.0.0.1", 0)) as held:
        taken = held.getsockname()[1]
        draws = [taken, taken]  # the first two draws hit the port in use, then random ones
        real = random.Random()

        class Rigged:
            def randrange(self, low: int, high: int) -> int:
                return draws.pop(0) if draws else real.randrange(low, high)

        monkeypatch.setattr(ports.random, "SystemRandom", Rigged)
        assert free_port() != taken
        assert draws == []
