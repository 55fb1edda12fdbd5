"""Free ports for programs that bind their own listener later (krb5kdc, xrdp, freerdp-shadow).

A port the kernel picks (bind to 0, then close) comes from the ephemeral range, the same range
outgoing connections get their source ports from: between the check and the program's own bind
a connection can take it ("Address already in use"). The ports here come from below that range,
where only explicit binds land.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

PORT_FLOOR = 10000  # lowest port handed out
_TRIES = 64


def ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (net.ipv4.ip_local_port_range)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(address: str, port: int, kinds: tuple[int, ...]) -> bool:
    for kind in kinds:
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind((address, port))
            except OSError:
                return False
    return True


def free_port(address: str = "127.0.0.1", *, udp: bool = False) -> int:
    """A port free on `address` for TCP (and UDP with udp=True), below the ephemeral range;
    a kernel-picked one only when 64 random tries all found ports in use."""
    kinds = (socket.SOCK_STREAM, socket.SOCK_DGRAM) if udp else (socket.SOCK_STREAM,)
    rng = random.SystemRandom()
    top = max(ephemeral_low(), PORT_FLOOR + 1)
    for _ in range(_TRIES):
        port = rng.randrange(PORT_FLOOR, top)
        if _bindable(address, port, kinds):
            return port
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])
