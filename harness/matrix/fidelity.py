"""Where a probe's result is not yet faithful: the cell says "not emulated", never passes.

Standard RDP Security (SecurityLayer 0) is not served yet: a host that selects it ends the probe
at negotiation/rdp_security, and a host that answers SSL_NOT_ALLOWED_BY_SERVER would have a
real client retry with it (rdp-facts §3, §11). Both are not a result the lab can stand behind.
"""

from __future__ import annotations

UNSERVED = {
    "negotiation/rdp_security": "the host selected Standard RDP Security (SecurityLayer 0), "
                                "which the lab does not serve yet (issue 9)",
    "negotiation/failure:SSL_NOT_ALLOWED_BY_SERVER":
        "the host allows only Standard RDP Security (SecurityLayer 0); a real client retries "
        "with it, which the lab does not serve yet (issue 9)",
}


def unserved(symptom: str | None) -> str | None:
    """Why this symptom is not a faithful result, or None when it is."""
    return UNSERVED.get(symptom or "")
