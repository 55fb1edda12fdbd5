"""Glue for `rdplab probe --gateway https://[DOMAIN\\USER@]HOST[:PORT]`: a gateway connector.

The connector has the probe's Connector signature (host, port, timeout) and opens an RD Gateway
tunnel to that target. Gateway credentials default to the target's (mstsc's "use my RD Gateway
credentials for the remote computer"); the gateway certificate is verified unless the client's
certificate policy is "ignore".
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from .client import GatewayTunnel, Record, Transport, open_tunnel


def parse_gateway_url(url: str) -> tuple[str, int, str | None, str | None]:
    """(host, port, user, domain) from https://[DOMAIN\\user@]host[:port]; ValueError if bad."""
    parts = urlsplit(url if "//" in url else f"https://{url}")
    if parts.scheme != "https":
        raise ValueError(f"{url}: an RD Gateway URL starts with https://")
    if not parts.hostname:
        raise ValueError(f"{url}: no gateway host")
    try:
        port = parts.port or 443
    except ValueError:
        raise ValueError(f"{url}: bad port") from None
    user = unquote(parts.username) if parts.username else None
    domain = None
    if user and "\\" in user:
        domain, user = user.split("\\", 1)
    elif user and "@" in user:
        user, domain = user.split("@", 1)
    return parts.hostname, port, user, domain


def gateway_connector(
    url: str,
    target: Any,
    options: Any,
    *,
    record: Record | None = None,
    transport: Transport = "auto",
) -> Any:
    """A Connector for harness.probe.runner: `connect(host, port, timeout) -> GatewayTunnel`.

    `target` is a ProbeTarget (username, password, domain), `options` a ProbeOptions (cafile,
    cert_policy, profile). `record` receives the gateway_* stages.
    """
    gw_host, gw_port, user, domain = parse_gateway_url(url)
    policy = getattr(options, "cert_policy", None) or getattr(options.profile, "cert_policy", "")
    cafile = getattr(options, "cafile", None)

    def connect(host: str, port: int, timeout: float) -> GatewayTunnel:
        return open_tunnel(
            gw_host, gw_port, host, port,
            username=user or target.username, password=target.password,
            domain=domain if domain is not None else target.domain,
            transport=transport, cafile=str(cafile) if cafile else None,
            verify=policy != "ignore", server_hostname=gw_host, timeout=timeout, record=record,
        )

    return connect
