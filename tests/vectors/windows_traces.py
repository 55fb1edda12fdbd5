"""Real Windows servers' PDUs from zeek's RDP traces (tests/vectors/windows/*.hex), made by
scripts/extract_windows_vectors.py: each PDU with its trace, TCP stream and frame number."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).parent / "windows"


@dataclass(frozen=True)
class TracePdu:
    trace: str
    side: str  # "s": the Windows server, "c": mstsc
    stream: int
    frame: int
    data: bytes

    @property
    def cite(self) -> str:
        return f"zeek {self.trace}.pcap frame {self.frame}"


def load(trace: str) -> list[TracePdu]:
    pdus = []
    for line in (HERE / f"{trace}.hex").read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        head, hexdata = line.split(": ")
        side, stream, frame = head.split()
        pdus.append(TracePdu(trace, side, int(stream), int(frame), bytes.fromhex(hexdata)))
    return pdus


def pdu(trace: str, frame: int) -> TracePdu:
    return next(p for p in load(trace) if p.frame == frame)
