"""How a client's codes read to a person ('0x904/0x7', 'prompt: certificate warning...')."""

from __future__ import annotations

from typing import Any


def code_text(codes: dict[str, Any] | None, *, full: bool = False) -> str:
    """Short form for tables; `full` adds the prompt's or message's text."""
    if not codes:
        return "?"
    if codes.get("result") == "connected":
        return "connects"
    if "disconnect" in codes:
        if codes["disconnect"] is None:
            kind = "prompt" if codes.get("prompt") else "message"
            text = codes.get(kind) or ""
            return f'{kind}: "{text}"' if full and text else kind
        code = f"{codes['disconnect']}/{codes.get('extended', '0x0')}"
        if full and codes.get("message"):
            code += f' "{codes["message"]}"'
        return code
    if "exit" in codes:
        return f"exit {codes['exit']}" + (f" {codes['error']}" if full and codes.get("error")
                                          else "")
    return str(codes.get("result", "?"))


def claimed_text(claimed: dict[str, Any]) -> str:
    codes = [str(v) for k, v in claimed.items() if k not in ("text", "sources")]
    return "/".join(codes) or "(no code)"


def user_profile(fault: dict[str, Any]) -> str | None:
    """The profile the user ran comes first in a fault's codes."""
    return next(iter(fault.get("codes") or {}), None)
