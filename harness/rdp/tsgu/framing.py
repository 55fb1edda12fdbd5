"""The two framings of tunnel packets inside HTTP: chunked transfer coding (the IN channel of the
HTTP transport) and RFC 6455 WebSocket frames (the upgrade variant, masked client to server)."""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass

from ..errors import ParseError
from ..wire import Writer

WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# -- chunked transfer coding (the IN channel) -----------------------------------------------------


def encode_chunk(data: bytes) -> bytes:
    """One chunk, as FreeRDP writes each packet on RDG_IN_DATA."""
    return b"%X\r\n" % len(data) + data + b"\r\n"


class ChunkedDecoder:
    """Incremental chunked-body decoder; `finished` after the zero-length last chunk."""

    _MAX_LINE = 1024

    def __init__(self) -> None:
        self._buf = bytearray()
        self._remaining = -1  # -1: expecting a size line; >=0: data bytes left in chunk
        self._need_crlf = False
        self.finished = False

    def feed(self, data: bytes) -> bytes:
        self._buf += data
        out = bytearray()
        while not self.finished:
            if self._need_crlf:
                if len(self._buf) < 2:
                    break
                if self._buf[:2] != b"\r\n":
                    raise ParseError("chunked body", "chunk data not followed by CRLF")
                del self._buf[:2]
                self._need_crlf = False
            elif self._remaining < 0:
                end = self._buf.find(b"\r\n")
                if end < 0:
                    if len(self._buf) > self._MAX_LINE:
                        raise ParseError("chunked body", "chunk size line too long")
                    break
                line = bytes(self._buf[:end]).split(b";", 1)[0].strip()
                del self._buf[: end + 2]
                try:
                    size = int(line, 16)
                except ValueError:
                    raise ParseError("chunked body", f"bad chunk size {line[:20]!r}") from None
                if size < 0 or len(line) > 8:
                    raise ParseError("chunked body", f"bad chunk size {line[:20]!r}")
                if size == 0:
                    self.finished = True
                    break
                self._remaining = size
            else:
                take = min(self._remaining, len(self._buf))
                if not take:
                    break
                out += self._buf[:take]
                del self._buf[:take]
                self._remaining -= take
                if self._remaining == 0:
                    self._remaining = -1
                    self._need_crlf = True
        return bytes(out)


# -- WebSocket (RFC 6455) -------------------------------------------------------------------------

WS_CONTINUATION = 0x0
WS_TEXT = 0x1
WS_BINARY = 0x2
WS_CLOSE = 0x8
WS_PING = 0x9
WS_PONG = 0xA
MAX_WS_PAYLOAD = 1 << 20


def new_websocket_key() -> str:
    return base64.b64encode(os.urandom(16)).decode("ascii")


def websocket_accept(key: str) -> str:
    """Sec-WebSocket-Accept for a key (any string: FreeRDP 2.11 sends 15 letters, not base64)."""
    digest = hashlib.sha1((key + WEBSOCKET_GUID).encode("latin-1"), usedforsecurity=False)
    return base64.b64encode(digest.digest()).decode("ascii")


def _mask(payload: bytes, key: bytes) -> bytes:
    if not payload:
        return b""
    reps = key * (len(payload) // 4 + 1)
    return (int.from_bytes(payload, "big") ^ int.from_bytes(reps[: len(payload)], "big")).to_bytes(
        len(payload), "big"
    )


def encode_ws_frame(opcode: int, payload: bytes, *, mask: bytes | None, fin: bool = True) -> bytes:
    """One frame; `mask` is the 4-byte key a client must use, None for a server frame."""
    w = Writer().u8((0x80 if fin else 0) | (opcode & 0x0F))
    bit = 0x80 if mask is not None else 0
    n = len(payload)
    if n < 126:
        w.u8(bit | n)
    elif n < 0x10000:
        w.u8(bit | 126).u16be(n)
    else:
        w.u8(bit | 127).u32be(n >> 32).u32be(n & 0xFFFFFFFF)
    if mask is not None:
        if len(mask) != 4:
            raise ValueError("a WebSocket mask is 4 bytes")
        return w.bytes(mask).bytes(_mask(payload, mask)).value()
    return w.bytes(payload).value()


@dataclass(frozen=True)
class WsFrame:
    opcode: int
    payload: bytes
    fin: bool = True


class WsDecoder:
    """Incremental frame decoder. `masked` says what the peer must do: True for frames from a
    client, False for frames from a server (FreeRDP refuses masked server frames)."""

    def __init__(self, *, masked: bool, max_payload: int = MAX_WS_PAYLOAD) -> None:
        self._buf = bytearray()
        self._masked = masked
        self._max = max_payload
        self._fragments: list[bytes] | None = None
        self._fragment_opcode = 0

    def feed(self, data: bytes) -> list[WsFrame]:
        """Complete messages: data frames reassembled, control frames as they come."""
        self._buf += data
        out: list[WsFrame] = []
        while True:
            frame = self._one()
            if frame is None:
                return out
            if frame.opcode >= 0x8:
                out.append(frame)
            elif frame.opcode == WS_CONTINUATION:
                if self._fragments is None:
                    raise ParseError("WebSocket frame", "continuation without a first fragment")
                self._fragments.append(frame.payload)
                if sum(map(len, self._fragments)) > self._max:
                    raise ParseError("WebSocket frame",
                                     f"fragmented message over the {self._max}-byte limit")
                if frame.fin:
                    out.append(WsFrame(self._fragment_opcode, b"".join(self._fragments)))
                    self._fragments = None
            else:
                if self._fragments is not None:
                    raise ParseError("WebSocket frame", "new message inside a fragmented one")
                if frame.fin:
                    out.append(frame)
                else:
                    self._fragments, self._fragment_opcode = [frame.payload], frame.opcode

    def _one(self) -> WsFrame | None:
        buf = self._buf
        if len(buf) < 2:
            return None
        b0, b1 = buf[0], buf[1]
        if b0 & 0x70:
            raise ParseError("WebSocket frame", "reserved bits set")
        opcode, fin = b0 & 0x0F, bool(b0 & 0x80)
        if opcode not in (WS_CONTINUATION, WS_TEXT, WS_BINARY, WS_CLOSE, WS_PING, WS_PONG):
            raise ParseError("WebSocket frame", f"unknown opcode {opcode:#x}")
        masked, n, pos = bool(b1 & 0x80), b1 & 0x7F, 2
        if masked != self._masked:
            raise ParseError("WebSocket frame", "masked" if masked else "unmasked client frame")
        if n == 126:
            if len(buf) < 4:
                return None
            n, pos = int.from_bytes(buf[2:4], "big"), 4
        elif n == 127:
            if len(buf) < 10:
                return None
            n, pos = int.from_bytes(buf[2:10], "big"), 10
        if opcode >= 0x8 and (n > 125 or not fin):
            raise ParseError("WebSocket frame", "bad control frame")
        if n > self._max:
            raise ParseError("WebSocket frame", f"payload of {n} bytes over the limit")
        key = b""
        if masked:
            if len(buf) < pos + 4:
                return None
            key, pos = bytes(buf[pos : pos + 4]), pos + 4
        if len(buf) < pos + n:
            return None
        payload = bytes(buf[pos : pos + n])
        del buf[: pos + n]
        return WsFrame(opcode, _mask(payload, key) if masked else payload, fin)
