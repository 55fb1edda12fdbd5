"""Synthesised TCP/IP frames for a byte stream, written as a classic libpcap file.

Sans-IO in the sense of the protocol core: `TcpFlow` turns (time, direction, bytes) into
Ethernet/IPv4/TCP frames with consistent sequence numbers, a three-way handshake and a FIN
exchange, segments of at most one MSS and correct checksums; `pcap_bytes` frames them.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field

LINKTYPE_ETHERNET = 1
MSS = 1460
SYN, FIN, PSH, ACK = 0x02, 0x01, 0x08, 0x10
CLIENT_MAC = bytes.fromhex("020000000001")
SERVER_MAC = bytes.fromhex("020000000002")


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


@dataclass
class Endpoint:
    address: str
    port: int
    mac: bytes
    seq: int


def _frame(src: Endpoint, dst: Endpoint, flags: int, payload: bytes, ack: int,
           ident: int) -> bytes:
    src_ip = ipaddress.IPv4Address(src.address).packed
    dst_ip = ipaddress.IPv4Address(dst.address).packed
    tcp = struct.pack("!HHIIBBHHH", src.port, dst.port, src.seq & 0xFFFFFFFF,
                      ack & 0xFFFFFFFF if flags & ACK else 0, 5 << 4, flags, 64240, 0, 0)
    pseudo = src_ip + dst_ip + struct.pack("!BBH", 0, 6, len(tcp) + len(payload))
    tcp = tcp[:16] + struct.pack("!H", _checksum(pseudo + tcp + payload)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp) + len(payload), ident & 0xFFFF,
                     0x4000, 64, 6, 0, src_ip, dst_ip)
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    return dst.mac + src.mac + b"\x08\x00" + ip + tcp + payload


@dataclass
class TcpFlow:
    """One TCP connection between the client and a server, as frames with timestamps."""

    client: tuple[str, int]
    server: tuple[str, int]
    frames: list[tuple[float, bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._c = Endpoint(self.client[0], self.client[1], CLIENT_MAC, 0x1000)
        self._s = Endpoint(self.server[0], self.server[1], SERVER_MAC, 0x8000)
        self._ident = 1
        self._open = False
        self._closed = False

    def _emit(self, t: float, from_client: bool, flags: int, payload: bytes = b"") -> None:
        src, dst = (self._c, self._s) if from_client else (self._s, self._c)
        self.frames.append((t, _frame(src, dst, flags, payload, dst.seq, self._ident)))
        self._ident += 1
        src.seq += len(payload) + (1 if flags & (SYN | FIN) else 0)

    def connect(self, t: float) -> None:
        if not self._open:
            self._open = True
            self._emit(t, True, SYN)
            self._emit(t, False, SYN | ACK)
            self._emit(t, True, ACK)

    def data(self, t: float, from_client: bool, payload: bytes) -> None:
        """Payload in segments of at most one MSS; the receiver acknowledges every second
        segment (delayed ACK), so no window fills."""
        self.connect(t)
        segments = [payload[i:i + MSS] for i in range(0, len(payload), MSS)]
        for n, segment in enumerate(segments, 1):
            self._emit(t, from_client, PSH | ACK if n == len(segments) else ACK, segment)
            if n % 2 == 0 or n == len(segments):
                self._emit(t, not from_client, ACK)

    def close(self, t: float, by_client: bool = True) -> None:
        if self._open and not self._closed:
            self._closed = True
            self._emit(t, by_client, FIN | ACK)
            self._emit(t, not by_client, FIN | ACK)
            self._emit(t, by_client, ACK)


def _block(kind: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    length = 12 + len(body)
    return struct.pack("<II", kind, length) + body + struct.pack("<I", length)


def pcapng_bytes(frames: list[tuple[float, bytes]], tls_keylog: bytes = b"") -> bytes:
    """pcapng with the TLS key log embedded (a Decryption Secrets Block, as `editcap
    --inject-secrets tls,KEYLOG` writes it), so the file alone decrypts in Wireshark."""
    out = [_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)),
           _block(0x00000001, struct.pack("<HHI", LINKTYPE_ETHERNET, 0, 65535))]
    if tls_keylog:
        out.append(_block(0x0000000A, struct.pack("<II", 0x544C534B, len(tls_keylog))
                          + tls_keylog))
    for t, frame in sorted(frames, key=lambda f: f[0]):
        micros = int(t * 1_000_000)
        out.append(_block(0x00000006, struct.pack("<IIIII", 0, micros >> 32,
                                                  micros & 0xFFFFFFFF, len(frame), len(frame))
                          + frame))
    return b"".join(out)


def pcap_bytes(frames: list[tuple[float, bytes]]) -> bytes:
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, LINKTYPE_ETHERNET)]
    for t, frame in sorted(frames, key=lambda f: f[0]):
        seconds = int(t)
        out.append(struct.pack("<IIII", seconds, int((t - seconds) * 1e6), len(frame),
                               len(frame)))
        out.append(frame)
    return b"".join(out)
