"""A small deterministic mutator for the short run and for machines without atheris."""

from __future__ import annotations

import random

INTERESTING = [0, 1, 0x7F, 0x80, 0xFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF]


def mutate(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data or b"\x00")
    for _ in range(rng.randint(1, 4)):
        p = rng.randrange(len(b)) if b else 0
        kind = rng.randrange(7)
        if kind == 0 and b:
            b[p] ^= 1 << rng.randrange(8)
        elif kind == 1 and b:
            b[p] = rng.randrange(256)
        elif kind == 2:
            del b[p : p + rng.randint(1, 32)]
        elif kind == 3:
            b[p:p] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif kind == 4:  # a length-looking field at an extreme
            v = rng.choice(INTERESTING).to_bytes(4, rng.choice(["little", "big"]))
            b[p : p + rng.choice([1, 2, 4])] = v[: rng.choice([1, 2, 4])]
        elif kind == 5 and len(b) > 2:  # repeat a slice
            q = rng.randrange(p, len(b))
            b[q:q] = b[p:q][:256] * rng.randint(1, 8)
        else:
            b = b[: rng.randrange(len(b) + 1)]
    return bytes(b)
