"""The client machine's Kerberos in a domain lab: tickets from the lab's KDC, as Windows gets them.

A domain-joined Windows client logs the user on with an AS exchange and asks the KDC for a
`TERMSRV/<name it connects to>` service ticket when mstsc's Negotiate package starts Kerberos.
Here MIT's own `kinit` and `kvno` do those two exchanges against the lab's real KDC, run under
libfaketime with the client machine's clock offset, so the KDC judges the client's clock exactly
as a DC would (KRB_AP_ERR_SKEW beyond 300 s). The AP-REQ then comes from the ticket cache through
GSS-API (`harness.rdp.kerberos.KerberosInitiator`).

Negotiate falls back to NTLM when Kerberos cannot produce a first token (no KDC answers, the
SPN is unknown, the target is an IP address): MechanismUnavailable. Every other Kerberos error
(clock skew, a wrong password) ends the logon: KerberosFailure.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..rdp.kerberos import (
    KDC_ERR_PREAUTH_FAILED,
    KRB_AP_ERR_SKEW,
    KerberosFailure,
    KerberosInitiator,
)
from ..rdp.spnego import MechanismUnavailable

TOOL_TIMEOUT = 10.0

# MIT's messages (krb5_err.et) -> RFC 4120 error numbers, for the errors the lab produces.
_MESSAGES = {
    "Clock skew too great": KRB_AP_ERR_SKEW,
    "Preauthentication failed": KDC_ERR_PREAUTH_FAILED,
    "Password incorrect": KDC_ERR_PREAUTH_FAILED,
    "not found in Kerberos database": None,  # client: a logon failure; service: fallback
}
_UNAVAILABLE = ("Cannot contact any KDC", "Cannot find KDC", "Cannot resolve network address")


@dataclass(frozen=True)
class KerberosClient:
    """The client's view of a realm: its krb5.conf (the lab's KDC), where ticket caches go, and
    the client machine's clock offset in seconds."""

    realm: str
    krb5_conf: Path
    cache_dir: Path
    clock_offset: float = 0.0
    prefix: tuple[str, ...] = ()  # runs a program on the client machine (its netns)

    def mechanism(self, user: str, password: str, target: str) -> Callable[[], KerberosInitiator]:
        """A factory for the SPNEGO initiator: logs on and gets the TERMSRV ticket when called."""
        return lambda: self.initiator(user, password, target)

    def initiator(self, user: str, password: str, target: str) -> KerberosInitiator:
        try:
            ipaddress.ip_address(target)
        except ValueError:
            pass
        else:  # no SPN names an address: Negotiate uses NTLM (Microsoft, "Kerberos and IPs")
            raise MechanismUnavailable(f"{target} is an IP address: no TERMSRV SPN")
        self.cache_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        ccache = f"FILE:{self.cache_dir / f'krb5cc-{uuid.uuid4().hex[:12]}'}"
        client = f"{user.split('@')[0]}@{self.realm}"
        service = f"TERMSRV/{target.lower()}@{self.realm}"
        self._run(["kinit", client], ccache, password + "\n", "AS exchange for " + client)
        try:
            self._run(["kvno", service], ccache, None, "TGS exchange for " + service)
        except KerberosFailure as exc:
            if "not found in Kerberos database" in exc.reason:
                raise MechanismUnavailable(f"the KDC knows no {service}") from exc
            raise
        return KerberosInitiator(ccache, service)

    def _run(self, cmd: list[str], ccache: str, stdin: str | None, what: str) -> None:
        env = {**os.environ, "KRB5_CONFIG": str(self.krb5_conf), "KRB5CCNAME": ccache}
        env.pop("KRB5_KDC_PROFILE", None)
        argv = [shutil.which(cmd[0]) or cmd[0], *cmd[1:]]
        if self.clock_offset:
            if shutil.which("faketime") is None:
                raise KerberosFailure("the client's clock needs faketime (Debian package faketime)")
            argv = ["faketime", "-f", f"{self.clock_offset:+.0f}s", *argv]
        argv = [*self.prefix, *argv]
        try:
            done = subprocess.run(argv, env=env, input=stdin, text=True, capture_output=True,
                                  timeout=TOOL_TIMEOUT)
        except subprocess.TimeoutExpired as exc:
            raise MechanismUnavailable(f"{what}: no answer in {TOOL_TIMEOUT} s") from exc
        if done.returncode == 0:
            return
        message = (done.stderr or done.stdout).strip().splitlines()[-1:] or [""]
        text = message[0]
        if any(m in text for m in _UNAVAILABLE):
            raise MechanismUnavailable(f"{what}: {text}")
        krb_error = next((n for m, n in _MESSAGES.items() if m in text), None)
        if krb_error is None and cmd[0] == "kinit" and "not found in Kerberos database" in text:
            krb_error = 6  # KDC_ERR_C_PRINCIPAL_UNKNOWN
        raise KerberosFailure(f"{what}: {text}", krb_error)
