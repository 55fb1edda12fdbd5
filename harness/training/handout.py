"""A student's handout (Markdown): how to connect, the user's story of the symptom, the tools.
Never the password (it is in a 0600 file) and never the fault's name or cause."""

from __future__ import annotations

from typing import Any

from .connect import connect_info, endpoints, hosts_lines
from .labdir import LabDir


def render(labdir: LabDir, record: dict[str, Any], story: str, student: str) -> str:
    info = connect_info(labdir, record)
    ends = endpoints(record)
    n = record["names"]
    env = " \\\n  ".join(f"{k}={v}" for k, v in info["env"].items())
    gw = " /gp:<password>" if ends["gateway"] else ""
    where = f"--dir {labdir.path}"
    lines = [
        f"# Remote Desktop troubleshooting lab: {student}",
        "",
        "## The ticket",
        "",
        f"> {story}",
        "",
        f"The user is **{n['domain']}\\{n['user']}**, working on **{n.get('client', 'the client')}"
        f"** and connecting to **{n['host']}**"
        + (f" through the RD Gateway **{n['gateway']}**." if n.get("gateway") else "."),
        "Find out why the connection fails and fix it on the machines, as an administrator "
        "would.",
        "",
        "## Connecting as the user",
        "",
        f"Your password is in `{labdir.password_file}` (readable only by its owner); your "
        "trainer tells you how to get it.",
        "",
        "With FreeRDP:",
        "",
        "```sh",
        f"{env} \\\n  {' '.join(info['xfreerdp'])} /p:<password>{gw}",
        "```",
        "",
        f"With mstsc: open `{info['rdp_file']}`, after adding `{hosts_lines(record)[0]}` to the "
        "hosts file of the machine you run it on.",
        "",
        f"Entry point: `{ends['gateway'] or ends['host']}`.",
        "",
        "## Working on the machines",
        "",
        "| what | command |",
        "|---|---|",
        f"| a PowerShell prompt on a machine (client, gateway, host) | "
        f"`rdplab shell host {where}` |",
        f"| run a script on a machine | `rdplab exec host fix.ps1 {where}` |",
        f"| is it fixed? (exit 0 fixed, 1 still broken, 3 fixed but less secure) | "
        f"`rdplab check {where}` |",
        f"| a hint (levels 1 to 3) | `rdplab hint --level 1 {where}` |",
        f"| start over from the broken state | `rdplab reset {where}` |",
        "",
        "`Get-WinEvent -LogName System` and `Get-EventLog System` show a machine's events. "
        "Commands outside the lab's PowerShell subset answer \"not emulated\".",
        "",
    ]
    return "\n".join(lines)
