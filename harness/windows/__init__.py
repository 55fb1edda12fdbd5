"""Model of one Windows node's RDP-relevant state, with the semantics Windows gives it.

`WindowsNode` (node.py) ties the parts together and derives the emulated host's HostPolicy and
the client's ClientSettings from them; each part lives in its own module; `faults.inject()`
applies the named fault actions scenario files use.

Where Windows' behaviour is not established the model picks one and says so [open]:
- TermService (and SessionEnv) check the RDP certificate at start: missing, expired, or its key
  file gone -> renew through MachineKeys (event 1056); failure logs 1057 (nothing to replace)
  or 1058 (replacing an expired one) with the key store's status ("Keyset does not exist" when
  the folder is missing, "Access is denied" when SYSTEM cannot write), and the old certificate,
  if any, stays served. A corrupt or unreadable key with the file present is not renewed.
- A missing MachineKeys folder is recreated (KB278381 default ACL) at reboot only.
- Above MachineKeys only SYSTEM and Administrators full control is inheritable, so
  `icacls MachineKeys /reset /T` leaves NETWORK SERVICE without read on the RDP key.
- SCHANNEL protocol values take effect at reboot; RDP-Tcp values and the CredSSP policy at the
  next connection; PortNumber and MaxOutstandingConnections at TermService start.
- At MaxOutstandingConnections incomplete connections (held from outside, surviving restarts)
  the host logs 1006 and sends Set Error Info 7 after MCS connect.
- With no TLS protocol enabled the credential raises 36871 (10013); with no certificate 36870
  with 0x8009030E.
- RD Gateway (role "gateway", gateway.py): its SSL certificate is a lab-CA certificate in
  LocalMachine\\My named by RDS:\\GatewayServer\\SSLCertificate\\Thumbprint, read per connection;
  New-SelfSignedCertificate makes a truly self-signed one (no client trusts it). CAP/RAP user
  groups, RAP name matching and the WebSocket switch (the "Remote Desktop (WebSocket)" rules)
  are the lab's picks, listed in gateway.py. The client's gateway is Default.rdp's
  gatewayhostname with gatewayusagemethod 1.
"""

from .acl import Ace, ace
from .machinekeys import KeyStoreError, KeyUnreadable
from .node import ClientSettings, WindowsNode
from .registry import RegType

__all__ = ["Ace", "ClientSettings", "KeyStoreError", "KeyUnreadable", "RegType", "WindowsNode",
           "ace"]
