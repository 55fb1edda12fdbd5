"""Kerberos (RFC 4120/4121) as a SPNEGO mechanism, over MIT's GSS-API (python-gssapi).

Both roles take their credentials from explicit stores, never from process-wide defaults: the
acceptor from the host's keytab (`TERMSRV/<fqdn>@REALM`), the initiator from a credential cache
that already holds the user's tickets (the probe gets them from the lab's KDC with MIT's own
kinit/kvno under the client's clock, `harness/lab/kdc.py`). Nothing here talks to a KDC, so both
stay bytes in, bytes out. GSS errors become KerberosFailure with the Kerberos error number and the
SSPI status Windows reports for it.
"""

from __future__ import annotations

from pathlib import Path

from .errors import ProtocolFailure

# MIT's com_err table for Kerberos protocol errors starts here (krb5_err.et: ERROR_TABLE_BASE_krb5).
_KRB5_ERROR_BASE = -1765328384

KRB_AP_ERR_SKEW = 37
KDC_ERR_PREAUTH_FAILED = 24
KDC_ERR_C_PRINCIPAL_UNKNOWN = 6
KDC_ERR_S_PRINCIPAL_UNKNOWN = 7
KRB_AP_ERR_TKT_EXPIRED = 32
KRB_AP_ERR_TKT_NYV = 33
KRB_AP_ERR_MODIFIED = 41

SEC_E_TIME_SKEW = 0x80090324  # "The clock skew between the client and server machines is too great"
SEC_E_LOGON_DENIED = 0x8009030C
SEC_E_TARGET_UNKNOWN = 0x80090303
SEC_E_NO_AUTHENTICATING_AUTHORITY = 0x80090311
STATUS_LOGON_FAILURE = 0xC000006D

# Kerberos error -> (SSPI status, event for client profiles). MS-KILE 3.1.5 / MS-ERREF 2.1.
_ERRORS: dict[int, tuple[int, str]] = {
    KRB_AP_ERR_SKEW: (SEC_E_TIME_SKEW, "time_skew"),
    KRB_AP_ERR_TKT_NYV: (SEC_E_TIME_SKEW, "time_skew"),
    KDC_ERR_PREAUTH_FAILED: (STATUS_LOGON_FAILURE, "logon_failure"),
    KDC_ERR_C_PRINCIPAL_UNKNOWN: (STATUS_LOGON_FAILURE, "logon_failure"),
    KDC_ERR_S_PRINCIPAL_UNKNOWN: (SEC_E_TARGET_UNKNOWN, "target_unknown"),
    KRB_AP_ERR_MODIFIED: (SEC_E_LOGON_DENIED, "failed"),
}

ERROR_NAMES = {
    KRB_AP_ERR_SKEW: "KRB_AP_ERR_SKEW",
    KRB_AP_ERR_TKT_NYV: "KRB_AP_ERR_TKT_NYV",
    KRB_AP_ERR_TKT_EXPIRED: "KRB_AP_ERR_TKT_EXPIRED",
    KDC_ERR_PREAUTH_FAILED: "KDC_ERR_PREAUTH_FAILED",
    KDC_ERR_C_PRINCIPAL_UNKNOWN: "KDC_ERR_C_PRINCIPAL_UNKNOWN",
    KDC_ERR_S_PRINCIPAL_UNKNOWN: "KDC_ERR_S_PRINCIPAL_UNKNOWN",
    KRB_AP_ERR_MODIFIED: "KRB_AP_ERR_MODIFIED",
}


class KerberosFailure(ProtocolFailure):
    """Kerberos refused: `krb_error` is the RFC 4120 error number when one is known."""

    def __init__(self, reason: str, krb_error: int | None = None) -> None:
        status, event = _ERRORS.get(krb_error or -1, (SEC_E_LOGON_DENIED, "failed"))
        name = ERROR_NAMES.get(krb_error or -1)
        super().__init__("credssp", f"{reason}" + (f" ({name})" if name else ""), status)
        self.status = status
        self.event = event
        self.krb_error = krb_error


def krb_error_of(minor: int) -> int | None:
    """The Kerberos error number inside an MIT minor status, if it is one."""
    n = minor - _KRB5_ERROR_BASE if minor < 0 else minor - (_KRB5_ERROR_BASE & 0xFFFFFFFF)
    return n if 0 <= n < 128 else None


def _gss_failure(what: str, exc: Exception) -> KerberosFailure:
    minor = int(getattr(exc, "min_code", 0) or 0)
    return KerberosFailure(f"{what}: {exc}".replace("\n", " "), krb_error_of(minor))


def available() -> bool:
    try:
        import gssapi  # noqa: F401
    except ImportError:
        return False
    return True


_KRB5_MECH = "1.2.840.113554.1.2.2"


class _GssMechanism:
    """What both roles share: wrap/unwrap (sealed, as SSPI EncryptMessage), MICs."""

    _ctx: object

    @property
    def complete(self) -> bool:
        return bool(self._ctx.complete)  # type: ignore[attr-defined]

    def wrap(self, data: bytes) -> bytes:
        try:
            return bytes(self._ctx.wrap(data, True).message)  # type: ignore[attr-defined]
        except Exception as exc:  # gssapi raises GSSError subclasses
            raise _gss_failure("GSS wrap", exc) from exc

    def unwrap(self, data: bytes) -> bytes:
        try:
            return bytes(self._ctx.unwrap(data).message)  # type: ignore[attr-defined]
        except Exception as exc:
            raise _gss_failure("GSS unwrap", exc) from exc

    def sign(self, data: bytes) -> bytes:
        return bytes(self._ctx.get_signature(data))  # type: ignore[attr-defined]

    def verify(self, data: bytes, mic: bytes) -> None:
        try:
            self._ctx.verify_signature(data, mic)  # type: ignore[attr-defined]
        except Exception as exc:
            raise _gss_failure("mechListMIC", exc) from exc

    def needs_mech_list_mic(self) -> bool:
        return False

    def after_mech_list_mic(self, *, outgoing: bool) -> None:
        return None


class KerberosAcceptor(_GssMechanism):
    """The host's side: AP-REQ in, AP-REP out, with the key of its keytab."""

    def __init__(self, keytab: Path | str, principal: str | None = None) -> None:
        import gssapi

        name = gssapi.Name(principal, gssapi.NameType.kerberos_principal) if principal else None
        try:
            creds = gssapi.Credentials(name=name, usage="accept", store={"keytab": str(keytab)})
        except gssapi.exceptions.GSSError as exc:
            raise _gss_failure(f"keytab {keytab}", exc) from exc
        self._ctx = gssapi.SecurityContext(creds=creds, usage="accept")

    def step(self, token: bytes | None) -> bytes | None:
        import gssapi

        if not token:
            raise KerberosFailure("the Kerberos acceptor needs the AP-REQ")
        try:
            out = self._ctx.step(token)  # type: ignore[attr-defined]
        except gssapi.exceptions.GSSError as exc:
            raise _gss_failure("AP-REQ refused", exc) from exc
        return bytes(out) if out else None

    @property
    def client_principal(self) -> str | None:
        if not self.complete:
            return None
        return str(self._ctx.initiator_name).rstrip("\x00")  # type: ignore[attr-defined]


class KerberosInitiator(_GssMechanism):
    """The client's side: AP-REQ for `target` (a principal, `TERMSRV/host@REALM`) from the tickets
    in `ccache`, mutual authentication (the AP-REP completes it)."""

    def __init__(self, ccache: str, target: str) -> None:
        import gssapi

        try:
            creds = gssapi.Credentials(usage="initiate", store={"ccache": ccache})
        except gssapi.exceptions.GSSError as exc:
            raise _gss_failure(f"credential cache {ccache}", exc) from exc
        flags = (
            gssapi.RequirementFlag.mutual_authentication
            | gssapi.RequirementFlag.integrity
            | gssapi.RequirementFlag.confidentiality
            | gssapi.RequirementFlag.out_of_sequence_detection
        )
        self._ctx = gssapi.SecurityContext(
            name=gssapi.Name(target, gssapi.NameType.kerberos_principal),
            creds=creds,
            usage="initiate",
            mech=gssapi.OID.from_int_seq(_KRB5_MECH),
            flags=flags,
        )

    def step(self, token: bytes | None) -> bytes | None:
        import gssapi

        try:
            out = self._ctx.step(token)  # type: ignore[attr-defined]
        except gssapi.exceptions.GSSError as exc:
            raise _gss_failure("Kerberos initiator", exc) from exc
        return bytes(out) if out else None
