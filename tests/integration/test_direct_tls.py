"""TLS straight away on a real socket, as service scanners and direct-approach clients do
(rdp-facts §10): the emulated host completes the handshake with its certificate."""

from __future__ import annotations

import socket
import ssl

from cryptography import x509

from harness.pki import KeyPair
from tests.helpers import policy_for, running_host


def test_tls_client_hello_first_gets_the_host_certificate(host_pair: KeyPair) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with running_host(policy_for(host_pair)) as (host, _):
        with socket.create_connection(host.address, timeout=5) as raw, \
                ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            der = tls.getpeercert(binary_form=True)
            assert der is not None
        served = x509.load_der_x509_certificate(der)
        assert served == x509.load_pem_x509_certificate(host_pair.cert_pem)
        assert host.stats.failed == 0
