"""What a client machine contributes to a connection: the ClientSettings value."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ClientSettings:
    """The client node's state as the lab's RDP client uses it, read once per attempt.

    tls_min/tls_max are None when Schannel on the client has no usable TLS version.
    credssp_version is the TSRequest version the client sends (below 5: unpatched).
    connection_target is what mstsc's Computer box holds (MRU0), None for the host's name.
    gateway is the RD Gateway ("host" or "host:port") mstsc goes through, None for direct.
    """

    name: str
    os_build: str
    credssp_version: int
    allow_encryption_oracle: int
    tls_versions: tuple[str, ...]
    tls_min: str | None
    tls_max: str | None
    clock_offset: float
    mtu: int
    nla_capable: bool
    connection_target: str | None
    trusted_ca_pem: bytes
    hosts: dict[str, str] = field(default_factory=dict)
    dns_cache: dict[str, str] = field(default_factory=dict)
    dns_records: dict[str, str] = field(default_factory=dict)
    gateway: str | None = None

    def resolve_or_raise(self, name: str) -> str:
        """`resolve` as a socket-style resolver: no answer is socket.gaierror (EAI_NONAME), what
        the probe and the gateway connector expect of a resolver."""
        address = self.resolve(name)
        if address is None:
            raise socket.gaierror(socket.EAI_NONAME, f"{name}: no such host")
        return address

    def resolve(self, name: str) -> str | None:
        """The address the client's resolver returns: hosts file, cache, then DNS server."""
        try:
            return str(ipaddress.ip_address(name))
        except ValueError:
            pass
        key = name.lower().rstrip(".")
        for table in (self.hosts, self.dns_cache, self.dns_records):
            if key in table:
                return table[key]
        return None

    def clock(self) -> dt.datetime:
        """The client's local time (for certificate validity and Kerberos skew)."""
        return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.clock_offset)
