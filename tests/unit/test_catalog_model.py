"""The Windows model behind the catalog's new causes and fixes: sessions, Winsock, outbound
filters by program, DNS registration, enrolment from the lab CA, the user's client program."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from harness.pwsh import ScriptError, run_source
from harness.windows import WindowsNode
from harness.windows.faults import inject


@pytest.fixture
def host(tmp_path: Path) -> WindowsNode:
    return WindowsNode("rdhost", "host", tmp_path, addresses=["10.0.0.2"], users={"alice": "pw"})


@pytest.fixture
def client(tmp_path: Path) -> WindowsNode:
    return WindowsNode("ws01", "client", tmp_path, addresses=["10.0.0.1"])


def test_a_hung_session_stops_the_drawing_until_logoff(host: WindowsNode) -> None:
    assert host.host_policy().update_burst_bytes > 0
    inject(host, "add_hung_session")
    assert host.host_policy().update_burst_bytes == 0
    listing = run_source("query session", host, "q.ps1").output
    assert any("alice" in line and " 2  Disc" in line for line in listing)
    result = run_source("logoff 7", host, "l.ps1")
    assert result.last_exit_code == 1 and host.sessions.sessions  # no such session: nothing ends
    run_source("Restart-Service TermService -Force", host, "r.ps1")
    assert host.host_policy().update_burst_bytes == 0  # a service restart does not end it
    run_source("rwinsta 2", host, "w.ps1")
    assert host.host_policy().update_burst_bytes > 0 and not host.sessions.sessions


def test_winsock_reset_needs_the_restart(client: WindowsNode) -> None:
    inject(client, "corrupt_winsock")
    error = client.client_socket_error("10.0.0.2", 3389)
    assert error is not None and error.errno == errno.EINVAL
    out = run_source("netsh winsock reset", client, "n.ps1").output
    assert any("restart the computer" in line for line in out)
    assert client.client_socket_error("10.0.0.2", 3389) is not None  # not before the restart
    run_source("Restart-Computer -Force", client, "b.ps1")
    assert client.client_socket_error("10.0.0.2", 3389) is None


def test_outbound_lockdown_and_the_mstsc_exception(client: WindowsNode) -> None:
    inject(client, "set_firewall_outbound_default", {"action": "Block"})
    error = client.client_socket_error("10.0.0.3", 443)
    assert isinstance(error, PermissionError) and error.errno == errno.EACCES
    run_source('New-NetFirewallRule -DisplayName "TCP 3389 out" -Direction Outbound -Protocol '
               'TCP -RemotePort 3389 -Action Allow', client, "p.ps1")
    assert client.client_socket_error("10.0.0.3", 3389) is None
    assert client.client_socket_error("10.0.0.3", 443) is not None  # the gateway's port is not
    run_source('New-NetFirewallRule -DisplayName mstsc -Direction Outbound -Program '
               '"%SystemRoot%\\System32\\mstsc.exe" -Action Allow', client, "m.ps1")
    assert client.client_socket_error("10.0.0.3", 443) is None
    assert client.outbound_verdict("10.0.0.3", 443) == "block"  # other programs stay blocked


def test_registerdns_corrects_the_shared_record(host: WindowsNode, client: WindowsNode) -> None:
    host.network.dns_records = client.network.dns_records  # one DNS server, as the lab has
    client.network.set_dns_record(host.fqdn, "10.0.0.99")
    run_source("ipconfig /flushdns", client, "f.ps1")
    assert client.network.resolve(host.fqdn) == "10.0.0.99"
    run_source("ipconfig /registerdns", host, "r.ps1")
    assert client.network.resolve(host.fqdn) == "10.0.0.99"  # the client's cache still has it
    run_source("ipconfig /flushdns", client, "f.ps1")
    assert client.network.resolve(host.fqdn) == "10.0.0.2"


def test_get_certificate_enrols_from_the_lab_ca(host: WindowsNode) -> None:
    run_source('$e = Get-Certificate -Template WebServer -DnsName rdhost.lab.test '
               '-CertStoreLocation Cert:\\LocalMachine\\My\nWrite-Output $e.Certificate.Thumbprint',
               host, "g.ps1")
    issued = host.certstore.store("My")[-1]
    assert issued.cert.issuer == host.ca.cert.subject
    with pytest.raises(ScriptError, match="CERTSRV_E_UNSUPPORTED_CERT_TYPE"):
        run_source("Get-Certificate -Template NoSuchTemplate -CertStoreLocation "
                   "Cert:\\LocalMachine\\My", host, "t.ps1")


def test_mstsc_brings_back_the_current_client(client: WindowsNode) -> None:
    client.client_program = "rdc-no-nla"
    run_source("mstsc /v:rdhost.lab.test", client, "c.ps1")
    assert client.client_program is None
