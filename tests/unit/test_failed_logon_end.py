"""How a refused NLA logon ends, per CredSSP version (rdp-facts §10.1): a TSRequest errorCode
in versions 3, 4 and 6; a TLS close (alert) in versions 2 and 5, which have no errorCode."""

from __future__ import annotations

import ssl

import pytest

from harness.pki import KeyPair
from harness.rdp.client import ClientConfig, ClientConnection
from harness.rdp.credssp import STATUS_LOGON_FAILURE
from harness.rdp.server import ServerConnection
from tests.helpers import USER, policy_for
from tests.unit.test_state_machine_fuzz import pump


@pytest.mark.parametrize(("version", "error_code"), [(2, False), (3, True), (4, True),
                                                     (5, False), (6, True)])
def test_wrong_password_ends_as_windows_ends_it(version: int, error_code: bool,
                                                host_pair: KeyPair) -> None:
    client = ClientConnection(ClientConfig(username=USER, password="wrong", cert_policy="ignore",
                                           target_name="localhost", allow_encryption_oracle=2))
    server = ServerConnection(policy_for(host_pair, credssp_version=version,
                                         allow_encryption_oracle=2))
    x = pump(client, server, deliver_eof=False)
    failed = x.failures("c")
    if error_code:  # the client reads the status and stops there
        assert [(f.stage, f.event) for f in failed] == [("credssp", "logon_failure")]
        assert failed[0].detail["status"] == f"{STATUS_LOGON_FAILURE:#010x}"
    else:  # nothing to read: the client learns it from the close (TCP next)
        assert failed == []
    assert server.closed and not server.abort
    assert client._tls is not None
    if error_code:  # the TLS session is left open: the errorCode says it all
        with pytest.raises(ssl.SSLWantReadError):
            client._tls._obj.read(1)
    else:  # TLS closed by the server (close_notify) before TCP: a read returns end of data
        assert client._tls._obj.read(1) == b""
