"""Removing what labs created: one teardown path shared by NetLab.destroy and `rdplab down --all`.

Order: processes (recorded pids, and with scan_processes every process found inside a lab
namespace), then nft tables and qdiscs whose namespace survives, then the namespaces (their
veths, tables and qdiscs go with them), then /etc/netns/<ns> directories and temp dirs, last
the state file. Only names this package makes are ever touched (rdplab- prefixes).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import time
from collections.abc import Iterable
from pathlib import Path

from .cmd import NetError, run
from .namespaces import delete_namespaces, netns_exists
from .nsenter import ETC_NETNS, netns_path, ns_run
from .state import LabState, Resource, process_alive, state_files

NS_PREFIX = "rdplab-"
_KILL_WAIT = 2.0
log = logging.getLogger(__name__)


def _ours(name: str) -> bool:
    return Path(name).name.startswith(NS_PREFIX)


def processes_in_netns(ns: str) -> list[int]:
    """Pids (other than ours) whose network namespace is ns."""
    try:
        st = os.stat(netns_path(ns))
    except FileNotFoundError:
        return []
    found = []
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            s = os.stat(f"/proc/{entry}/ns/net")
        except OSError:
            continue
        if (s.st_dev, s.st_ino) == (st.st_dev, st.st_ino):
            found.append(int(entry))
    return found


def _kill(pids: Iterable[tuple[int, int | None]]) -> list[str]:
    """SIGKILL each live (pid, start) and its process group when it leads one; wait for exit."""
    killed = []
    for pid, start in pids:
        if not process_alive(pid, start):
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if os.getpgid(pid) == pid:
                os.killpg(pid, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)
            killed.append((pid, start))
    deadline = time.monotonic() + _KILL_WAIT
    for pid, start in killed:
        while process_alive(pid, start) and time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            time.sleep(0.005)
    return [f"process {pid}" for pid, _ in killed]


def teardown(resources: Iterable[Resource], *, scan_processes: bool = False) -> list[str]:
    """Remove every listed resource that still exists; return what was removed."""
    res = list(resources)
    by_kind: dict[str, list[Resource]] = {}
    for r in res:
        by_kind.setdefault(str(r.get("kind")), []).append(r)
    namespaces = [r["name"] for r in by_kind.get("netns", []) if _ours(r["name"])]
    live = {n for n in namespaces if netns_exists(n)}
    removed: list[str] = []

    pids = [(int(r["pid"]), r.get("start")) for r in by_kind.get("pid", [])]
    if scan_processes:
        pids += [(p, None) for n in sorted(live) for p in processes_in_netns(n)]
    removed += _kill(pids)

    for r in by_kind.get("nft_table", []):
        ns, family, table = r["ns"], r["family"], r["table"]
        if ns in live:
            removed.append(f"nft table {family} {table} in {ns} (with the namespace)")
        elif _ours(ns) and netns_exists(ns):
            with contextlib.suppress(NetError):
                ns_run(ns, ["nft", "delete", "table", family, table])
                removed.append(f"nft table {family} {table} in {ns}")
    for r in by_kind.get("qdisc", []):
        ns, dev = r["ns"], r["dev"]
        if ns in live:
            removed.append(f"qdisc on {dev} in {ns} (with the namespace)")
        elif _ours(ns) and netns_exists(ns):
            proc = run(["tc", "-n", ns, "qdisc", "del", "dev", dev, "root"], check=False)
            if proc.returncode == 0:
                removed.append(f"qdisc on {dev} in {ns}")
    for kind in ("veth", "tun"):
        for r in by_kind.get(kind, []):
            if r["ns"] in live:
                removed.append(f"{kind} {r['dev']} in {r['ns']} (with the namespace)")

    removed += [f"netns {n}" for n in delete_namespaces(sorted(live))]

    for r in by_kind.get("etc_netns", []):
        path = Path(r["path"])
        if path.parent == ETC_NETNS and _ours(path.name) and path.exists():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(str(path))
    if by_kind.get("etc_netns"):
        with contextlib.suppress(OSError):
            ETC_NETNS.rmdir()  # only when empty; `ip netns exec` does not need it
    for r in by_kind.get("tempdir", []):
        path = Path(r["path"])
        if _ours(path.name) and path.exists():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(str(path))
    return removed


def live_labs(state_dir: str | Path | None = None) -> list[str]:
    """Ids of the labs whose owner still runs (what `down --all` leaves without --force)."""
    out = []
    for path in state_files(Path(state_dir) if state_dir is not None else None):
        try:
            state = LabState.load(path)
        except (ValueError, OSError):
            continue
        if state.owner_alive():
            out.append(state.lab_id)
    return out


def down_all(state_dir: str | Path | None = None, *, include_live: bool = True,
             owners: set[int] | None = None) -> list[str]:
    """Remove everything every lab in state_dir (default $RDPLAB_STATE_DIR or /run/rdplab) left:
    processes, namespaces, veths, nft tables, qdiscs, /etc/netns entries, temp dirs, state files.
    With include_live False, labs whose creating process still runs are left alone; with
    `owners`, only labs created by one of those pids are touched.
    Returns a description of each removed thing."""
    removed: list[str] = []
    for path in state_files(Path(state_dir) if state_dir is not None else None):
        try:
            state = LabState.load(path)
        except (ValueError, OSError) as exc:
            log.warning("unreadable state file %s left in place: %s", path, exc)
            continue
        if owners is not None and (state.data.get("owner") or {}).get("pid") not in owners:
            continue
        if not include_live and state.owner_alive():
            continue
        orphan = state.orphaned_owner()
        if orphan is not None:  # a matrix worker outliving its matrix: end it first
            removed += [f"orphaned worker {d}" for d in _kill([orphan])]
        removed += teardown(state.resources, scan_processes=True)
        state.remove()
        removed.append(f"state file {path}")
    return removed
