"""Set Error Info PDU codes (MS-RDPBCGR 2.2.5.1.1), loaded from harness/data/errinfo.yaml."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

DATA_FILE = Path(__file__).resolve().parent.parent / "data" / "errinfo.yaml"


@dataclass(frozen=True)
class ErrInfo:
    code: int
    name: str
    description: str
    group: str = ""


def load(path: Path = DATA_FILE) -> dict[int, ErrInfo]:
    """The code table; raises ValueError naming the entry when the file is malformed."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    table: dict[int, ErrInfo] = {}
    for i, entry in enumerate(doc["codes"]):
        code, name, text = entry.get("code"), entry.get("name"), entry.get("text")
        if not isinstance(code, int) or not isinstance(name, str) or not isinstance(text, str):
            raise ValueError(f"{path}: codes[{i}] needs an integer code, a name and a text")
        if code in table:
            raise ValueError(f"{path}: codes[{i}] repeats code {code:#x}")
        table[code] = ErrInfo(code, name, text, entry.get("group", ""))
    return table


ERRINFO: dict[int, ErrInfo] = load()
BY_NAME: dict[str, ErrInfo] = {e.name: e for e in ERRINFO.values()}

ERRINFO_NONE = 0x0000
ERRINFO_RPC_INITIATED_DISCONNECT = 0x0001
ERRINFO_SERVER_DENIED_CONNECTION = 0x0007
ERRINFO_SERVER_INSUFFICIENT_PRIVILEGES = 0x0009
ERRINFO_LOGOFF_BY_USER = 0x000C
ERRINFO_LICENSE_NO_LICENSE_SERVER = 0x0101
ERRINFO_LICENSE_NO_REMOTE_CONNECTIONS = 0x010A


def name(code: int) -> str:
    """ERRINFO_* name, or a hex placeholder for codes the specification does not list."""
    entry = ERRINFO.get(code)
    return entry.name if entry else f"ERRINFO_UNKNOWN_{code:#010x}"


# Names the client state machine and the probe profiles call this by.
error_info_name = name
describe_name = name


def describe(code: int) -> str:
    """'ERRINFO_NAME (0x00000007): text' for a Set Error Info code."""
    entry = ERRINFO.get(code)
    if entry is None:
        return f"unknown error info code {code:#010x}"
    return f"{entry.name} ({code:#010x}): {entry.description}"
