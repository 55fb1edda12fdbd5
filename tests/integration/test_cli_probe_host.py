"""`rdplab host` and `rdplab probe` as the user runs them: real subprocesses on loopback."""

from __future__ import annotations

import contextlib
import json
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.commands.probe import parse_target
from harness.host.config import HostConfigError, load_host_config
from harness.pki import KeyPair
from harness.probe.result import EXIT_BY_STAGE, EXIT_USAGE
from harness.rdp.events import STAGES

pytestmark = pytest.mark.timeout(90)

RDPLAB = [sys.executable, "-m", "harness.cli"]
PW_VAR = "RDPLAB_TEST_PASSWORD"
PASSWORD = "Secret1!"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "host-config.md"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RDPLAB_")}
    env.update(extra)
    return env


def rdplab(*args: str, password: str | None = None, timeout: float = 30,
           cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = _env(**({PW_VAR: password} if password is not None else {}))
    return subprocess.run([*RDPLAB, *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, check=False)


def _first_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            raise AssertionError(f"rdplab host printed nothing within {timeout} s")
    return proc.stdout.readline()


@contextlib.contextmanager
def host_process(*args: str, cwd: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """`rdplab host` in the background; yields (process, port) and always ends it."""
    proc = subprocess.Popen([*RDPLAB, "host", "--listen", "127.0.0.1:0", *args],
                            env=_env(**{PW_VAR: PASSWORD}), cwd=cwd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = _first_line(proc, 15)
        m = re.fullmatch(r"listening on 127\.0\.0\.1:(\d+)\n", line)
        if m is None:
            proc.kill()
            _, err = proc.communicate(timeout=5)
            raise AssertionError(f"first line {line!r}; stderr: {err}")
        yield proc, int(m.group(1))
    finally:
        if proc.poll() is None:
            proc.terminate()  # SIGTERM: the host removes its key folder on the way out
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
        proc.communicate(timeout=10)


@pytest.fixture(scope="module")
def host_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    cwd = tmp_path_factory.mktemp("host")
    with host_process("--user", "alice", "--password-env", PW_VAR, cwd=cwd) as (proc, port):
        yield port
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


@pytest.fixture(scope="module", autouse=True)
def _rdplab_runs() -> None:
    """Every test here runs the real entry point; say so once if it cannot even start."""
    run = rdplab("--version", timeout=30)
    if run.returncode != 0:
        pytest.fail(f"`rdplab --version` exits {run.returncode}: {run.stderr.strip()[-400:]}",
                    pytrace=False)


def probe_json(url: str, password: str | None, *extra: str) -> tuple[int, dict[str, object]]:
    args = ["probe", url, "--cert-policy", "ignore", "--json", "--timeout", "20", *extra]
    if password is not None:
        args += ["--password-env", PW_VAR]
    run = rdplab(*args, password=password)
    try:
        doc = json.loads(run.stdout)
    except json.JSONDecodeError as exc:
        raise AssertionError(f"not JSON (exit {run.returncode}): {run.stdout!r} "
                             f"{run.stderr!r}") from exc
    return run.returncode, doc


# -- rdplab host --------------------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_host_prints_its_address_and_stops_on_signal(sig: signal.Signals, tmp_path: Path) -> None:
    with host_process(cwd=tmp_path) as (proc, port), \
            socket.create_connection(("127.0.0.1", port), timeout=5) as idle:
        time.sleep(0.1)  # a connection is open (and silent) when the signal arrives
        t0 = time.monotonic()
        proc.send_signal(sig)
        code = proc.wait(timeout=5)
        elapsed = time.monotonic() - t0
        idle.settimeout(5)
        with contextlib.suppress(ConnectionResetError):
            assert idle.recv(1) == b""  # the host closed it on the way out
    assert code == 0
    assert elapsed < 5
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), 2):
        pass


def test_host_bad_listen_address_is_a_usage_error() -> None:
    run = rdplab("host", "--listen", "nonsense")
    assert run.returncode == 2
    assert "--listen: 'nonsense': expected ADDR:PORT" in run.stderr


def test_host_user_without_password_variable_is_a_usage_error() -> None:
    run = rdplab("host", "--listen", "127.0.0.1:0", "--user", "alice", "--password-env",
                 "RDPLAB_UNSET_VARIABLE")
    assert run.returncode == 2
    assert "--password-env" in run.stderr


CONFIG_ERRORS = [
    ("security_layer: 1\nuser_authentication: yes-please\n", 2, "user_authentication",
     "expected true or false, got 'yes-please'"),
    ("# a comment\n\ntls_min: TLSv1.2\ntls_max: TLSv9\n", 4, "tls_max", "expected one of TLSv1"),
    ("users:\n  alice: x\nsecurity_layer: 5\n", 3, "security_layer", "expected 0 (RDP)"),
    ("credssp_version: 6\nallow_encryption_oracle: 3\n", 2, "allow_encryption_oracle",
     "expected 0, 1 or 2"),
    ("domain: LAB\nnla: true\n", 2, "nla", "unknown; known fields: security_layer"),
    ("tls_min: TLSv1.3\ntls_max: TLSv1\n", 1, "tls_min", "above tls_max"),
    ("users: {alice: 1234}\n", 1, "users.alice", "both strings"),
    ("clock_offset: soon\n", 1, "clock_offset", "expected a number, got 'soon'"),
]


def test_host_config_error_exits_2_naming_file_line_and_field(tmp_path: Path) -> None:
    text, line, field, message = CONFIG_ERRORS[0]
    config = tmp_path / "host.yaml"
    config.write_text(text)
    run = rdplab("host", "--listen", "127.0.0.1:0", "--config", str(config))
    assert run.returncode == 2
    assert run.stdout == ""  # it never started listening
    assert run.stderr.startswith("rdplab host: ")
    assert f"{config}:{line}: field '{field}': {message}" in run.stderr, run.stderr


@pytest.mark.parametrize(("text", "line", "field", "message"), CONFIG_ERRORS)
def test_host_config_errors_name_line_and_field(text: str, line: int, field: str, message: str,
                                                tmp_path: Path) -> None:
    config = tmp_path / "host.yaml"
    config.write_text(text)
    with pytest.raises(HostConfigError) as info:
        load_host_config(config)
    assert str(info.value).startswith(f"{config}:{line}: field '{field}': "), info.value
    assert message in str(info.value)


def test_host_config_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    config = tmp_path / "host.yaml"
    config.write_text("domain: LAB\nusers: [alice\n")
    run = rdplab("host", "--listen", "127.0.0.1:0", "--config", str(config))
    assert run.returncode == 2
    assert re.search(rf"{re.escape(str(config))}:\d+: not valid YAML", run.stderr), run.stderr


def _docs_example() -> str:
    m = re.search(r"## Example\n\n```yaml\n(.*?)```", DOCS.read_text(), re.S)
    assert m, "docs/host-config.md has no ```yaml example under '## Example'"
    return m.group(1)


def test_docs_example_is_a_valid_config_and_documents_every_field(tmp_path: Path) -> None:
    from harness.host import config as config_module

    config = tmp_path / "host.yaml"
    config.write_text(_docs_example())
    data = load_host_config(config)
    assert set(data) == set(config_module._FIELDS), "the example should show every field"
    table = DOCS.read_text()
    for field in config_module._FIELDS:
        assert f"`{field}`" in table, f"docs/host-config.md does not document {field}"
    # and a change to a field is still checked
    config.write_text(_docs_example().replace("credssp_version: 6", "credssp_version: 9"))
    with pytest.raises(HostConfigError, match=r"host\.yaml:\d+: field 'credssp_version'"):
        load_host_config(config)


def test_docs_example_serves_a_session(tmp_path: Path, host_pair: KeyPair,
                                       lab_ca: KeyPair) -> None:
    """The documented config, with its certificate files, run by `rdplab host` and probed."""
    (tmp_path / "host.yaml").write_text(_docs_example())
    (tmp_path / "rdp.crt").write_bytes(host_pair.cert_pem)
    (tmp_path / "rdp.key").write_bytes(host_pair.key_pem)
    (tmp_path / "ca.crt").write_bytes(lab_ca.cert_pem)
    with host_process("--config", "host.yaml", cwd=tmp_path) as (proc, port):
        run = rdplab("probe", f"rdp://bob@localhost:{port}", "--password-env", PW_VAR,
                     "--cafile", str(tmp_path / "ca.crt"), "--cert-policy", "strict", "--json",
                     "--timeout", "20", password="Hunter2!")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    doc = json.loads(run.stdout)
    assert run.returncode == 0 and doc["ok"] is True, doc
    credssp = next(s for s in doc["stages"] if s["stage"] == "credssp")
    assert credssp["detail"]["ntlm_target"] == "LAB"
    assert abs(credssp["detail"]["clock_skew_seconds"] - 600) < 5
    tls = next(s for s in doc["stages"] if s["stage"] == "tls")
    assert tls["detail"]["certificate"]["verify_errors"] == []  # trusted through --cafile


# -- rdplab probe against rdplab host ----------------------------------------------------------


def test_probe_json_document_for_a_usable_session(host_port: int) -> None:
    code, doc = probe_json(f"rdp://alice@127.0.0.1:{host_port}", PASSWORD)
    assert code == 0, doc
    assert {"ok", "failed_stage", "failure", "warnings", "stages", "codes", "target", "profile",
            "update_bytes"} <= set(doc)
    assert doc["ok"] is True and doc["failed_stage"] is None and doc["failure"] is None
    assert doc["target"] == f"rdp://alice@127.0.0.1:{host_port}"
    assert doc["profile"] == "mstsc-win11"
    stages = doc["stages"]
    assert isinstance(stages, list)
    assert [(s["stage"], s["outcome"]) for s in stages] == [(s, "ok") for s in STAGES]
    assert all(isinstance(s["seconds"], float) and isinstance(s["detail"], dict) for s in stages)
    assert doc["codes"]["mstsc-win11"]["result"] == "connected"  # type: ignore[index]
    assert doc["update_bytes"] >= 16384  # type: ignore[operator]


def test_probe_wrong_password_exits_13(host_port: int) -> None:
    code, doc = probe_json(f"rdp://alice@127.0.0.1:{host_port}", "wrong")
    assert code == EXIT_BY_STAGE["credssp"] == 13
    assert doc["ok"] is False and doc["failed_stage"] == "credssp"
    assert doc["failure"]["event"] == "logon_failure"  # type: ignore[index]
    assert doc["codes"]["mstsc-win11"]["disconnect"] == "0x807"  # type: ignore[index]


def test_probe_profile_option_changes_the_client(host_port: int) -> None:
    code, doc = probe_json(f"rdp://alice@127.0.0.1:{host_port}", PASSWORD, "--profile",
                           "rdc-no-nla")
    assert code == EXIT_BY_STAGE["negotiation"]
    assert doc["failure"]["event"] == "failure:HYBRID_REQUIRED_BY_SERVER"  # type: ignore[index]
    assert doc["codes"]["rdc-no-nla"]["disconnect"] == "0xB09"  # type: ignore[index]


def test_probe_nothing_listening_exits_10() -> None:
    with socket.socket() as sock:  # bound, not listening: connections to it are refused
        sock.bind(("127.0.0.1", 0))
        code, doc = probe_json(f"rdp://alice@127.0.0.1:{sock.getsockname()[1]}", PASSWORD)
    assert code == EXIT_BY_STAGE["tcp"] == 10
    assert doc["failed_stage"] == "tcp"
    assert doc["failure"]["event"] == "refused"  # type: ignore[index]
    assert doc["codes"]["mstsc-win11"]["disconnect"] == "0x204"  # type: ignore[index]


def test_probe_human_output(host_port: int) -> None:
    run = rdplab("probe", f"rdp://alice@127.0.0.1:{host_port}", "--password-env", PW_VAR,
                 "--cert-policy", "ignore", password=PASSWORD)
    assert run.returncode == 0, run.stderr
    assert "verdict: usable session" in run.stdout
    for stage in STAGES:
        assert stage in run.stdout


BAD_URLS = [
    ("http://127.0.0.1:3389", "expected an rdp:// URL, got scheme 'http'"),
    ("rdp://", "the URL has no host"),
    ("rdp://host:99999", "bad port in 'rdp://host:99999'"),
    ("rdp://host:port", "bad port in 'rdp://host:port'"),
]


def test_probe_bad_url_exits_2_with_a_clear_message() -> None:
    url, message = BAD_URLS[0]
    run = rdplab("probe", url, "--json")
    assert run.returncode == EXIT_USAGE == 2
    assert run.stdout == ""
    assert run.stderr == f"rdplab probe: {message}\n"


@pytest.mark.parametrize(("url", "message"), BAD_URLS)
def test_bad_urls_are_explained(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_target(url, "")


def test_url_forms() -> None:
    t = parse_target("rdp://LAB%5Calice@host.lab.test:3390", "pw")
    assert (t.host, t.port, t.domain, t.username, t.password) == (
        "host.lab.test", 3390, "LAB", "alice", "pw")
    t = parse_target("bob@10.0.0.5", "")
    assert (t.host, t.port, t.domain, t.username) == ("10.0.0.5", 3389, "", "bob")


def test_probe_unset_password_variable_exits_2() -> None:
    run = rdplab("probe", "rdp://alice@127.0.0.1:1", "--password-env", "RDPLAB_UNSET_VARIABLE")
    assert run.returncode == 2
    assert "RDPLAB_UNSET_VARIABLE is not set" in run.stderr


def test_probe_unknown_profile_exits_2() -> None:
    run = rdplab("probe", "rdp://127.0.0.1:1", "--profile", "mstsc-1995")
    assert run.returncode == 2
    assert "no client profile 'mstsc-1995'" in run.stderr and "mstsc-win11" in run.stderr
