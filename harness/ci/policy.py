"""`--fail-on`: which outcomes make a plain `rdplab matrix` exit non-zero (1)."""

from __future__ import annotations

from ..matrix.cell import OUTCOMES

DEFAULT_FAIL_ON = ("lab-error",)  # as before: a cell that could not run is a failure


def parse_fail_on(text: str | None) -> tuple[str, ...]:
    """'not-fixed,lab-error' → those outcomes; 'none' → never fail on an outcome."""
    if text is None:
        return DEFAULT_FAIL_ON
    values = [v.strip() for v in text.split(",") if v.strip()]
    if values == ["none"]:
        return ()
    unknown = [v for v in values if v not in OUTCOMES]
    if unknown or not values:
        raise ValueError(f"--fail-on {text!r}: unknown outcome(s) {', '.join(unknown) or '(none)'}"
                         f"; use a comma-separated list of {', '.join(OUTCOMES)}, or none")
    return tuple(values)


def failing_cells(cells: list[dict], fail_on: tuple[str, ...]) -> list[dict]:
    return [c for c in cells if c["outcome"] in fail_on]
