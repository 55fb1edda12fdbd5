"""`rdplab matrix --pcap`: every probe connection of a cell as a pcapng with its TLS key log
(through an RD Gateway: the client's leg to the gateway on 443 and the tunnelled RDP to 3389),
checked with real tshark: the RDP PDUs inside TLS decode with the keys (embedded in the file,
or from the key log), none is malformed, and without keys they do not show."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.matrix.evidence import load_evidence
from tests.system.test_ci_gate import rdplab

# Wireshark's TPKT dissector owns tcp/3389 and has no STARTTLS switch after the X.224
# negotiation, so the TLS part is dissected with "Decode As" TLS on 3389 (-d).
DECODE = ["-d", "tcp.port==3389,tls"]


def tshark(*args: str | Path) -> list[list[str]]:
    out = subprocess.run(["timeout", "60", "tshark", *map(str, args)], capture_output=True,
                         text=True, timeout=90)
    assert out.returncode == 0, out.stderr
    return [line.split("\t") for line in out.stdout.splitlines() if line]


def frames(pcap: Path, *extra: str | Path) -> list[list[str]]:
    return tshark("-r", pcap, *DECODE, *extra, "-T", "fields", "-e", "frame.number",
                  "-e", "_ws.col.Protocol", "-e", "_ws.col.Info", "-e", "tcp.srcport",
                  "-e", "tcp.dstport")


def complaints(pcap: Path) -> list[list[str]]:
    """Frames tshark calls malformed or warns about, except its HTTP dissector's guesses at the
    WebSocket payload of the gateway leg: Wireshark 4.0 knows neither the RDG_OUT_DATA method
    nor, so, the upgrade, and hands the binary frames after the 101 (tunnelled host-side TLS,
    opaque to it) to HTTP, which now and then reads them as a broken header (a warning, or a
    thrown "Malformed Packet"), depending on the ciphertext (rdp-facts §17). Every frame before
    the 101, and every frame after it that HTTP did not claim, is still checked."""
    upgraded = {row[0]: int(row[1]) for row in tshark(
        "-r", pcap, *DECODE, "-Y", "http.response.code == 101", "-T", "fields",
        "-e", "tcp.stream", "-e", "frame.number")}
    rows = tshark("-r", pcap, *DECODE, "-Y", "_ws.malformed || _ws.expert.severity >= warning",
                  "-T", "fields", "-e", "frame.number", "-e", "tcp.stream", "-e", "tcp.port",
                  "-e", "frame.protocols", "-e", "_ws.col.Info")
    return [r for r in rows
            if not ("443" in r[2].split(",") and r[1] in upgraded
                    and int(r[0]) > upgraded[r[1]] and ":tls:http" in r[3])]


@pytest.fixture(scope="module")
def captures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict]]:
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed (Debian package tshark)")
    out: dict[str, list[dict]] = {}
    for lab in ("direct", "default"):
        folder = tmp_path_factory.mktemp(lab)
        run = rdplab("matrix", "--lab", lab, "--backend", "loopback", "--faults",
                     "expired-cert", "--remediations", "renew-rdp-certificate", "--pcap",
                     "--json", folder / "m.json", "--html", folder / "m.html")
        assert run.returncode == 0, run.stderr
        cell = json.loads((folder / "m.json").read_text())["cells"][0]
        assert cell["outcome"] == "fixed"
        evidence = load_evidence(cell)
        assert evidence is not None
        out[lab] = evidence["pcaps"]
        html = (folder / "m.html").read_text()
        assert all(Path(c["pcap"]).name in html for c in out[lab])
    return out


@pytest.mark.parametrize("lab", ["direct", "default"])
def test_every_probe_connection_has_a_capture_that_decodes(captures: dict, lab: str) -> None:
    pcaps = captures[lab]
    labels = [c["label"] for c in pcaps]
    assert labels == ["baseline, mstsc-win11", "reproduce, mstsc-win11", "reproduce, freerdp2",
                      "verify, mstsc-win11"]
    verify = Path(pcaps[-1]["pcap"])
    rows = frames(verify)
    protocols = {r[1] for r in rows}
    info = " ".join(r[2] for r in rows)
    servers = {r[4] for r in rows if r[3] not in ("3389", "443")}
    # the host side is 3389; through the RD Gateway, the client's leg to it is on 443 (TLS,
    # then HTTP: NTLM 401, the WebSocket upgrade) and the tunnelled RDP reaches 3389
    assert servers == ({"3389", "443"} if lab == "default" else {"3389"})
    if lab == "default":
        assert "HTTP/1.1 101 Switching Protocols" in " ".join(r[2] for r in rows)
    assert "Client Hello" in info and "CredSSP" in protocols
    for pdu in ("NTLMSSP_AUTH", "ClientData", "ServerData", "channelJoinConfirm", "ClientInfo",
                "Confirm Active PDU"):
        assert pdu in info, (pdu, info[:2000])
    assert not complaints(verify)
    # The same with the separate key log instead of the keys embedded in the pcapng
    bare = verify.with_name("bare.pcapng")
    subprocess.run(["editcap", "--discard-all-secrets", str(verify), str(bare)], check=True,
                   capture_output=True, timeout=60)
    assert "ClientInfo" not in " ".join(r[2] for r in frames(bare))  # no keys: nothing inside
    keyed = " ".join(r[2] for r in frames(bare, "-o", f"tls.keylog_file:{pcaps[-1]['keylog']}"))
    assert "ClientInfo" in keyed and "Confirm Active PDU" in keyed


def test_the_failing_probe_shows_its_certificate_in_the_capture(captures: dict) -> None:
    reproduce = Path(captures["direct"][1]["pcap"])
    rows = tshark("-r", reproduce, *DECODE, "-T", "fields", "-e", "x509sat.printableString",
                  "-e", "x509ce.dNSName")
    assert any("rdhost" in " ".join(r) for r in rows)
