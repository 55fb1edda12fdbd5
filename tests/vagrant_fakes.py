"""Fakes of python-vagrant, pywinrm and testinfra's WinRM for the Vagrant backend's tests
(tests/unit/test_vagrant_backend.py, tests/integration/test_vagrant_sockets.py).

No Windows VM, hypervisor or `vagrant` binary exists on the machines this suite runs on, so the
tests that drive a lab replace python-vagrant's `Vagrant` class and pywinrm's `Session` (and
`winrm.protocol.Protocol`, which testinfra's winrm backend uses) by fakes that record every
command and answer like a Windows VM would; each such test says "mock: no Windows VM can run
here" in its docstring. The tests without that line run the real code paths: the refusal on
this machine, the fault table, a real subprocess killed at its deadline.
"""

from __future__ import annotations

import base64
import collections
import datetime as dt
import hashlib
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

vagrant = pytest.importorskip("vagrant")
winrm = pytest.importorskip("winrm")
winrm_protocol = pytest.importorskip("winrm.protocol")
pytest.importorskip("testinfra")

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

from harness.lab.definition import load_lab  # noqa: E402
from harness.lab.factory import build_nodes  # noqa: E402
from harness.lab.vagrant import (  # noqa: E402
    DEFAULT_BOXES,
    VagrantLab,
    VagrantOptions,
)

REPO = Path(__file__).resolve().parents[2]
REMEDIATIONS = REPO / "scenarios" / "remediations"
Status = collections.namedtuple("Status", ["name", "state", "provider"])
Box = collections.namedtuple("Box", ["name", "provider", "version"])


# -- the fakes ------------------------------------------------------------------------------------

def _self_signed(name: str = "rdhost.lab.test") -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    """What TermService makes: a self-signed certificate for the host's FQDN."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=180)).sign(key, hashes.SHA256()))
    return cert, key


_CERT, _KEY = _self_signed()
_CERT_DER = _CERT.public_bytes(serialization.Encoding.DER)
_ENCODED = re.compile(r"-EncodedCommand\s+(\S+)", re.I)


class World:
    """What the fake Vagrant and the fake VMs share: VM states, snapshots, boxes, files, boot
    times, and the ordered log of everything that was asked of them."""

    def __init__(self) -> None:
        self.vagrant_calls: list[tuple[str, tuple[Any, ...]]] = []
        self.vagrant_env: dict[str, str] = {}
        self.machines = {"client": "not_created", "host": "not_created"}
        self.snapshots: set[str] = set()
        self.boxes = [Box(DEFAULT_BOXES["windows-11"], "virtualbox", "2601.0.0"),
                      Box(DEFAULT_BOXES["windows-server-2022"], "virtualbox", "2601.0.0")]
        self.vagrant_delay: dict[str, float] = {}
        self.vagrant_fail: set[str] = set()
        self.sessions: list[tuple[str, tuple[str, str], dict[str, Any]]] = []
        self.commands: list[dict[str, Any]] = []  # every WinRM command, decoded
        self.cleanups: list[str] = []
        self.files: dict[tuple[str, str], bytes] = {}
        self.boot: dict[str, int] = collections.defaultdict(int)
        self.hang_markers: set[str] = set()
        self.fail_markers: dict[str, tuple[bytes, bytes, int]] = {}
        self.refuse: set[str] = set()
        self.file_result: tuple[bytes, bytes, int] = (b"done\r\n", b"", 0)
        self.check_answers: dict[str, str] = {}
        self.protocols: list[Any] = []
        self.cert_der = _CERT_DER  # what the VMs' certificate stores hold
        # Win32_ComputerSystem's "PartOfDomain|Domain" per VM address (a domain lab's members)
        self.membership: dict[str, str] = {}

    # what a VM answers ---------------------------------------------------------------------------

    def answer(self, address: str, line: str) -> tuple[bytes, bytes, int] | None:
        """None: the command hangs (never reports done)."""
        found = _ENCODED.search(line)
        script = base64.b64decode(found.group(1)).decode("utf-16-le") if found else ""
        entry = {"address": address, "line": line, "script": script}
        self.commands.append(entry)
        if any(marker in (script or line) for marker in self.hang_markers):
            return None
        for marker, result in self.fail_markers.items():
            if marker in (script or line):
                return result
        if " -File " in line:
            path = re.search(r'-File\s+"([^"]+)"', line).group(1)
            entry["file"] = path
            entry["params"] = dict(re.findall(r'-(\w+)\s+"([^"]*)"', line.split(path, 1)[1]))
            entry["content"] = self.files.get((address, path))
            if entry["content"] and b"Restart-Computer" in entry["content"]:
                self.boot[address] += 1
            return self.file_result
        if "[IO.File]::Open($p" in script:
            path = re.search(r"\$p = '([^']*)'", script).group(1)
            chunk = base64.b64decode(re.search(r"FromBase64String\('([^']*)'\)", script)
                                     .group(1))
            key = (address, path)
            self.files[key] = (b"" if "FileMode]::Create" in script else self.files[key]) + chunk
            return b"", b"", 0
        if "SHA256]::Create()" in script:
            path = re.search(r"\$p = '([^']*)'", script).group(1)
            return hashlib.sha256(self.files[(address, path)]).hexdigest().encode() + b"\r\n", \
                b"", 0
        if "LastBootUpTime" in script:
            return f"2026-11-21T10:00:{self.boot[address]:02d}.0000000Z\r\n".encode(), b"", 0
        if "Restart-Computer" in script:
            self.boot[address] += 1
            return b"", b"", 0
        if "Win32_ComputerSystem" in script:
            return self.membership.get(address, "True|lab.test").encode() + b"\r\n", b"", 0
        if "$cert.RawData" in script:
            return base64.b64encode(self.cert_der) + b"\r\n", b"", 0
        if "Set-Date -Date" in script:
            return b"2026-11-20T09:00:00.0000000Z\r\n", b"", 0
        for marker, value in self.check_answers.items():
            if marker in script:
                return value.encode() + b"\r\n", b"", 0
        if "Get-Service" in script:
            return b"Running\r\n", b"", 0
        if script.strip().startswith("[bool]") or "Test-Path -LiteralPath" in script:
            return b"True\r\n", b"", 0
        return b"", b"", 0

    def scripts_to(self, address: str) -> list[str]:
        return [c["script"] for c in self.commands if c["address"] == address]


def fake_protocol_class(world: World) -> type:
    class FakeProtocol:
        """Stands in for winrm.protocol.Protocol (pywinrm's Session and testinfra use it)."""

        def __init__(self, endpoint: str, **kwargs: Any) -> None:
            self.endpoint = endpoint
            self.kwargs = kwargs
            self.address = re.match(r"https?://([^:/]+)", endpoint).group(1)
            self.pending: dict[str, tuple[bytes, bytes, int] | None] = {}
            world.protocols.append(self)

        def open_shell(self, *args: Any, **kwargs: Any) -> str:
            if self.address in world.refuse:
                raise ConnectionRefusedError(f"{self.endpoint}: connection refused")
            return f"shell-{len(world.commands)}"

        def run_command(self, shell_id: str, command: str, args: Any = ()) -> str:
            line = " ".join([command, *[a.decode() if isinstance(a, bytes) else a
                                        for a in args]])
            command_id = f"cmd-{len(world.commands)}"
            self.pending[command_id] = world.answer(self.address, line)
            return command_id

        def get_command_output_raw(self, shell_id: str, command_id: str
                                   ) -> tuple[bytes, bytes, int, bool]:
            result = self.pending[command_id]
            if result is None:
                time.sleep(0.02)
                return b"", b"", -1, False
            return result[0], result[1], result[2], True

        def get_command_output(self, shell_id: str, command_id: str) -> tuple[bytes, bytes, int]:
            out, err, code, _ = self.get_command_output_raw(shell_id, command_id)
            return out, err, code

        def cleanup_command(self, shell_id: str, command_id: str) -> None:
            world.cleanups.append(command_id)

        def close_shell(self, shell_id: str, close_session: bool = True) -> None:
            pass

    return FakeProtocol


def fake_session_class(world: World, protocol: type) -> type:
    class FakeSession:
        """Stands in for winrm.Session."""

        def __init__(self, target: str, auth: tuple[str, str], **kwargs: Any) -> None:
            world.sessions.append((target, auth, kwargs))
            self.protocol = protocol(target, username=auth[0], password=auth[1], **kwargs)

    return FakeSession


def fake_vagrant_class(world: World) -> type:
    class FakeVagrant:
        """Stands in for python-vagrant's vagrant.Vagrant."""

        def __init__(self, root: str | None = None, env: dict[str, str] | None = None,
                     **kwargs: Any) -> None:
            self.root = root
            world.vagrant_env = dict(env or {})

        def _call(self, name: str, *args: Any) -> None:
            world.vagrant_calls.append((name, args))
            if world.vagrant_delay.get(name):
                time.sleep(world.vagrant_delay[name])
            if name in world.vagrant_fail:
                raise subprocess.CalledProcessError(1, ["vagrant", name])

        def box_list(self) -> list[Box]:
            self._call("box_list")
            return list(world.boxes)

        def status(self, vm_name: str | None = None) -> list[Status]:
            self._call("status")
            return [Status(n, s, "virtualbox") for n, s in world.machines.items()]

        def snapshot_list(self) -> list[str]:
            self._call("snapshot_list")
            lines: list[str] = []
            for name in world.machines:
                lines += [f"==> {name}: ", *sorted(world.snapshots)]
            return lines

        def up(self, vm_name: str | None = None, provider: str | None = None,
               **kwargs: Any) -> None:
            self._call("up", provider)
            for name in world.machines:
                world.machines[name] = "running"

        def snapshot_save(self, name: str) -> None:
            self._call("snapshot_save", name)
            world.snapshots.add(name)

        def snapshot_restore(self, name: str) -> None:
            self._call("snapshot_restore", name)
            assert name in world.snapshots, "restoring a snapshot that was never taken"
            for machine in world.machines:
                world.machines[machine] = "running"

        def snapshot_delete(self, name: str) -> None:
            self._call("snapshot_delete", name)
            world.snapshots.discard(name)

        def halt(self, vm_name: str | None = None, force: bool = False) -> None:
            self._call("halt")
            for machine in world.machines:
                world.machines[machine] = "poweroff"

    return FakeVagrant


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> World:
    w = World()
    protocol = fake_protocol_class(w)
    monkeypatch.setattr(vagrant, "Vagrant", fake_vagrant_class(w))
    monkeypatch.setattr(vagrant, "get_vagrant_executable", lambda: "/usr/bin/vagrant")
    monkeypatch.setattr(winrm, "Session", fake_session_class(w, protocol))
    monkeypatch.setattr(winrm_protocol, "Protocol", protocol)
    return w


def make_options(root: Path, **overrides: Any) -> VagrantOptions:
    root.mkdir(parents=True, exist_ok=True)
    (root / "Vagrantfile").write_text("# the fake Vagrant does not read this\n")
    options = VagrantOptions.from_env({})
    options.root = root
    for name in ("up", "snapshot", "halt", "query", "winrm", "fault", "remediation", "reboot",
                 "check", "mstsc", "lock"):
        setattr(options, f"{name}_timeout", 10.0)
    for key, value in overrides.items():
        setattr(options, key, value)
    return options


# The tests' own lab files (labs/*.yaml change as the project grows).
PAIR_LAB = """\
name: vagrant-pair
description: Windows 11 client -> Windows Server 2022 RDP host (Vagrant backend tests)
seed: 7
domain: LAB
dns_domain: lab.test
nodes:
  client: {name: WS01, os: windows-11}
  host: {name: RDHOST, os: windows-server-2022}
users:
  - {name: alice}
"""
GATEWAY_LAB = PAIR_LAB.replace("name: vagrant-pair", "name: vagrant-gateway").replace(
    "  host: {name: RDHOST", "  gateway: {name: RDGW, os: windows-server-2022}\n"
    "  host: {name: RDHOST")


def make_lab(tmp_path: Path, name: str = "cell", lab: str = PAIR_LAB,
             **overrides: Any) -> VagrantLab:
    path = tmp_path / (re.search(r"name: (\S+)", lab).group(1) + ".yaml")
    path.write_text(lab)
    spec = load_lab(path)
    workdir = tmp_path / name
    nodes = build_nodes(spec, workdir)
    return VagrantLab(spec, workdir, nodes, options=make_options(tmp_path / "root", **overrides),
                      sleep=lambda seconds: None)


def vagrant_commands(world: World) -> list[str]:
    return [name for name, _ in world.vagrant_calls]


HOST = "10.213.2.2"
CLIENT = "10.213.1.2"
GATEWAY = "10.213.3.2"
DC = "10.213.4.2"
