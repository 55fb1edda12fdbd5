"""Pieces both session roles use: framing the stream after security, and I/O channel wrapping."""

from __future__ import annotations

from typing import TYPE_CHECKING, Generic

from .phases import P
from .share import PDUTYPE_DATAPDU, SEC_LICENSE_PKT
from .tpkt import Frame, FrameBuffer
from .x224 import decode_data, encode_data

if TYPE_CHECKING:
    from .endpoint import SessionLink

SHARE_ID = 0x000103EA  # the shareId Windows servers use


def is_license_pdu(data: bytes) -> bool:
    """True for a licensing PDU (security header), False for a share control PDU.

    Both travel on the I/O channel before activation; a share header's second word is pduType
    with version 1 in its high nibble (0x001X), a security header's is flagsHi (0 in practice).
    """
    if len(data) < 4:
        return False
    second = int.from_bytes(data[2:4], "little")
    if second & 0xFFF0 == 0x0010 and second & 0xF in (1, 3, 6, PDUTYPE_DATAPDU, 0xA):
        return False
    return bool(int.from_bytes(data[0:2], "little") & SEC_LICENSE_PKT)


class FramedStream:
    """TPKT and fast-path frames cut from the decrypted byte stream."""

    def __init__(self) -> None:
        self.buffer = FrameBuffer()

    def feed(self, data: bytes) -> list[Frame]:
        self.buffer.feed(data)
        frames = []
        while (frame := self.buffer.next_frame()) is not None:
            frames.append(frame)
        return frames


class SessionBase(Generic[P]):
    """Output and framing shared by ClientSession and ServerSession; the phase machine and the
    event queue are the connection's (`link`). A failure is raised (ProtocolFailure or another
    RdpError) and ends in the connection's one failure path; a plain close uses `link.close`."""

    def __init__(self, link: SessionLink[P]) -> None:
        self.link = link
        self._machine = link.machine
        self._emit = link.emit
        self._stream = FramedStream()
        self._out: list[bytes] = []

    @property
    def pending_bytes(self) -> int:
        """Bytes of an incomplete frame received so far."""
        return self._stream.buffer.pending

    @property
    def phase(self) -> P:
        return self._machine.phase

    def data_to_send(self) -> bytes:
        out = b"".join(self._out)
        self._out.clear()
        return out

    def receive(self, data: bytes) -> None:
        for frame in self._stream.feed(data):
            if self._machine.closed:
                return
            self._on_frame(frame)

    def _on_frame(self, frame: Frame) -> None:
        raise NotImplementedError

    def _send_mcs(self, pdu: bytes) -> None:
        self._out.append(mcs_frame(pdu))


def mcs_frame(pdu: bytes) -> bytes:
    """An MCS PDU in X.224 Data inside TPKT."""
    return encode_data(pdu)


def mcs_payload(frame: Frame) -> bytes:
    return decode_data(frame.data)
