"""certutil -store / -delstore on LocalMachine stores (certutil's default)."""

from __future__ import annotations

from typing import Any

from .commands import native

NOT_FOUND = -2147024894  # 0x80070002, certutil exits with the HRESULT


def _match(certs: list[Any], cert_id: str) -> list[Any]:
    token = cert_id.replace(" ", "").upper()
    if token.isdigit() and int(token) < len(certs) and len(token) < 4:
        return [certs[int(token)]]
    return [c for c in certs if token in (c.thumbprint, c.serial.upper())]


@native("certutil")
def certutil(ctx: Any, argv: list[str]) -> int:
    args = [a for a in argv if a.lower() not in ("-f", "-silent")]
    if any(a.lower() in ("-user", "-enterprise", "-grouppolicy") for a in args):
        raise ctx.not_emulated("certutil " + " ".join(args[:2]), "user and enterprise stores")
    if not args or args[0].lower() not in ("-store", "-delstore"):
        raise ctx.not_emulated("certutil " + " ".join(args[:1]))
    verb = args[0].lower()
    if len(args) < 2:
        ctx.out(f"CertUtil: {verb} command FAILED: 0x80070057 (WIN32: 87 "
                "ERROR_INVALID_PARAMETER)")
        return -2147024809
    store_name = args[1]
    try:
        certs = ctx.node.certstore.store(store_name)
    except KeyError:
        raise ctx.not_emulated(f"certificate store {store_name}") from None
    chosen = _match(certs, args[2]) if len(args) > 2 else list(certs)
    ctx.out(f'{store_name} "{store_name}"')
    if verb == "-store":
        for n, cert in enumerate(chosen):
            ctx.out(f"================ Certificate {n} ================\nSerial Number: "
                    f"{cert.serial}\nSubject: {cert.subject}\n NotAfter: {cert.not_after}\n"
                    f"Cert Hash(sha1): {cert.thumbprint.lower()}")
        ctx.out("CertUtil: -store command completed successfully.")
        return 0
    if len(args) < 3 or not chosen:
        ctx.out("CertUtil: -delstore command FAILED: 0x80070002 (WIN32: 2 ERROR_FILE_NOT_FOUND)\n"
                "CertUtil: The system cannot find the file specified.")
        return NOT_FOUND
    for n, cert in enumerate(chosen):
        ctx.node.certstore.remove(store_name, cert.thumbprint)
        ctx.effect(f"deleted certificate {cert.thumbprint} from {store_name}")
        ctx.out(f"Deleting Certificate {n}")
    ctx.out("CertUtil: -delstore command completed successfully.")
    return 0
