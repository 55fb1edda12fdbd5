"""Per-lab state files: every resource is recorded before it is created, so `down_all` can
remove what a lab left behind even after its process was killed with SIGKILL.

A state file is JSON at <state dir>/<lab id>.json:
{"version": 1, "lab": id, "owner": {"pid", "start"}, "created": epoch, "resources": [...]}.
Resource kinds: netns {name}; veth {ns, dev}; nft_table {ns, family, table}; qdisc {ns, dev};
pid {pid, start}; tempdir {path}; etc_netns {path}; tun {ns, dev} (netem stand-in; it also
vanishes when its process exits).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

STATE_ENV = "RDPLAB_STATE_DIR"
DEFAULT_STATE_DIR = Path("/run/rdplab")

Resource = dict[str, Any]


def default_state_dir() -> Path:
    """$RDPLAB_STATE_DIR, else /run/rdplab."""
    return Path(os.environ.get(STATE_ENV) or DEFAULT_STATE_DIR)


def process_start(pid: int) -> int | None:
    """The start time (clock ticks after boot) of pid, or None when it is gone; with the pid it
    identifies a process even after the pid is reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def process_alive(pid: int, start: int | None) -> bool:
    """Whether the process (pid, start) still runs."""
    now = process_start(pid)
    return now is not None and (start is None or now == start)


class LabState:
    """The state file of one lab; every change is written at once (atomically)."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self.data = data

    @classmethod
    def new(cls, state_dir: Path, lab_id: str) -> LabState:
        """A fresh state owned by this process (written immediately)."""
        from ..lifetime import parent_pid

        pid = os.getpid()
        owner: dict[str, Any] = {"pid": pid, "start": process_start(pid)}
        parent = parent_pid()
        if parent is not None:  # a matrix worker: its lab is orphaned when the parent is gone
            owner["parent"] = {"pid": parent, "start": process_start(parent)}
        data = {
            "version": 1,
            "lab": lab_id,
            "owner": owner,
            "created": time.time(),
            "resources": [],
        }
        state = cls(Path(state_dir) / f"{lab_id}.json", data)
        state.flush()
        return state

    @classmethod
    def load(cls, path: Path) -> LabState:
        """Read a state file (raises ValueError when it is not one)."""
        data = json.loads(Path(path).read_text())
        if not isinstance(data, dict) or not isinstance(data.get("resources"), list):
            raise ValueError(f"{path}: not an rdplab state file")
        return cls(Path(path), data)

    @property
    def lab_id(self) -> str:
        return str(self.data["lab"])

    @property
    def resources(self) -> list[Resource]:
        return list(self.data["resources"])

    def owner_alive(self) -> bool:
        """Whether the process that created the lab still runs (and, for a matrix worker, the
        matrix that started it: a worker whose parent is gone is an orphan, not an owner)."""
        owner = self.data.get("owner") or {}
        if not (owner.get("pid") and process_alive(int(owner["pid"]), owner.get("start"))):
            return False
        parent = owner.get("parent")
        return not parent or process_alive(int(parent["pid"]), parent.get("start"))

    def orphaned_owner(self) -> tuple[int, int | None] | None:
        """(pid, start) of an owner that still runs although its parent is gone."""
        owner = self.data.get("owner") or {}
        parent = owner.get("parent")
        if (parent and owner.get("pid")
                and process_alive(int(owner["pid"]), owner.get("start"))
                and not process_alive(int(parent["pid"]), parent.get("start"))):
            return int(owner["pid"]), owner.get("start")
        return None

    def add(self, *resources: Resource) -> None:
        """Record resources (call before creating them)."""
        new = [dict(r) for r in resources if r not in self.data["resources"]]
        if new:
            self.data["resources"].extend(new)
            self.flush()

    def discard(self, *resources: Resource) -> None:
        """Forget resources (call after removing them)."""
        self.data["resources"] = [r for r in self.data["resources"] if r not in resources]
        self.flush()

    def flush(self) -> None:
        """Write the file atomically (temp file + rename)."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.data, indent=1))
        os.replace(tmp, self.path)

    def remove(self) -> None:
        """Delete the state file (after everything it lists is gone)."""
        self.path.unlink(missing_ok=True)


def state_files(state_dir: Path | None = None) -> list[Path]:
    """Every lab state file in state_dir."""
    d = Path(state_dir) if state_dir is not None else default_state_dir()
    try:
        return sorted(p for p in d.iterdir() if p.suffix == ".json" and not p.name.startswith("."))
    except FileNotFoundError:
        return []


@contextmanager
def recorded_tempdir(prefix: str) -> Iterator[Path]:
    """A private temporary directory (`prefix` starts with "rdplab-"), recorded in a state file
    before it exists and removed with it at the end, so that `rdplab down --all` removes it after
    a kill -9 (or a signal at any moment). Without a writable state directory it is only
    removed at the end."""
    from .signals import signals_deferred

    if not prefix.startswith("rdplab-"):
        raise ValueError("recorded temporary directories are named rdplab-*")
    path = Path(tempfile.gettempdir()) / f"{prefix}{secrets.token_hex(6)}"
    state: LabState | None = None
    with signals_deferred():
        try:
            state = LabState.new(default_state_dir(), path.name)
            state.add({"kind": "tempdir", "path": str(path)})
        except OSError:
            state = None
        path.mkdir(mode=0o700)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        if state is not None:
            state.remove()
