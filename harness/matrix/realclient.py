"""Keeping the lab honest: the real xfreerdp next to the freerdp2 profile's prediction.

With --with-xfreerdp, the reproduce and verify stages also run `xfreerdp /auth-only` (bounded,
under a private Xvfb) against the same lab, and record its exit code beside the code the
freerdp2 profile predicts from the probe's own run. Every disagreement is listed after the run.
"""

from __future__ import annotations

import atexit
import threading
from typing import Any

from ..freerdp import can_use_private_hosts, run_xfreerdp, xfreerdp_path
from ..probe.profiles import load_profile
from ..xdisplay import Xvfb

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


def compare_with_xfreerdp(lab: Any, step: str, result: Any) -> dict[str, Any]:
    """Run the freerdp2 profile's probe and real xfreerdp now; say whether they agree."""
    if xfreerdp_path() is None:
        return {"step": step, "fault": result.fault, "remediation": result.remediation,
                "skipped": "xfreerdp is not installed (freerdp2-x11)"}
    from ..matrix.cell import bounded  # late: cell imports this module

    user, password = lab.spec.user
    gateway = lab.xfreerdp_gateway() if hasattr(lab, "xfreerdp_gateway") else None
    # xfreerdp must use the names the client uses, so that its certificate checks are real:
    # on loopback it gets its own /etc/hosts (root only; otherwise certificates are ignored on
    # both sides and certificate faults are not compared).
    extra = ["/tune:FreeRDP_TcpConnectTimeout:3000"]
    hosts: dict[str, str] | None = None
    cert = "deny"
    # Where xfreerdp runs: in the client's namespace on netns (it resolves names there), in this
    # process's network on loopback. Never in the root namespace for a lab address.
    prefix = lab.exec_prefix("client") if hasattr(lab, "exec_prefix") else None
    if lab.backend != "loopback" and prefix is None:
        return {"step": step, "fault": result.fault, "remediation": result.remediation,
                "skipped": f"the {lab.backend} backend gives no place to run xfreerdp"}
    if gateway is None:
        address, port, _, name = lab.xfreerdp_endpoint()
        host = name
        if prefix is None:  # loopback: the name resolves through a private /etc/hosts
            hosts = {name: address}
    else:
        g_address, g_port, g_name = gateway
        host, port = lab.client_target()[0], 3389
        extra += [f"/gu:{user}", f"/gp:{password}", f"/gd:{lab.spec.domain}",
                  f"/g:{g_name}:{g_port}"]
        if prefix is None:
            hosts = {g_name: g_address}
    if hosts is not None and not can_use_private_hosts():
        # No way to give xfreerdp the lab's names: certificates are ignored on both sides and
        # certificate faults are not compared.
        hosts, cert = None, "ignore"
        host = address if gateway is None else host
        if gateway is not None:
            extra[-1] = f"/g:{gateway[0]}:{gateway[1]}"
    profile = bounded(load_profile("freerdp2"), 3.0).with_overrides(
        cert_policy="strict" if cert == "deny" else "ignore")
    probe = lab.probe(profile, usable_window=1.0)
    predicted = predicted_exit(probe.codes["freerdp2"])
    ca_file = lab.workdir / "xfreerdp-trust.pem"
    ca_file.write_bytes(lab.client.client_settings().trusted_ca_pem)
    run = run_xfreerdp(host, port, display=_shared_display(), username=user, password=password,
                       domain=lab.spec.domain, cert=cert, cafile=ca_file, extra=extra,
                       timeout=12, prefix=prefix, hosts=hosts,
                       clock_offset=lab.client.client_settings().clock_offset)
    return {"step": step, "fault": result.fault, "remediation": result.remediation,
            "xfreerdp_exit": run.exit_code, "xfreerdp_meaning": run.exit_name,
            "predicted_exit": predicted, "probe_symptom": probe.symptom,
            "agree": predicted == run.exit_code, "seconds": round(run.seconds, 2),
            "through_gateway": gateway is not None, "cert": cert}
