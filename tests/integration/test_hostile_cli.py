"""Issue 10's table, row by row, through the CLI as a user meets it: hostile servers against
`rdplab probe`, hostile clients against `rdplab host`, bad arguments. Every case ends within
its deadline with a typed failure (probe: exit 10-23 and JSON; usage: exit 2), never a
traceback."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import NameOID

from harness.pki import KeyPair
from harness.probe.result import EXIT_BY_STAGE
from tests.helpers import PASSWORD, USER, policy_for
from tests.hostile.peers import (
    TSREQUEST_100MB,
    HostileServer,
    ScriptedGateway,
    TlsOnlyServer,
    big_tsrequest_server,
    long_av_flags_server,
    ntlm_gateway_responder,
    tls_client,
    with_long_av_flags,
)
from tests.integration.test_cli_probe_host import PW_VAR, _env, host_process, rdplab

pytestmark = pytest.mark.timeout(120)


def probe(url: str, *extra: str, timeout: float = 60) -> tuple[int, dict, str, float]:
    t0 = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "harness.cli", "probe", url, "--password-env",
                          PW_VAR, "--cert-policy", "ignore", "--json", *extra],
                         env=_env(**{PW_VAR: PASSWORD}), capture_output=True, text=True,
                         timeout=timeout, check=False)
    elapsed = time.monotonic() - t0
    assert "Traceback" not in run.stderr, run.stderr
    try:
        doc = json.loads(run.stdout)
    except json.JSONDecodeError as exc:
        raise AssertionError(f"no JSON (exit {run.returncode}): {run.stderr[-800:]}") from exc
    return run.returncode, doc, run.stderr, elapsed


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


# -- row: a 100 MB TSRequest claim against `rdplab host` ------------------------------------------


def test_host_refuses_a_100mb_tsrequest_at_once_and_stops_within_a_second(tmp_path: Path) -> None:
    with host_process("--user", USER, "--password-env", PW_VAR, cwd=tmp_path) as (proc, port):
        before = rss_kib(proc.pid)
        tls = tls_client(port)
        t0 = time.monotonic()
        tls.settimeout(5)
        sent = 0
        try:  # keep pushing: the host must close rather than buffer
            tls.sendall(TSREQUEST_100MB + bytes(60000))
            while sent < 20 << 20:
                tls.sendall(bytes(65536))
                sent += 65536
        except OSError:
            pass
        closed_after = time.monotonic() - t0
        tls.close()
        assert closed_after < 2, f"host kept reading a 100 MB claim for {closed_after:.1f} s"
        assert sent < 4 << 20, f"host accepted {sent} bytes of a refused TSRequest"
        assert rss_kib(proc.pid) - before < 50_000
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=5) == 0
        assert time.monotonic() - t0 < 1.5
        _, err = proc.communicate(timeout=5)
    assert "Traceback" not in err


# -- row: a server answering with an 8 or 16 MB TSRequest ----------------------------------------


@pytest.mark.parametrize("size", [8 << 20, 16 << 20])
def test_probe_refuses_a_huge_tsrequest_within_its_timeout(size: int, host_pair: KeyPair) -> None:
    server = big_tsrequest_server(policy_for(host_pair), size)
    try:
        code, doc, _, elapsed = probe(f"rdp://{USER}@127.0.0.1:{server.port}", "--timeout", "6")
    finally:
        server.close()
    assert elapsed < 6.5
    assert code == EXIT_BY_STAGE["credssp"]
    assert doc["failure"]["stage"] == "credssp"
    assert "more than the 69631-byte maximum" in doc["failure"]["reason"]


# -- row: probe tracebacks against hostile servers ------------------------------------------------


def _ed25519_pair() -> KeyPair:
    key = ed25519.Ed25519PrivateKey.generate()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30)).sign(key, None))
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM),
                   key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))


def test_probe_meets_an_ed25519_server_certificate_with_a_typed_failure() -> None:
    pair = _ed25519_pair()
    with TlsOnlyServer(pair.cert_pem, pair.key_pem) as server:
        code, doc, _, _ = probe(f"rdp://{USER}@127.0.0.1:{server.port}", "--timeout", "10")
    assert 10 <= code <= 23
    assert doc["ok"] is False and doc["failure"]["stage"] in ("tls", "credssp")


@pytest.mark.parametrize("profile", ["mstsc-win11", "freerdp2"])  # SPNEGO and raw NTLM
def test_probe_meets_a_long_msvavflags_with_a_typed_failure(profile: str,
                                                            host_pair: KeyPair) -> None:
    server = long_av_flags_server(policy_for(host_pair))
    try:
        code, doc, _, _ = probe(f"rdp://{USER}@127.0.0.1:{server.port}", "--timeout", "10",
                                "--profile", profile)
    finally:
        server.close()
    assert code == EXIT_BY_STAGE["credssp"]
    assert "MsvAvFlags of 5 bytes" in doc["failure"]["reason"]


def test_probe_meets_a_long_msvavflags_from_the_gateway(host_pair: KeyPair) -> None:
    respond = ntlm_gateway_responder({USER: PASSWORD}, with_long_av_flags)
    with ScriptedGateway(host_pair.cert_pem, host_pair.key_pem, respond) as gw:
        code, doc, _, _ = probe(f"rdp://{USER}@127.0.0.1:3389", "--gateway",
                                f"https://127.0.0.1:{gw.port}", "--timeout", "10")
    assert 20 <= code <= 23, doc
    assert "MsvAvFlags of 5 bytes" in json.dumps(doc["failure"])


@pytest.mark.parametrize("status", ["²00", "２００", "20"])
def test_probe_meets_a_gateway_status_line_with_odd_digits(status: str,
                                                           host_pair: KeyPair) -> None:
    def respond(head: bytes) -> bytes:
        return f"HTTP/1.1 {status} OK\r\nContent-Length: 0\r\n\r\n".encode()

    with ScriptedGateway(host_pair.cert_pem, host_pair.key_pem, respond) as gw:
        code, doc, _, _ = probe(f"rdp://{USER}@127.0.0.1:3389", "--gateway",
                                f"https://127.0.0.1:{gw.port}", "--timeout", "10")
    assert code == 22, doc  # gateway HTTP
    assert "bad status line" in doc["failure"]["reason"]


# -- row: verdicts ---------------------------------------------------------------------------------


def test_corrupt_tls_record_after_the_handshake_fails_the_stage_reached(
        host_pair: KeyPair) -> None:
    with HostileServer(policy_for(host_pair), "mcs", "corrupt_record", hold=10) as server:
        code, doc, _, _ = probe(f"rdp://{USER}@127.0.0.1:{server.port}", "--timeout", "10")
    assert doc["failure"]["stage"] == "mcs", doc["failure"]
    assert doc["failure"]["event"] != "handshake_failed"
    assert code == EXIT_BY_STAGE["mcs"]


def test_when_timeout_fires_the_reason_says_so(host_pair: KeyPair) -> None:
    with HostileServer(policy_for(host_pair), "credssp", "stall", hold=10) as server:
        code, doc, _, elapsed = probe(f"rdp://{USER}@127.0.0.1:{server.port}", "--timeout", "1")
    assert elapsed < 15  # interpreter start-up included, on a machine loaded by other work
    assert sum(s["seconds"] for s in doc["stages"]) < 3  # 1 s, plus scheduling under load
    assert doc["failure"]["event"] == "timeout"
    assert doc["failure"]["reason"].startswith("--timeout 1 s reached during credssp")
    assert code == EXIT_BY_STAGE["credssp"]


# -- row: bad arguments ------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "message"), [
    (["host", "--listen", "127.0.0.1:80000"], "port 80000 is out of range (0-65535)"),
    (["host", "--listen", "127.0.0.1:８０"], "expected ADDR:PORT"),
    (["probe", "rdp://a@127.0.0.1:1", "--password-env", "X", "--timeout", "0"],
     "argument --timeout: 0 is out of range"),
    (["probe", "rdp://a@127.0.0.1:1", "--password-env", "X", "--timeout", "nan"],
     "argument --timeout: nan is out of range"),
    (["matrix", "--stage-timeout", "0"], "argument --stage-timeout: 0 is out of range"),
    (["matrix", "--jobs", "-3"], "argument --jobs: -3 is out of range: give 1 to"),
    (["verify", "x.ps1", "--stage-timeout", "-1"], "argument --stage-timeout: -1 is out of"),
    (["probe", "rdp://a@127.0.0.1:1"], "no password given: use --password-env VAR"),
])
def test_bad_numbers_and_missing_password_are_usage_errors(args: list[str], message: str) -> None:
    run = rdplab(*args, password="x")
    assert run.returncode == 2, run.stderr
    assert message in run.stderr
    assert "Traceback" not in run.stderr


def test_cafile_that_is_not_pem_is_refused_before_connecting(tmp_path: Path) -> None:
    bad = tmp_path / "ca.der"
    bad.write_bytes(b"\x30\x82\x01\x00" + os.urandom(256))
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(0.5)
        port = listener.getsockname()[1]
        run = rdplab("probe", f"rdp://a@127.0.0.1:{port}", "--password-env", PW_VAR,
                     "--cafile", str(bad), password="x")
        with pytest.raises(TimeoutError):
            listener.accept()  # nobody connected
    assert run.returncode == 2
    assert f"--cafile {bad}: no PEM certificate in it" in run.stderr


# -- row: scenario / lab YAML ----------------------------------------------------------------------

ALIAS_BOMB = "\n".join(
    ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    + [f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]" for p, n in zip("abcdefgh", "bcdefghi",
                                                                   strict=True)]) + "\n"
YAML_CASES = [
    (ALIAS_BOMB, 6, "expands to more than"),  # where it passes 100,000 values
    ("id: x\nitems: &loop [1, *loop]\n", 2, "refers to its own anchor"),
    ("id: x\ntitle: [unclosed\n", 3, "not valid YAML"),
    ("a:\n" + "".join("  " * i + "- \n" for i in range(1, 80)), None, "nested deeper than"),
]


@pytest.mark.parametrize(("text", "line", "message"), YAML_CASES)
def test_bad_lab_yaml_exits_2_naming_file_and_line(text: str, line: int | None, message: str,
                                                   tmp_path: Path) -> None:
    lab = tmp_path / "lab.yaml"
    lab.write_text(text)
    t0 = time.monotonic()
    run = rdplab("matrix", "--lab", str(lab), "--backend", "loopback", timeout=60)
    assert time.monotonic() - t0 < 10
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    assert message in run.stderr
    assert f"{lab}:{line or ''}" in run.stderr


@pytest.mark.parametrize(("text", "line", "message"), YAML_CASES[:3])
def test_bad_scenario_yaml_exits_2_naming_file_and_line(text: str, line: int, message: str,
                                                        tmp_path: Path) -> None:
    folder = tmp_path / "scenarios"
    (folder / "remediations").mkdir(parents=True)
    (folder / "bomb.yaml").write_text(text)
    run = rdplab("matrix", "--scenarios", str(folder), "--backend", "loopback", timeout=60)
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    assert f"{folder / 'bomb.yaml'}:{line}" in run.stderr and message in run.stderr


@pytest.mark.parametrize(("text", "line", "message"), YAML_CASES[:3])
def test_bad_host_config_yaml_exits_2_naming_file_and_line(text: str, line: int, message: str,
                                                           tmp_path: Path) -> None:
    config = tmp_path / "host.yaml"
    config.write_text(text)
    run = rdplab("host", "--listen", "127.0.0.1:0", "--config", str(config), timeout=30)
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    assert f"{config}:{line}: not valid YAML: " in run.stderr and message in run.stderr


@pytest.mark.parametrize("command", ["host", "matrix"])
def test_non_utf8_config_exits_2_naming_the_line(command: str, tmp_path: Path) -> None:
    """Found by the fuzzer: a byte that is not UTF-8 escaped as UnicodeDecodeError."""
    path = tmp_path / "x.yaml"
    path.write_bytes(b"# ok\nname: \xf8\xff\n")
    args = (["host", "--listen", "127.0.0.1:0", "--config", str(path)] if command == "host"
            else ["matrix", "--lab", str(path), "--backend", "loopback"])
    run = rdplab(*args, timeout=60)
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    assert f"{path}:2" in run.stderr and "not UTF-8 text" in run.stderr


# -- row: remediation scripts that hung or crashed the PowerShell parser ---------------------------

SCRIPTS = {
    "trailing-backtick": ("Restart-Service -Name TermService -Force `", "escape character"),
    "leading-zero": ("Set-ItemProperty -Path 'HKLM:\\SYSTEM\\CurrentControlSet\\Control\\"
                     "Terminal Server' -Name MaxOutstandingConnections -Value 09\n"
                     "Restart-Service -Name TermService -Force", None),
    "deep-parens": ("Restart-Service -Name " + "(" * 500 + "'TermService'" + ")" * 500,
                    "nested deeper than"),
}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_hostile_remediation_script_in_a_matrix_run(name: str, tmp_path: Path) -> None:
    script, message = SCRIPTS[name]
    repo = Path(__file__).resolve().parents[2]
    folder = tmp_path / "scenarios"
    (folder / "remediations").mkdir(parents=True)
    (folder / "server-denied.yaml").write_text(
        (repo / "scenarios" / "server-denied.yaml").read_text())
    sidecar = (repo / "scenarios/remediations/restart-rdp-service.yaml").read_text()
    (folder / "remediations" / f"{name}.yaml").write_text(
        sidecar.replace("id: restart-rdp-service", f"id: {name}"))
    (folder / "remediations" / f"{name}.ps1").write_text(script)
    out = tmp_path / "m.json"
    t0 = time.monotonic()
    run = rdplab("matrix", "--scenarios", str(folder), "--backend", "loopback", "--lab",
                 "direct", "--json", str(out), "--jobs", "1", timeout=120)
    assert time.monotonic() - t0 < 60
    assert "Traceback" not in run.stderr
    cells = json.loads(out.read_text())["cells"]
    assert len(cells) == 1 and cells[0]["outcome"] != "lab-error", cells
    if message:
        assert message in cells[0]["reason"], cells[0]["reason"]
