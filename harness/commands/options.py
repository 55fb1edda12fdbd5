"""Argument types that range-check numeric options, so a bad value is a usage error (exit 2)
with a clear message before anything runs."""

from __future__ import annotations

import argparse
import math

MAX_SECONDS = 24 * 3600.0


def seconds(value: str) -> float:
    """A duration in seconds: a finite number above 0 and at most a day."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds") from None
    if not math.isfinite(number) or number <= 0 or number > MAX_SECONDS:
        raise argparse.ArgumentTypeError(
            f"{value} is out of range: give seconds above 0 and at most {MAX_SECONDS:g}")
    return number


def positive_int(value: str, *, maximum: int = 1024) -> int:
    """A count from 1 to `maximum`."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if not 1 <= number <= maximum:
        raise argparse.ArgumentTypeError(f"{value} is out of range: give 1 to {maximum}")
    return number


def listen_address(value: str) -> tuple[str, int]:
    """ADDR:PORT with a port from 0 (any free one) to 65535; IPv6 addresses in brackets."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isascii() or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{value!r}: expected ADDR:PORT, e.g. 127.0.0.1:3389")
    number = int(port)
    if number > 65535:
        raise argparse.ArgumentTypeError(f"{value!r}: port {number} is out of range (0-65535)")
    return host.strip("[]") or "127.0.0.1", number
