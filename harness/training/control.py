"""The supervisor's control channel: one JSON request and one JSON reply per connection on the
lab's Unix socket (mode 0600 inside a 0700 directory: only the owner talks to the lab).

Request: {"op": "status" | "break" | "exec" | "shell" | "check" | "reset" | "stop", ...}
Reply:   {"ok": true, ...} or {"ok": false, "error": "...", "usage": bool}
Both are bounded (MAX_MESSAGE) and every wait has a deadline.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from .errors import LabFailed, TrainingError

MAX_MESSAGE = 4 * 1024 * 1024
DEFAULT_TIMEOUT = 60.0


def read_message(sock: socket.socket, deadline_s: float) -> dict[str, Any]:
    """One newline-terminated JSON object (at most MAX_MESSAGE bytes)."""
    sock.settimeout(deadline_s)
    buf = bytearray()
    while not buf.endswith(b"\n"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        buf += chunk
        if len(buf) > MAX_MESSAGE:
            raise ValueError(f"control message larger than {MAX_MESSAGE} bytes")
    if not buf:
        raise ConnectionError("the peer closed without a message")
    data = json.loads(buf)
    if not isinstance(data, dict):
        raise ValueError("a control message is a JSON object")
    return data


def send_message(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.sendall(json.dumps(message).encode() + b"\n")


def call(socket_path: Path, op: str, timeout: float = DEFAULT_TIMEOUT, **args: Any
         ) -> dict[str, Any]:
    """Ask the supervisor; TrainingError for a refused request (bad input), LabFailed when the
    supervisor does not answer."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(5.0)
        try:
            sock.connect(str(socket_path))
        except (FileNotFoundError, ConnectionRefusedError):
            raise TrainingError(f"the lab at {socket_path.parent} is not up (its supervisor "
                                "does not answer); `rdplab up` starts it, `rdplab down` "
                                "removes what is left") from None
        send_message(sock, {"op": op, **args})
        try:
            reply = read_message(sock, timeout)
        except (TimeoutError, ConnectionError, ValueError) as exc:
            raise LabFailed(f"the lab's supervisor did not answer {op!r}: {exc}") from None
    finally:
        sock.close()
    if not reply.get("ok"):
        message = str(reply.get("error", "failed"))
        if reply.get("usage"):
            raise TrainingError(message)
        raise LabFailed(message)
    return reply
