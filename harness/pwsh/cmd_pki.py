"""Get-Certificate (PKI module): enrolment from the lab's enterprise CA, the CA every lab machine
trusts (its root is in their Trusted Root store: ClientSettings.trusted_ca_pem)."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from harness.windows.acl import ace
from harness.windows.certstore import StoredCert
from harness.windows.machinekeys import KeyStoreError

from .commands import P, as_list, as_str, cmdlet
from .objects import CertObject, PsObject
from .providers import UnsupportedPath, resolve

# The templates the lab's enterprise CA publishes, and their validity (the CA's defaults:
# "Web Server" 2 years, "Computer" 1 year; Microsoft Learn, "Certificate templates").
TEMPLATES = {"webserver": 730, "machine": 365, "computer": 365}


class EnrollmentResult(PsObject):
    type_name = "Microsoft.CertificateServices.Commands.EnrollmentResult"

    def __init__(self, certificate: CertObject) -> None:
        self.certificate = certificate

    def props(self) -> dict[str, Any]:
        return {"Status": "Issued", "Certificate": self.certificate, "Request": None}

    def __str__(self) -> str:
        return f"Issued  {self.certificate}"


@cmdlet("Get-Certificate", P("Template", position=0), P("DnsName"), P("SubjectName"),
        P("Url"), P("CertStoreLocation"), should_process=True)
def get_certificate(ctx: Any, args: dict[str, Any]) -> list[Any]:
    """Enrol for a certificate from the lab CA with a new key in MachineKeys, into
    Cert:\\LocalMachine\\My; -Url other than the AD enrolment policy (ldap:) is not emulated."""
    node = ctx.node
    template = as_str(args.get("Template", ""))
    if not template:
        raise ctx.not_emulated("Get-Certificate -Request (a pending request)")
    url = as_str(args.get("Url", "ldap:"))
    if url.lower() != "ldap:":
        raise ctx.not_emulated(f"Get-Certificate -Url {url}", "only the AD enrolment policy")
    days = TEMPLATES.get(template.lower())
    if days is None:
        raise ctx.fail(f"CertEnroll::CX509EnrollmentPolicyActiveDirectory::GetTemplates: the "
                       f"template '{template}' is not offered by the enrolment policy server. "
                       "0x80094800 (-2146875392 CERTSRV_E_UNSUPPORTED_CERT_TYPE)",
                       "InvalidArgument")
    store_text = as_str(args.get("CertStoreLocation", "Cert:\\CurrentUser\\My"))
    try:
        store = resolve(store_text)
    except UnsupportedPath as exc:
        raise ctx.not_emulated(f"Get-Certificate -CertStoreLocation {store_text}",
                               str(exc)) from exc
    if store.kind != "cert" or (store.store or "").lower() != "my":
        raise ctx.not_emulated(f"Get-Certificate -CertStoreLocation {store_text}",
                               "only Cert:\\LocalMachine\\My")
    names = [as_str(n) for n in as_list(args.get("DnsName"))]
    subject = as_str(args.get("SubjectName", ""))
    if subject.upper().startswith("CN="):
        subject = subject[3:].split(",")[0]
    cn = subject or (names[0] if names else node.fqdn)
    key_name = f"{os.urandom(16).hex()}_{node.machinekeys.machine_guid}"
    try:
        key = node.machinekeys.create_key(key_name, "SYSTEM",
                                          acl=[ace("SYSTEM", "F"), ace("Administrators", "F")])
    except KeyStoreError as exc:
        raise ctx.fail(f"CertEnroll::CX509Enrollment::_CreateRequest: {exc.status} "
                       f"{exc.code}", "InvalidOperation") from exc
    now = node.now()
    cert = node.ca.issue(key.public_key(), cn, names or [cn], now - dt.timedelta(minutes=10),
                         now + dt.timedelta(days=days))
    item = StoredCert(cert, key_name)
    node.certstore.add("My", item)
    ctx.effect(f"certificate {item.thumbprint} CN={cn} issued by the lab's enterprise CA "
               f"(template {template}, valid to {cert.not_valid_after_utc:%Y-%m-%d}) in "
               "LocalMachine\\My")
    return [EnrollmentResult(CertObject(item, "My"))]
