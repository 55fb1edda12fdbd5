"""Where a probe's result is not yet faithful: the cell says "not emulated", never passes.

A host that allows only Standard RDP Security (SecurityLayer 0) answers a client that requests
TLS or CredSSP with SSL_NOT_ALLOWED_BY_SERVER; a real client then connects again offering
Standard RDP Security (xfreerdp without /sec does, tests/system; mstsc is [open], rdp-facts
§11). The probe does not make that second connection yet, so its failure is not what the user
sees.
"""

from __future__ import annotations

UNSERVED = {
    "negotiation/failure:SSL_NOT_ALLOWED_BY_SERVER":
        "the host allows only Standard RDP Security (SecurityLayer 0); a real client connects "
        "again with it, which the probe does not do yet",
}


def unserved(symptom: str | None) -> str | None:
    """Why this symptom is not a faithful result, or None when it is."""
    return UNSERVED.get(symptom or "")
