"""How a student's real client reaches a running lab: the xfreerdp command line (no password,
no /cert:ignore), the environment it needs, and an .rdp file mstsc opens."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .labdir import LabDir


def _proxy_address(bound: list[Any]) -> str:
    host, port = str(bound[0]), int(bound[1])
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def names(record: dict[str, Any]) -> dict[str, Any]:
    """The names the lab's client uses (written by the supervisor at start)."""
    return record.get("names") or {}


def xfreerdp_args(record: dict[str, Any]) -> list[str]:
    n = names(record)
    args = ["xfreerdp", f"/v:{n['host']}", f"/u:{n['user']}", f"/d:{n['domain']}"]
    if n.get("gateway"):
        args += [f"/g:{n['gateway']}", f"/gu:{n['user']}", f"/gd:{n['domain']}"]
    return args


def xfreerdp_env(labdir: LabDir, record: dict[str, Any]) -> dict[str, str]:
    """xfreerdp trusts the lab's CA (SSL_CERT_FILE) and reaches the lab's names through the
    published port (https_proxy: FreeRDP 2 sends `CONNECT name:port` there, for the RD Gateway
    and for a direct host alike)."""
    return {"SSL_CERT_FILE": str(labdir.path / "lab-ca.pem"),
            "https_proxy": f"http://{_proxy_address(record['publish_bound'])}"}


def rdp_file_text(record: dict[str, Any]) -> str:
    """What mstsc reads: full address, gateway hostname and usage, user name (no password)."""
    n = names(record)
    port = int(record["publish_bound"][1])
    lines = [
        "screen mode id:i:1", "desktopwidth:i:1024", "desktopheight:i:768",
        "prompt for credentials:i:1", "authentication level:i:2",
        f"username:s:{n['domain']}\\{n['user']}",
    ]
    if n.get("gateway"):
        gateway = n["gateway"] if port == 443 else f"{n['gateway']}:{port}"
        lines += [f"full address:s:{n['host']}", f"gatewayhostname:s:{gateway}",
                  "gatewayusagemethod:i:1", "gatewayprofileusagemethod:i:1",
                  "gatewaycredentialssource:i:0", "promptcredentialonce:i:1"]
    else:
        address = n["host"] if port == 3389 else f"{n['host']}:{port}"
        lines += [f"full address:s:{address}", "gatewayusagemethod:i:0"]
    return "\r\n".join(lines) + "\r\n"


def write_rdp_file(labdir: LabDir, record: dict[str, Any]) -> Path:
    path = labdir.path / f"{record['name']}.rdp"
    path.write_text(rdp_file_text(record))
    return path


def hosts_lines(record: dict[str, Any]) -> list[str]:
    """For mstsc on this machine: the lab's names at the published address (hosts file)."""
    n = names(record)
    address = _proxy_address(record["publish_bound"]).rsplit(":", 1)[0].strip("[]")
    entry = n.get("gateway") or n["host"]
    return [f"{address} {entry}"]


def connect_info(labdir: LabDir, record: dict[str, Any]) -> dict[str, Any]:
    return {"xfreerdp": xfreerdp_args(record), "env": xfreerdp_env(labdir, record),
            "rdp_file": str(labdir.path / f"{record['name']}.rdp")}


def endpoints(record: dict[str, Any]) -> dict[str, str | None]:
    n = names(record)
    published = _proxy_address(record["publish_bound"])
    if n.get("gateway"):
        return {"gateway": published, "host": f"{n['host']}:3389"}
    return {"gateway": None, "host": published}
