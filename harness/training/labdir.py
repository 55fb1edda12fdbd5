"""A lab's directory: where its state lives between commands, and the lock that keeps two
commands from acting on it at once.

Layout of <dir>:
  lab.json        the record (name, backend, lab file, identity, publish address, fault, ...)
  lock            fcntl lock file (flock), held by a command for its whole duration
  control.sock    the supervisor's Unix socket
  resources.json  net.state LabState: the supervisor process, recorded before anything it makes
  net/            the netns backend's own state files (namespaces, veths, nft tables)
  work/           the Windows nodes' files (certificates, keys)
  password        the lab user's password, mode 0600
  commands.jsonl  what was run on the lab since the break (exec, shell lines, checks)
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import LabBusy, TrainingError

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
LOCK_WAIT = 30.0


def labs_root() -> Path:
    """$RDPLAB_LABS_DIR, else $XDG_STATE_HOME/rdplab/labs (default ~/.local/state)."""
    if os.environ.get("RDPLAB_LABS_DIR"):
        return Path(os.environ["RDPLAB_LABS_DIR"])
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "rdplab" / "labs"


def check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise TrainingError(f"lab name {name!r}: use 1-40 lower-case letters, digits, '-' or '_'")
    return name


class LabDir:
    """One lab's directory (it may not exist yet)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @classmethod
    def named(cls, name: str, root: Path | None = None) -> LabDir:
        return cls((root or labs_root()) / check_name(name))

    # -- files ---------------------------------------------------------------------------------

    @property
    def record_file(self) -> Path:
        return self.path / "lab.json"

    @property
    def socket_path(self) -> Path:
        return self.path / "control.sock"

    @property
    def resources_file(self) -> Path:
        return self.path / "resources.json"

    @property
    def net_state_dir(self) -> Path:
        return self.path / "net"

    @property
    def workdir(self) -> Path:
        return self.path / "work"

    @property
    def password_file(self) -> Path:
        return self.path / "password"

    @property
    def commands_file(self) -> Path:
        return self.path / "commands.jsonl"

    @property
    def log_file(self) -> Path:
        return self.path / "supervisor.log"

    def exists(self) -> bool:
        return self.record_file.exists()

    def read(self) -> dict[str, Any]:
        try:
            return json.loads(self.record_file.read_text())
        except FileNotFoundError:
            raise TrainingError(f"no lab at {self.path} (start one with `rdplab up`)") from None
        except ValueError as exc:
            raise TrainingError(f"{self.record_file}: unreadable lab record: {exc}") from None

    def write(self, record: dict[str, Any]) -> None:
        """Atomically (temp file + rename)."""
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.record_file.with_name(f".lab.json.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(record, indent=1, sort_keys=True))
        os.replace(tmp, self.record_file)

    def update(self, **fields: Any) -> dict[str, Any]:
        record = self.read()
        record.update(fields)
        self.write(record)
        return record

    def write_password(self, password: str) -> Path:
        """The password in a file only the owner reads (created 0600, never wider)."""
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(password + "\n")
        os.chmod(self.password_file, 0o600)
        return self.password_file

    def read_password(self) -> str:
        return self.password_file.read_text().strip()

    def log_command(self, entry: dict[str, Any]) -> None:
        entry = {"time": time.time(), **entry}
        with self.commands_file.open("a") as f:
            f.write(json.dumps(entry, sort_keys=True) + "\n")

    def commands(self) -> list[dict[str, Any]]:
        try:
            lines = self.commands_file.read_text().splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
        return out

    # -- the lock -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self, wait: float = LOCK_WAIT, create: bool = False) -> Iterator[None]:
        """Hold the lab's lock (flock on <dir>/lock); LabBusy when another command keeps it
        longer than `wait` seconds. The kernel releases it when the holder dies."""
        if create:
            self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        elif not self.path.is_dir():
            raise TrainingError(f"no lab at {self.path} (start one with `rdplab up`)")
        fd = os.open(self.path / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            deadline = time.monotonic() + wait
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise LabBusy(f"lab {self.path.name} is busy: another rdplab command "
                                      "holds its lock; try again when it has finished") from None
                    time.sleep(0.05)
            yield
        finally:
            os.close(fd)  # closing releases the lock


def user_labs(root: Path | None = None) -> list[LabDir]:
    """Every lab directory under the user's labs root."""
    base = root or labs_root()
    try:
        return [LabDir(p) for p in sorted(base.iterdir()) if p.is_dir()]
    except FileNotFoundError:
        return []
