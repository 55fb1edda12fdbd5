"""Cut the server PDUs of zeek's RDP traces into cited test vectors (tests/vectors/windows/).

The traces are mstsc talking to real Windows servers; zeek keeps them in
testing/btest/Traces/rdp/ (https://github.com/zeek/zeek). This script is how the committed
vectors were made, so anyone can redo it from a zeek checkout:

    python3 scripts/extract_windows_vectors.py ZEEK/testing/btest/Traces/rdp tests/vectors/windows

It asks tshark for each TCP segment's payload (no dissector is trusted), rebuilds each direction
of each connection from the sequence numbers (retransmissions dropped), cuts TPKT frames off
each side's stream until TLS (or fast-path) starts, and writes one line per PDU: side, stream,
the frame that completed it, hex. Of mstsc's PDUs only the connection sequence up to the Client
Info is kept (what the tests replay). Neither the pcaps nor any zeek code are in the repository.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TRACES = ("rdp-proprietary-encryption", "rdp-to-ssl", "rdp-x509")
RDP_PORT = 3389
CLIENT_PDUS_KEPT = 16  # X.224, Connect Initial, Erect/Attach/Joins, Security Exchange, Info


def segments(pcap: Path) -> list[tuple[int, int, int, int, bytes]]:
    """(frame, stream, source port, relative seq, payload) of every TCP segment with data."""
    out = subprocess.run(
        ["tshark", "-r", str(pcap), "-Y", "tcp.len > 0", "-T", "fields", "-e", "frame.number",
         "-e", "tcp.stream", "-e", "tcp.srcport", "-e", "tcp.seq", "-e", "tcp.payload"],
        capture_output=True, text=True, check=True, timeout=120).stdout
    rows = []
    for line in out.splitlines():
        frame, stream, port, seq, payload = line.split("\t")
        rows.append((int(frame), int(stream), int(port), int(seq), bytes.fromhex(payload)))
    return rows


def tpkt_pdus(pcap: Path, *, server: bool) -> list[tuple[int, int, bytes]]:
    """(stream, frame, TPKT PDU) one side sent, in order, until its stream stops being TPKT
    (TLS, or fast-path input from the client)."""
    streams: dict[int, list[tuple[int, int, bytes]]] = {}
    for frame, stream, port, seq, payload in segments(pcap):
        if (port == RDP_PORT) == server:
            streams.setdefault(stream, []).append((seq, frame, payload))
    pdus = []
    for stream, segs in sorted(streams.items()):
        buf, frames, next_seq = bytearray(), [], None
        for seq, frame, payload in sorted(segs):
            if next_seq is not None and seq < next_seq:
                continue  # retransmission
            buf += payload
            frames.append((len(buf), frame))
            next_seq = seq + len(payload)
        pos = 0
        while pos + 4 <= len(buf) and buf[pos] == 3:
            length = int.from_bytes(buf[pos + 2:pos + 4], "big")
            if length < 4 or pos + length > len(buf):
                break
            end_frame = next(f for end, f in frames if end >= pos + length)
            pdus.append((stream, end_frame, bytes(buf[pos:pos + length])))
            pos += length
    return pdus


def main(trace_dir: str, out_dir: str) -> int:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name in TRACES:
        pcap = Path(trace_dir) / f"{name}.pcap"
        lines = [f"# zeek testing/btest/Traces/rdp/{name}.pcap: the TPKT PDUs of each side; "
                 "s = sent by the Windows server, c = by mstsc", "# side stream frame: hex"]
        pdus = [("s", *p) for p in tpkt_pdus(pcap, server=True)]
        client = tpkt_pdus(pcap, server=False)
        kept = [p for i, p in enumerate(client)
                if sum(1 for q in client[:i] if q[0] == p[0]) < CLIENT_PDUS_KEPT]
        pdus += [("c", *p) for p in kept]
        for side, stream, frame, pdu in sorted(pdus, key=lambda p: (p[1], p[2], p[0])):
            lines.append(f"{side} {stream} {frame}: {pdu.hex()}")
        (out / f"{name}.hex").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
