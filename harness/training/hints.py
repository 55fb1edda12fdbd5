"""Graded hints from a fault's data: 1 the symptom (what the user reports), 2 where to look,
3 the fix. A fault file's `hints` wins; otherwise each level is derived from the fault's other
fields (the symptom seen at the break, the nodes and tags of its inject steps, its title and
description), so every fault has hints without anyone writing them."""

from __future__ import annotations

from typing import Any

# Where an administrator looks, by fault tag.
PLACES = {
    "certificate": "the certificates (Get-ChildItem 'Cert:\\LocalMachine\\Remote Desktop', "
                   "their NotAfter) and the System log (Get-WinEvent -LogName System: 1057, "
                   "1058, 36870)",
    "keystore": "C:\\ProgramData\\Microsoft\\Crypto\\RSA\\MachineKeys and its permissions "
                "(icacls), events 1057 / 1058 / 36870",
    "clock": "the clocks of both machines (Get-Date, w32tm /query /status)",
    "credssp": "the CredSSP policy (AllowEncryptionOracle under HKLM:\\SOFTWARE\\Microsoft\\"
               "Windows\\CurrentVersion\\Policies\\System\\CredSSP\\Parameters) and updates",
    "dns": "name resolution on the client (Resolve-DnsName, ipconfig /displaydns, the hosts "
           "file)",
    "firewall": "Windows Firewall rules for Remote Desktop (Get-NetFirewallRule -DisplayGroup "
                "'Remote Desktop')",
    "gateway": "the RD Gateway: its certificate, its policies (CAP / RAP) and its firewall",
    "websocket": "the RD Gateway's firewall rules for its transports",
    "mtu": "the VPN path: packet sizes and MTU (netsh interface ipv4 show subinterfaces)",
    "nla": "Network Level Authentication: the client's support and the host's "
           "UserAuthentication setting",
    "tls": "the Schannel protocols enabled on each side (HKLM:\\SYSTEM\\CurrentControlSet\\"
           "Control\\SecurityProviders\\SCHANNEL\\Protocols)",
    "policy": "the host's Remote Desktop policy (connection limits, Get-WinEvent)",
    "legacy": "the operating system versions and updates of both machines",
}
NODE_NAMES = {"host": "the RDP host", "client": "the client", "gateway": "the RD Gateway",
              "network": "the network between them"}


def symptom_story(fault: Any, client_shows: str | None) -> str:
    """The user's story of the symptom (never the cause)."""
    if fault.hints.get("symptom"):
        return str(fault.hints["symptom"])
    seen = client_shows or "the connection fails"
    _, _, seen = seen.partition(": ") if ": " in seen else ("", "", seen)
    return (f"\"This morning I cannot connect to my desktop any more. Remote Desktop says: "
            f"{seen}.\"")


def where_to_look(fault: Any) -> str:
    if fault.hints.get("where"):
        return str(fault.hints["where"])
    nodes = []
    for step in fault.inject:
        name = NODE_NAMES.get(step["node"], step["node"])
        if name not in nodes:
            nodes.append(name)
    places = [PLACES[t] for t in fault.tags if t in PLACES]
    return (f"Look at {' and '.join(nodes)}"
            + (": " + "; ".join(places[:2]) if places else "") + ".")


def the_fix(fault: Any, validated: list[str] | None = None) -> str:
    if fault.hints.get("fix"):
        return str(fault.hints["fix"])
    text = f"The cause: {fault.title}. {fault.description}"
    if validated:
        text += " Validated fixes (the matrix run for this fault): " + ", ".join(validated) + "."
    return text


def hint(fault: Any, level: int, client_shows: str | None,
         validated: list[str] | None = None) -> str:
    if level == 1:
        return symptom_story(fault, client_shows)
    if level == 2:
        return where_to_look(fault)
    return the_fix(fault, validated)
