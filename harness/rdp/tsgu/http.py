"""HTTP/1.1 heads as FreeRDP 2.11 writes and reads them for RD Gateway, and the NTLM
`Authorization` / `WWW-Authenticate` values. Bounded: a head ends within MAX_HEAD bytes."""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass

from ..errors import ParseError

# -- HTTP heads -----------------------------------------------------------------------------------

RDG_URI = "/remoteDesktopGateway/"
RDG_OUT = "RDG_OUT_DATA"
RDG_IN = "RDG_IN_DATA"
MAX_HEAD = 64 * 1024
SEED_LENGTH = 10  # bytes of "seed" entity body after the OUT channel's 200 (FreeRDP skips 10)

Headers = tuple[tuple[str, str], ...]


def _get(headers: Headers, name: str) -> str | None:
    name = name.lower()
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


@dataclass(frozen=True)
class HttpRequest:
    method: str
    target: str
    headers: Headers = ()
    version: str = "HTTP/1.1"

    def header(self, name: str) -> str | None:
        return _get(self.headers, name)

    def encode(self) -> bytes:
        lines = [f"{self.method} {self.target} {self.version}"]
        lines += [f"{k}: {v}" for k, v in self.headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@dataclass(frozen=True)
class HttpResponse:
    status: int
    reason: str = ""
    headers: Headers = ()
    version: str = "HTTP/1.1"

    def header(self, name: str) -> str | None:
        return _get(self.headers, name)

    def header_all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def encode(self) -> bytes:
        lines = [f"{self.version} {self.status} {self.reason}"]
        lines += [f"{k}: {v}" for k, v in self.headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _split_head(head: bytes, what: str) -> tuple[str, Headers]:
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError as exc:  # pragma: no cover - latin-1 decodes everything
        raise ParseError(what, str(exc)) from None
    if text.endswith("\r\n\r\n"):
        text = text[:-4]
    lines = text.split("\r\n")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name.strip() or " " in name.strip():
            raise ParseError(what, f"malformed header line {line[:60]!r}")
        headers.append((name.strip(), value.strip(" \t")))
    return lines[0], tuple(headers)


def parse_request(head: bytes) -> HttpRequest:
    start, headers = _split_head(head, "HTTP request")
    parts = start.split(" ")
    if len(parts) != 3 or not parts[0] or not parts[1] or not parts[2].startswith("HTTP/"):
        raise ParseError("HTTP request", f"bad request line {start[:80]!r}")
    return HttpRequest(parts[0], parts[1], headers, parts[2])


def parse_response(head: bytes) -> HttpResponse:
    start, headers = _split_head(head, "HTTP response")
    version, _, rest = start.partition(" ")
    code, _, reason = rest.partition(" ")
    if (not version.startswith("HTTP/") or len(code) != 3 or not code.isascii()
            or not code.isdigit()):
        raise ParseError("HTTP response", f"bad status line {start[:80]!r}")
    return HttpResponse(int(code), reason, headers, version)


class HeadBuffer:
    """Collects bytes until a blank line ends an HTTP head; keeps what follows as `leftover`."""

    def __init__(self, limit: int = MAX_HEAD) -> None:
        self._buf = bytearray()
        self._limit = limit
        self.leftover = b""

    def feed(self, data: bytes) -> bytes | None:
        """The complete head (with its CRLFCRLF) once present, else None."""
        self._buf += data
        end = self._buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buf) > self._limit:
                raise ParseError("HTTP head", f"no end of head within {self._limit} bytes")
            return None
        head = bytes(self._buf[: end + 4])
        self.leftover = bytes(self._buf[end + 4 :])
        self._buf.clear()
        return head


def new_connection_id() -> str:
    """A braced GUID, as FreeRDP puts in RDG-Connection-Id."""
    raw = os.urandom(16).hex().upper()
    return f"{{{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}}}"


def rdg_request(
    method: str,
    host: str,
    connection_id: str,
    *,
    authorization: str | None = None,
    websocket_key: str | None = None,
    chunked: bool = False,
) -> HttpRequest:
    """A request with FreeRDP 2.11's headers, in its order (http.c http_request_write)."""
    headers: list[tuple[str, str]] = [
        ("Cache-Control", "no-cache"),
        ("Pragma", "no-cache"),
        ("Accept", "*/*"),
        ("User-Agent", "MS-RDGateway/1.0"),
        ("Host", host),
    ]
    if websocket_key is None:
        headers.append(("Connection", "Keep-Alive"))
    else:
        headers += [
            ("Connection", "Upgrade"),
            ("Upgrade", "websocket"),
            ("Sec-Websocket-Version", "13"),
            ("Sec-Websocket-Key", websocket_key),
        ]
    headers.append(("RDG-Connection-Id", connection_id))
    headers.append(("Transfer-Encoding", "chunked") if chunked else ("Content-Length", "0"))
    if authorization is not None:
        headers.append(("Authorization", authorization))
    return HttpRequest(method, RDG_URI, tuple(headers))


def is_websocket_upgrade(request: HttpRequest) -> bool:
    upgrade = (request.header("Upgrade") or "").lower()
    connection = (request.header("Connection") or "").lower()
    return upgrade == "websocket" and "upgrade" in connection


def ntlm_authorization(token: bytes) -> str:
    """The value of an Authorization (or WWW-Authenticate) header carrying an NTLM token."""
    return "NTLM " + base64.b64encode(token).decode("ascii")


def parse_ntlm_value(value: str | None) -> bytes | None:
    """The token in an 'NTLM <base64>' value; None for another scheme or a bare 'NTLM'."""
    if not value:
        return None
    scheme, _, param = value.strip().partition(" ")
    if scheme.lower() != "ntlm" or not param.strip():
        return None
    try:
        return base64.b64decode(param.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ParseError("NTLM header", "token is not valid base64") from None


def response_ntlm_token(response: HttpResponse) -> bytes | None:
    """The NTLM challenge of a 401, looking at every WWW-Authenticate header."""
    for value in response.header_all("WWW-Authenticate"):
        token = parse_ntlm_value(value)
        if token is not None:
            return token
    return None
