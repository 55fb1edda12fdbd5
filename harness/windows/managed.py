"""What a managed server has besides RDP that depends on the same state, so that a remediation's
collateral damage can be seen: a certificate-bound WinRM HTTPS listener (its certificate from
the lab CA in LocalMachine\\My, its private key in MachineKeys) and the server's other inbound
firewall rules (WinRM HTTPS, SMB).

`checks(node)` says, for each such service, whether it works now (None) or why not.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from .firewall import FirewallRule
from .labca import new_key
from .machinekeys import KeyUnreadable

WINRM = ("WinRM", "Windows Remote Management (WS-Management)", "NT AUTHORITY\\NETWORK SERVICE")
LANMAN = ("LanmanServer", "Server", "LocalSystem")
WINRM_HTTPS_PORT = 5986
SMB_PORT = 445
RULES = (
    FirewallRule("WINRM-HTTPS-In-TCP", "Windows Remote Management (HTTPS-In)",
                 "Windows Remote Management", "Windows Remote Management", "TCP",
                 (WINRM_HTTPS_PORT,)),
    FirewallRule("FPS-SMB-In-TCP", "File and Printer Sharing (SMB-In)",
                 "File and Printer Sharing", "File and Printer Sharing", "TCP", (SMB_PORT,)),
)


def install_managed_services(node: Any) -> None:
    """As `winrm quickconfig -transport:https` with a lab-CA certificate left it, plus SMB."""
    for name, display, account in (WINRM, LANMAN):
        node.services.install(name, display, account, "Automatic", True)
    for rule in RULES:
        node.firewall.add_rule(FirewallRule(**{**rule.__dict__}))
    key_name = f"winrm{node.machinekeys.machine_guid[:8]}_{node.machinekeys.machine_guid}"
    key = new_key()
    node.machinekeys.store_key_as_admin(key_name, key)
    now = node.now()
    from .certstore import StoredCert

    cert = node.ca.issue(key.public_key(), node.fqdn, [node.fqdn, node.computer_name.lower()],
                         now - dt.timedelta(days=60), now + dt.timedelta(days=305))
    item = StoredCert(cert, key_name)
    node.certstore.add("My", item)
    node.winrm_https_thumbprint = item.thumbprint


def checks(node: Any) -> dict[str, str | None]:
    """Each managed service of the node: None when it works, else why it does not."""
    thumbprint = getattr(node, "winrm_https_thumbprint", None)
    if thumbprint is None:
        return {}
    with node.lock:
        return {f"{node.role} WinRM HTTPS listener (TCP {WINRM_HTTPS_PORT})": _winrm(node,
                                                                                   thumbprint),
                f"{node.role} SMB file sharing (TCP {SMB_PORT})": _smb(node)}


def _winrm(node: Any, thumbprint: str) -> str | None:
    service = node.services.find(WINRM[0])
    if service is None or not service.running:
        return "the WinRM service is not running"
    cert = next((c for c in node.certstore.store("My") if c.thumbprint == thumbprint), None)
    if cert is None:
        return f"its certificate {thumbprint[:8]}… is no longer in LocalMachine\\My"
    if cert.expired(node.now()):
        return "its certificate has expired"
    try:  # HTTP.sys opens the key as SYSTEM
        key = node.machinekeys.load_key(cert.key_name, "SYSTEM")
    except KeyUnreadable as exc:
        return f"its private key cannot be opened: {exc}"
    if key.public_key().public_numbers() != cert.cert.public_key().public_numbers():
        return "its private key does not match the certificate"
    if node.firewall.verdict(WINRM_HTTPS_PORT) != "allow":
        return f"the firewall blocks TCP {WINRM_HTTPS_PORT}"
    return None


def _smb(node: Any) -> str | None:
    service = node.services.find(LANMAN[0])
    if service is None or not service.running:
        return "the Server service is not running"
    if node.firewall.verdict(SMB_PORT) != "allow":
        return f"the firewall blocks TCP {SMB_PORT}"
    return None
