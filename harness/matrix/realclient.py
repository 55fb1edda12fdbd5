"""Keeping the lab honest: the real xfreerdp next to the freerdp2 profile's prediction.

With --with-xfreerdp, the reproduce and verify stages also run `xfreerdp /auth-only` (bounded,
under a private Xvfb) against the same lab, and record its exit code beside the code the
freerdp2 profile predicts from the probe's own run. Every disagreement is listed after the run.
"""

from __future__ import annotations

import atexit
import threading
import time
from typing import TYPE_CHECKING, Any

from ..errors import NotEmulated
from ..freerdp import can_use_private_hosts, run_xfreerdp, xfreerdp_path
from ..probe.profiles import bounded, load_profile
from ..xdisplay import Xvfb

if TYPE_CHECKING:
    from ..lab.contract import LabBackend

_display: Xvfb | None = None
_lock = threading.Lock()


def _shared_display() -> str:
    global _display
    with _lock:
        if _display is None:
            _display = Xvfb().__enter__()
            atexit.register(_display.__exit__)
        assert _display.display
        return _display.display


def predicted_exit(codes: dict[str, Any]) -> int | None:
    if codes.get("result") == "connected":
        return 0
    value = codes.get("exit")
    return int(value) if isinstance(value, int) or str(value).isdigit() else None


def compare_with_xfreerdp(lab: LabBackend, step: str, fault: str, remediation: str
                          ) -> dict[str, Any]:
    """Run the freerdp2 profile's probe and real xfreerdp now; say whether they agree."""
    label = {"step": step, "fault": fault, "remediation": remediation}
    if xfreerdp_path() is None:
        return {**label, "skipped": "xfreerdp is not installed (freerdp2-x11)"}
    try:
        endpoint = lab.client_endpoint()
    except NotEmulated as exc:
        return {**label, "skipped": exc.reason}
    user, password = lab.spec.user
    gateway = endpoint.gateway
    # xfreerdp must use the names the client uses, so that its certificate checks are real:
    # on loopback it gets its own /etc/hosts (root only; otherwise certificates are ignored on
    # both sides and certificate faults are not compared).
    extra = ["/tune:FreeRDP_TcpConnectTimeout:3000"]
    hosts: dict[str, str] | None = None
    cert = "deny"
    # Where xfreerdp runs: on the client node (its namespace on netns: it resolves names there),
    # or in this process's network (loopback). Never in the root namespace for a lab address.
    prefix = list(endpoint.prefix) if endpoint.prefix is not None else None
    address, port = endpoint.address, endpoint.port
    if gateway is None:
        host = endpoint.server_name
        if prefix is None:  # loopback: the name resolves through a private /etc/hosts
            hosts = {host: address}
    else:
        host, port = endpoint.server_name, 3389  # the gateway resolves the client's name
        extra += [f"/gu:{user}", f"/gp:{password}", f"/gd:{lab.spec.domain}",
                  f"/g:{gateway.name}:{gateway.port}"]
        if prefix is None:
            hosts = {gateway.name: gateway.address}
    if hosts is not None and not can_use_private_hosts():
        # No way to give xfreerdp the lab's names: certificates are ignored on both sides and
        # certificate faults are not compared.
        hosts, cert = None, "ignore"
        host = address if gateway is None else host
        if gateway is not None:
            extra[-1] = f"/g:{gateway.address}:{gateway.port}"
    client = lab.nodes["client"]
    first_hop = (address, port) if gateway is None else (gateway.address, gateway.port)
    if prefix is None and client.client_socket_error(*first_hop) is not None:
        # the client machine's own stack stops the connect; xfreerdp here is not on it
        return {**label, "skipped": "the client's own stack (a corrupt Winsock catalog, an "
                "outbound filter) stops the connect, and xfreerdp does not run on the client "
                "node on this backend (netns runs it there)"}
    profile = bounded(load_profile("freerdp2"), 3.0).with_overrides(
        cert_policy="strict" if cert == "deny" else "ignore")
    probe = lab.probe(profile, usable_window=1.0)
    predicted = predicted_exit(probe.codes["freerdp2"])
    ca_file = lab.workdir / "xfreerdp-trust.pem"
    settings = client.client_settings()
    ca_file.write_bytes(settings.trusted_ca_pem)
    started = time.monotonic()
    try:
        run = run_xfreerdp(host, port, display=_shared_display(), username=user,
                           password=password, domain=lab.spec.domain, cert=cert, cafile=ca_file,
                           extra=extra, timeout=12, prefix=prefix, hosts=hosts,
                           clock_offset=settings.clock_offset)
    finally:
        ca_file.unlink(missing_ok=True)  # not part of the lab's state (snapshots)
        lab.settle(started)
    out = {**label, "xfreerdp_exit": run.exit_code, "xfreerdp_meaning": run.exit_name,
           "predicted_exit": predicted, "probe_symptom": probe.symptom,
           "agree": predicted == run.exit_code, "seconds": round(run.seconds, 2),
           "through_gateway": gateway is not None, "cert": cert}
    random = lab.path_randomness()
    if random is not None:
        # The probe's connection and xfreerdp's are two draws: each meets its own losses, so
        # one attempt cannot be held to the other's outcome. Both are recorded, not compared.
        out["agree"] = None
        out["not_compared"] = f"random path ({random}): two connections, two draws"
    return out
