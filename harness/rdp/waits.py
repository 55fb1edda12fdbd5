"""How long a client waits for the server, adapted to the round trips it has measured.

Windows' clients wait seconds to tens of seconds for each step (a TCP connect gives up after
about 21 s); on a lab whose round trips are known, a wait many times the slowest answer already
seen tells a stalled server from a slow one as surely, in a fraction of the time. The rule is
TCP's retransmission timer's (RFC 6298: a multiple of the measured round trip, never under a
floor): TURN_FACTOR x the slowest answer on this connection, within [floor, limit].
"""

from __future__ import annotations

TURN_FACTOR = 10.0
"""How many of the slowest round trips seen a wait allows before it calls the server stalled."""


def adaptive_limit(limit: float, floor: float | None, slowest_turn: float) -> float:
    """The wait for the next answer: `limit` without a floor, else TURN_FACTOR x slowest_turn
    within [floor, limit]."""
    if floor is None:
        return limit
    return min(limit, max(floor, TURN_FACTOR * slowest_turn))
