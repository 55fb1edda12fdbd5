"""Human-readable rendering of a probe result (a stage table and the verdict)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from .result import ProbeResult

_STYLE = {"ok": "green", "failed": "bold red", "warning": "yellow", "info": "cyan"}


def _detail_text(detail: dict[str, Any]) -> str:
    parts = []
    for key, value in detail.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        elif isinstance(value, list):
            value = "; ".join(str(v) for v in value)
        parts.append(f"{key}: {value}")
    return "\n".join(parts)


def print_trace(result: ProbeResult, console: Console | None = None) -> None:
    console = console or Console()
    table = Table(title=f"{result.target} as {result.profile}")
    table.add_column("stage")
    table.add_column("outcome")
    table.add_column("ms", justify="right")
    table.add_column("detail", overflow="fold")
    for s in result.stages:
        table.add_row(s.stage, f"[{_STYLE.get(s.outcome, '')}]{s.outcome}[/]",
                      f"{s.seconds * 1000:.1f}", _detail_text(s.detail))
    console.print(table)
    for w in result.warnings:
        console.print(f"[yellow]warning[/] at {w['stage']}: {w['message']}")
    codes = ", ".join(
        f"{name}: " + ", ".join(f"{k}={v}" for k, v in c.items() if k not in ("source",))
        for name, c in result.codes.items()
    )
    if result.ok:
        console.print(f"[green]verdict: usable session[/] ({result.update_bytes} update bytes)")
    else:
        f = result.failure
        where = f"{f.stage}/{f.event}: {f.reason}" if f else "not usable"
        console.print(f"[bold red]verdict: failed[/] at {where}")
    console.print(f"codes: {codes}")
