"""MD4 (RFC 1320), needed for the NT hash; OpenSSL 3 no longer offers it through hashlib."""

from __future__ import annotations

import struct

_MASK = 0xFFFFFFFF


def _rotl(x: int, n: int) -> int:
    x &= _MASK
    return ((x << n) | (x >> (32 - n))) & _MASK


def _f(x: int, y: int, z: int) -> int:
    return (x & y) | (~x & z)


def _g(x: int, y: int, z: int) -> int:
    return (x & y) | (x & z) | (y & z)


def _h(x: int, y: int, z: int) -> int:
    return x ^ y ^ z


# Round schedules from RFC 1320 section 3.4: (word order, shift amounts, added constant).
_ROUNDS = (
    (_f, tuple(range(16)), (3, 7, 11, 19), 0x00000000),
    (_g, (0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), (3, 5, 9, 13), 0x5A827999),
    (_h, (0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15), (3, 9, 11, 15), 0x6ED9EBA1),
)


def _compress(state: list[int], block: bytes) -> None:
    x = struct.unpack("<16I", block)
    a, b, c, d = state
    for func, order, shifts, const in _ROUNDS:
        for i, k in enumerate(order):
            s = shifts[i % 4]
            a = _rotl(a + func(b, c, d) + x[k] + const, s)
            a, b, c, d = d, a, b, c
    state[0] = (state[0] + a) & _MASK
    state[1] = (state[1] + b) & _MASK
    state[2] = (state[2] + c) & _MASK
    state[3] = (state[3] + d) & _MASK


def md4(data: bytes) -> bytes:
    """The 16-byte MD4 digest of `data`."""
    state = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476]
    bit_len = (8 * len(data)) & 0xFFFFFFFFFFFFFFFF
    padded = bytes(data) + b"\x80" + b"\x00" * ((55 - len(data)) % 64) + struct.pack("<Q", bit_len)
    for off in range(0, len(padded), 64):
        _compress(state, padded[off : off + 64])
    return struct.pack("<4I", *state)
