"""Model of one Windows node's RDP-relevant state, with the semantics Windows gives it.

`WindowsNode` (node.py) ties the parts together and derives the emulated host's HostPolicy and
the client's ClientSettings from them; each part lives in its own module.
"""

from .acl import Ace, ace
from .machinekeys import KeyStoreError, KeyUnreadable
from .node import ClientSettings, WindowsNode
from .registry import RegType

__all__ = ["Ace", "ClientSettings", "KeyStoreError", "KeyUnreadable", "RegType", "WindowsNode",
           "ace"]
