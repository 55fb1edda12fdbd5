"""Can this process build kernel labs? Answered by really creating and deleting a namespace."""

from __future__ import annotations

import functools
import os
import secrets
import shutil
import subprocess

from .cmd import NetError, run

TOOLS = ("ip", "nft", "tc")


def missing_tools() -> list[str]:
    """Which of ip, nft, tc are not on PATH."""
    return [t for t in TOOLS if shutil.which(t) is None]


def _unprivileged_userns() -> bool:
    """Whether an unprivileged user namespace can be made here (unshare -Urn true)."""
    if shutil.which("unshare") is None:
        return False
    try:
        proc = subprocess.run(
            ["unshare", "-Urn", "true"], capture_output=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


@functools.lru_cache(maxsize=1)
def netns_available() -> tuple[bool, str]:
    """(True, "") when a throwaway named namespace can be created and deleted, else (False, why).

    Root (or a user namespace where `ip netns add` works, e.g. under `unshare -Urm` with a
    writable /run) qualifies. The answer is cached for the process."""
    missing = missing_tools()
    if "ip" in missing:
        return False, "iproute2 (ip) is not installed"
    name = f"rdplab-probe-{os.getpid()}-{secrets.token_hex(3)}"
    try:
        run(["ip", "netns", "add", name])
    except NetError as exc:
        if os.geteuid() != 0:
            hint = (
                "unprivileged user namespaces work here; run as root, or inside `unshare -Urm` "
                "with a private writable /run"
                if _unprivileged_userns()
                else "unprivileged user namespaces are not allowed either"
            )
            return False, f"not root and `ip netns add` failed ({exc}); {hint}"
        return False, f"`ip netns add` failed as root: {exc}"
    try:
        run(["ip", "netns", "del", name])
    except NetError as exc:
        return False, f"created {name} but could not delete it: {exc}"
    if missing:
        return True, f"namespaces work; missing tools: {', '.join(missing)}"
    return True, ""
