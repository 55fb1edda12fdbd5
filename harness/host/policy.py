"""What the emulated host does, as one immutable value read at each new connection.

The Windows model derives a HostPolicy from its registry, certificate store, key store, services
and clock; the `rdplab host` command builds one from a config file. The host never caches it: the
policy source is called for every accepted connection, so changing the model (or the files a
policy points at) changes the next connection, as on Windows.

The value itself is the protocol core's `ServerConfig` (harness/rdp/server_config.py): the core
knows nothing of the host layer, the host layer names it HostPolicy.
"""

from __future__ import annotations

from collections.abc import Callable

from harness.rdp.server_config import (
    SECURITY_LAYER_NEGOTIATE,
    SECURITY_LAYER_RDP,
    SECURITY_LAYER_TLS,
    CredentialUnavailable,
    ServerConfig,
    TlsCredential,
)

HostPolicy = ServerConfig

PolicySource = Callable[[], HostPolicy]

__all__ = [
    "SECURITY_LAYER_NEGOTIATE",
    "SECURITY_LAYER_RDP",
    "SECURITY_LAYER_TLS",
    "CredentialUnavailable",
    "HostPolicy",
    "PolicySource",
    "TlsCredential",
]
