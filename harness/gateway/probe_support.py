"""Glue for `rdplab probe --gateway https://[DOMAIN\\USER@]HOST[:PORT]`: a gateway connector.

The connector has the probe's Connector signature (host, port, timeout) and opens an RD Gateway
tunnel to that target; it also takes `record=` (harness.probe.runner passes the run's stage
recorder, so gateway_tcp/_tls/_http/_tunnel appear in the probe's trace). Gateway credentials
default to the target's (mstsc's "use my RD Gateway credentials for the remote computer").

The gateway certificate is checked unless the client's certificate policy is "ignore": with trust
anchors given (the lab's CA as `trust_pem`, or `cafile`) as the client itself would (its own
clock, the name it asked for: harness.rdp.certverify); otherwise by OpenSSL against the system
store. A gateway certificate problem is always fatal: unlike the host's certificate, mstsc offers
no "connect anyway" for it (vendor KB, see harness/data/gateway_codes.yaml).

The transport follows the client profile's `client.gateway_transport` (auto when absent).
"""

from __future__ import annotations

import datetime as dt
import functools
import socket
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from ..capture.session import capture_connect
from .client import CertCheck, Connect, GatewayTunnel, Record, Transport, open_tunnel

TRANSPORTS = ("http", "websocket", "auto")


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


def profile_transport(profile: Any) -> Transport:
    """The RD Gateway transport a client profile uses (`client.gateway_transport`)."""
    name = getattr(profile, "name", None)
    return _transport_of(str(name)) if name else "auto"


@functools.cache
def _transport_of(name: str) -> Transport:
    from harness.probe.profiles import ProfileError, _raw

    try:
        _, data = _raw(name)
    except ProfileError:
        return "auto"
    value = str((data.get("client") or {}).get("gateway_transport", "auto"))
    return value if value in TRANSPORTS else "auto"  # type: ignore[return-value]


def certificate_check(trust_pem: bytes, target_name: str, clock_offset: float = 0.0
                      ) -> CertCheck:
    """Check a gateway certificate as the client does: its trust anchors, its clock, the name."""
    from harness.rdp.certverify import load_trust_anchors, verify_certificate

    anchors = load_trust_anchors(trust_pem)

    def check(der: bytes) -> tuple[int, str] | None:
        now = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=clock_offset)
        report = verify_certificate(der, trust_anchors=anchors, target_name=target_name, now=now)
        if report.ok:
            return None
        return report.problems[0].code, report.problems[0].message

    return check


class GatewayConnector:
    """A Connector for harness.probe.runner: `connect(host, port, timeout) -> GatewayTunnel`."""

    records_stages = True  # the runner passes record= (its stage trace)

    def __init__(self, gateway_host: str, gateway_port: int, *, username: str, password: str,
                 domain: str, transport: Transport, verify: bool, cafile: str | None,
                 cert_check: CertCheck | None, connect: Connect | None,
                 record: Record | None, adaptive_floor: float | None = None) -> None:
        self.gateway_host, self.gateway_port = gateway_host, gateway_port
        self.username, self.password, self.domain = username, password, domain
        self.transport, self.verify, self.cafile = transport, verify, cafile
        self.cert_check, self.connect, self.record = cert_check, connect, record
        self.adaptive_floor = adaptive_floor

    def __call__(self, host: str, port: int, timeout: float,
                 record: Record | None = None) -> GatewayTunnel:
        return open_tunnel(
            self.gateway_host, self.gateway_port, host, port, username=self.username,
            password=self.password, domain=self.domain, transport=self.transport,
            cafile=self.cafile, verify=self.verify, server_hostname=self.gateway_host,
            timeout=timeout, record=record or self.record, connect=self.connect,
            cert_check=self.cert_check, adaptive_floor=self.adaptive_floor,
        )


def gateway_connector(
    url: str,
    target: Any,
    options: Any,
    *,
    record: Record | None = None,
    transport: Transport | None = None,
    connect: Connect | None = None,
    resolve: Any = None,
) -> GatewayConnector:
    """A Connector for harness.probe.runner: `connect(host, port, timeout) -> GatewayTunnel`.

    `target` is a ProbeTarget (username, password, domain), `options` a ProbeOptions (cafile,
    trust_pem, clock_offset, cert_policy, profile). `record` receives the gateway_* stages (the
    runner's own recorder wins). `connect(address, port, timeout)` and `resolve(name)` are the
    client's stack and resolver for reaching the gateway (default: this machine's).
    """
    gw_host, gw_port, user, domain = parse_gateway_url(url)
    profile = getattr(options, "profile", None)
    policy = getattr(options, "cert_policy", None) or getattr(profile, "cert_policy", "")
    cafile = getattr(options, "cafile", None)
    trust = bytes(getattr(options, "trust_pem", b"") or b"")
    if cafile:
        trust += b"\n" + Path(cafile).read_bytes()
    check = None
    if policy != "ignore" and trust.strip():
        check = certificate_check(trust, gw_host,
                                  float(getattr(options, "clock_offset", 0.0) or 0.0))
    gw_connect = capture_connect(connect) if connect is not None else None
    if resolve is not None:
        base = connect or (lambda a, p, t: socket.create_connection((a, p), timeout=t))

        def gw_connect(name: str, port: int, timeout: float) -> socket.socket:
            return capture_connect(base)(resolve(name), port, timeout)

    return GatewayConnector(
        gw_host, gw_port, username=user or target.username, password=target.password,
        domain=domain if domain is not None else target.domain,
        transport=transport or profile_transport(profile), verify=policy != "ignore",
        cafile=str(cafile) if cafile and check is None else None, cert_check=check,
        connect=gw_connect, record=record,
        adaptive_floor=getattr(options, "adaptive_floor", None),
    )
