"""tshark decodes a probe <-> host session under Standard RDP Security (SecurityLayer 0): the
cleartext connection sequence (GCC Server Security Data with the proprietary certificate, the
Security Exchange) and the encrypted PDUs after it, with no malformed PDU and no expert
warning from our side. (TLS sessions: tests/system/test_pcap.py.)"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from harness.capture.session import probe_capture
from harness.pki import KeyPair
from tests.helpers import policy_for, running_host
from tests.integration.test_probe_host import probe

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None,
                                reason="tshark is not installed (Debian package tshark)")


def _tshark(pcap: Path, port: int, *args: str) -> list[list[str]]:
    """tshark with the host's port decoded as TPKT (with no TLS the whole stream is RDP)."""
    out = subprocess.run(["timeout", "60", "tshark", "-r", str(pcap), "-d",
                          f"tcp.port=={port},tpkt", *args], capture_output=True, text=True,
                         timeout=90)
    assert out.returncode == 0, out.stderr
    return [line.split("\t") for line in out.stdout.splitlines() if line]


@pytest.mark.parametrize("level", [1, 2, 3])
def test_tshark_decodes_a_standard_rdp_security_session(tmp_path: Path, host_pair: KeyPair,
                                                        lab_ca: KeyPair, level: int) -> None:
    policy = policy_for(host_pair, security_layer=0, user_authentication=False,
                        min_encryption_level=level)
    with running_host(policy) as (host, _), probe_capture(tmp_path, "rdpsec") as info:
        port = host.address[1]
        result = probe(port, "freerdp2", lab_ca)
    assert result.ok
    pcap = Path(info["pcap"])
    rows = _tshark(pcap, port, "-T", "fields", "-e", "_ws.col.Info")
    info_text = " ".join(r[0] for r in rows)
    for pdu in ("Negotiate Failure", "Negotiate Request", "ClientData", "ServerData",
                "ClientInfo", "[Encrypted]"):
        assert pdu in info_text, (pdu, info_text[:3000])
    server = _tshark(pcap, port, "-Y", "rdp.server.securityData", "-T", "fields", "-e",
                     "rdp.encryptionMethod", "-e", "rdp.encryptionLevel", "-e",
                     "rdp.serverRandomLen")
    assert server == [["0x00000002", f"{level:#010x}", "32"]]  # 128-bit RC4, the level, a random
    # Windows' own PDU kinds of zeek's rdp-proprietary-encryption trace (frames 32 and 35)
    exchange = _tshark(pcap, port, "-Y", "rdp.securityExchangePDU", "-T", "fields", "-e",
                       "rdp.flags")
    assert len(exchange) == 1 and "0x0201" in exchange[0][0].split(",")  # one frame: +ClientInfo
    licence = _tshark(pcap, port, "-Y", "rdp.validClientLicenseData", "-T", "fields", "-e",
                      "rdp.flags")
    assert len(licence) == 1 and "0x0288" in licence[0][0].split(",")
    bad = "_ws.malformed || _ws.expert.severity >= warning"
    assert not _tshark(pcap, port, "-Y", bad, "-T", "fields", "-e", "frame.number", "-e",
                       "_ws.col.Info")
