"""Keeping the lab honest: the real xfreerdp next to the freerdp2 profile's prediction.

With --with-xfreerdp, the reproduce and verify stages also run `xfreerdp /auth-only` (bounded,
under a private Xvfb) against the same lab, and record its exit code beside the code the
freerdp2 profile predicts from the probe's own run. Every disagreement is listed after the run.
"""

from __future__ import annotations

import atexit
import threading
from typing import Any

from ..freerdp import run_xfreerdp, xfreerdp_path
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
        return {"step": step, "skipped": "xfreerdp is not installed (freerdp2-x11)"}
    from ..matrix.cell import bounded  # late: cell imports this module

    profile = load_profile("freerdp2")
    probe = lab.probe(bounded(profile, 3.0), usable_window=1.0)
    predicted = predicted_exit(probe.codes["freerdp2"])
    host, port, prefix, server_name = lab.xfreerdp_endpoint()
    ca_file = lab.workdir / "xfreerdp-trust.pem"
    ca_file.write_bytes(lab.client.client_settings().trusted_ca_pem)
    user, password = lab.spec.user
    extra = [f"/server-name:{server_name}", "/tune:FreeRDP_TcpConnectTimeout:3000"]
    run = run_xfreerdp(host, port, display=_shared_display(), username=user, password=password,
                       domain=lab.spec.domain, cert="deny", cafile=ca_file, extra=extra,
                       timeout=12, prefix=prefix)
    return {"step": step, "fault": result.fault, "remediation": result.remediation,
            "xfreerdp_exit": run.exit_code, "xfreerdp_meaning": run.exit_name,
            "predicted_exit": predicted, "probe_symptom": probe.symptom,
            "agree": predicted == run.exit_code, "seconds": round(run.seconds, 2)}
