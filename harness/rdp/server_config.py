"""How the server role behaves, as one immutable value read when a connection is accepted.

The protocol core's counterpart of `ClientConfig`: the emulated host (harness/host) builds one
from the Windows model or a config file and calls its source at every connection, so a change
to the model changes the next connection, as on Windows. Nothing here knows where it came from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

# SecurityLayer values under HKLM\...\Terminal Server\WinStations\RDP-Tcp
SECURITY_LAYER_RDP = 0
SECURITY_LAYER_NEGOTIATE = 1
SECURITY_LAYER_TLS = 2

# RDP_NEG_RSP flags by Windows release (rdp-facts §10)
NEG_RSP_FLAGS_2016 = 0x1F  # 2016 (1607) and later, up to 2022
NEG_RSP_FLAGS_2012 = 0x0F  # 2012 / 2012 R2: no Remote Credential Guard bit [open]
NEG_RSP_FLAGS_2008 = 0x01  # 2008 R2 and Windows 7: extended client data only


def neg_rsp_flags_for_build(build: int) -> int:
    """The RDP_NEG_RSP flags a Windows build sends (rdp-facts §10)."""
    if build >= 14393:
        return NEG_RSP_FLAGS_2016
    if build >= 9200:
        return NEG_RSP_FLAGS_2012
    return NEG_RSP_FLAGS_2008


class CredentialUnavailable(Exception):
    """The TLS certificate or its private key cannot be used (Schannel would log 36870)."""

    def __init__(self, reason: str, event_id: int = 36870, status: str = "0x8009030D") -> None:
        super().__init__(reason)
        self.reason = reason
        self.event_id = event_id
        self.status = status


@dataclass(frozen=True)
class TlsCredential:
    """PEM bytes of the served certificate and its private key."""

    cert_pem: bytes
    key_pem: bytes


@dataclass(frozen=True)
class ServerConfig:
    """Everything the server role decides by, for one connection."""

    security_layer: int = SECURITY_LAYER_NEGOTIATE
    user_authentication: bool = True  # NLA required
    # MinEncryptionLevel under RDP-Tcp: 1 low, 2 client compatible, 3 high, 4 FIPS (Standard
    # RDP Security only; under TLS the Server Security Data says method 0, level 0)
    min_encryption_level: int = 2
    tls_min: str = "TLSv1.2"  # names as in ssl.TLSVersion
    tls_max: str = "TLSv1.3"
    # Called at each connection; raises CredentialUnavailable when the key store is broken.
    load_credential: Callable[[], TlsCredential] | None = None
    credssp_version: int = 6
    allow_encryption_oracle: int = 1  # 0 force updated clients, 1 mitigated, 2 vulnerable
    users: dict[str, str] = field(default_factory=dict)  # user name (case-insensitive) -> password
    domain: str = "LAB"
    computer_name: str = "RDHOST"
    dns_domain: str = "lab.test"
    clock_offset: float = 0.0  # seconds the host's clock is ahead of real time
    deny_error_info: int | None = None  # Set Error Info code sent after MCS connect, then close
    update_burst_bytes: int = 96 * 1024  # bitmap data sent after activation and per Refresh Rect
    desktop_width: int = 1024
    desktop_height: int = 768
    os_build: str = "Windows Server 2022 (20348)"
    # RDP_NEG_RSP flags: 0x1F (extended client data, GFX, reserved, Restricted Admin, Remote
    # Credential Guard) as Windows Server 2016 and later send; rdp-facts §10.1.
    neg_rsp_flags: int = NEG_RSP_FLAGS_2016
    # Incomplete (not yet activated) connections TermService holds at once; the one over it is
    # refused with event 1006 (registry MaxOutstandingConnections, read at service start). The
    # socket driver (host/server.py) enforces it; the core never looks at it.
    max_outstanding_connections: int = 3000
    # A domain member's TERMSRV/<fqdn> keys (keytab from the lab's KDC): Kerberos in SPNEGO.
    kerberos_keytab: str | None = None

    @property
    def dns_computer(self) -> str:
        """The host's DNS name (what NTLM's target info and TermService's certificate carry)."""
        return f"{self.computer_name.lower()}.{self.dns_domain}"
