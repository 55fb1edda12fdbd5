"""HTML report (placeholder until the heat map lands)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def write_html(doc: dict[str, Any], path: Path) -> None:
    raise NotImplementedError("--html is not available yet")
