"""The Vagrant backend's tests that need real sockets on loopback (the rest are unit tests in
tests/unit/test_vagrant_backend.py), with the same fakes for what cannot run here.

The fakes, and why they stand in for Windows VMs, are in tests/vagrant_fakes.py; each test that
uses them says "mock: no Windows VM can run here" in its docstring.
"""

from __future__ import annotations

import collections
import socket
from pathlib import Path
from typing import Any

import pytest

vagrant = pytest.importorskip("vagrant")
winrm = pytest.importorskip("winrm")
winrm_protocol = pytest.importorskip("winrm.protocol")
pytest.importorskip("testinfra")

from cryptography.hazmat.primitives import serialization  # noqa: E402

from harness.lab.winrm_runner import (  # noqa: E402
    WinRMTarget,
)
from harness.probe.profiles import load_profile  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
REMEDIATIONS = REPO / "scenarios" / "remediations"
Status = collections.namedtuple("Status", ["name", "state", "provider"])
Box = collections.namedtuple("Box", ["name", "provider", "version"])


from tests.vagrant_fakes import (  # noqa: E402
    _CERT,
    _KEY,
    HOST,
    World,
    make_lab,
)


def test_incomplete_connections_are_held_open_by_the_runner(tmp_path: Path, world: World,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    """mock: no Windows VM can run here; a local listening socket stands in for the host VM."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    port = server.getsockname()[1]
    lab = make_lab(tmp_path)
    lab.start()
    lab.targets["host"] = WinRMTarget("host", "host", "127.0.0.1", "vagrant", "vagrant")
    monkeypatch.setattr(lab.host, "listening_port", lambda: port)
    entry = lab.inject("host", "set_incomplete_connections", {"count": 3})
    assert entry["held"]["opened"] == 3 and entry["held"]["error"] is None
    accepted = [server.accept()[0] for _ in range(3)]
    lab.close()
    for conn in accepted:
        conn.settimeout(2)
        assert conn.recv(1) == b""  # released when the cell closed
        conn.close()
    server.close()


def test_probe_connects_to_the_host_vm(tmp_path: Path, world: World,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """mock: no Windows VM can run here; socket.create_connection is replaced."""
    lab = make_lab(tmp_path)
    lab.options.addresses["host"] = "192.0.2.50"
    lab.targets["host"] = WinRMTarget("host", "host", "192.0.2.50", "vagrant", "vagrant")
    seen: list[tuple[Any, float]] = []

    def fake_connect(address: tuple[str, int], timeout: float) -> socket.socket:
        seen.append((address, timeout))
        return socket.socket()

    monkeypatch.setattr(socket, "create_connection", fake_connect)
    lab.connect("10.213.2.2", 3389, 3.0).close()
    assert seen == [(("192.0.2.50", 3389), 3.0)]


def test_a_real_probe_trusts_the_pinned_certificate(tmp_path: Path, world: World,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """mock: no Windows VM can run here; the host VM is an emulated RDP host serving the
    self-signed certificate the fake VM reported (as a Windows host serves its own), and
    python-vagrant and pywinrm are fakes. The probe itself is the real one."""
    from dataclasses import replace

    from harness.host.policy import TlsCredential
    from harness.host.server import EmulatedHost, listen

    lab = make_lab(tmp_path)
    lab.start()
    credential = TlsCredential(_CERT.public_bytes(serialization.Encoding.PEM),
                               _KEY.private_bytes(serialization.Encoding.PEM,
                                                  serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    model = lab.host
    server = EmulatedHost(lambda: replace(model.host_policy(), load_credential=lambda: credential),
                          idle_timeout=5).start(listen("127.0.0.1", 0))
    real_connect = socket.create_connection
    seen: list[tuple[str, int]] = []

    def to_stand_in(address: tuple[str, int], timeout: float | None = None) -> socket.socket:
        seen.append(address)
        return real_connect(server.address, timeout)

    monkeypatch.setattr(socket, "create_connection", to_stand_in)
    try:
        profile = load_profile("mstsc-win11")
        pinned = lab.probe(profile, usable_window=1.0, overall_timeout=20)
        assert seen[-1] == (HOST, 3389)
        assert pinned.symptom is None, pinned.as_dict()
        lab.pinned_pem = b""
        unpinned = lab.probe(profile, usable_window=1.0, overall_timeout=20)
        assert unpinned.symptom is not None and unpinned.symptom.startswith("tls/")
    finally:
        server.stop()
        lab.close()
