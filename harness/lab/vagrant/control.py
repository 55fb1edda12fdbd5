"""Driving Vagrant and holding the VMs: python-vagrant calls bounded in time (a call past its
deadline has the processes it started stopped, found through /proc, without touching
python-vagrant's internals), the lock that gives one cell at a time the VMs, and the TCP
connections held open for the incomplete-connections fault."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ...errors import LabError, LabTimeout
from ..winrm_runner import call_with_deadline

PROC = Path("/proc")


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process (Linux /proc; empty elsewhere)."""
    parents = {}
    with contextlib.suppress(OSError):
        for entry in PROC.iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[-1].split()
            if len(fields) > 1:
                parents[int(entry.name)] = int(fields[1])
    return parents


def child_pids(pid: int | None = None) -> set[int]:
    """The direct children of `pid` (this process by default)."""
    pid = os.getpid() if pid is None else pid
    return {child for child, parent in _parents().items() if parent == pid}


def stop_trees(roots: Iterable[int], grace: float = 2.0) -> list[int]:
    """SIGTERM every process under (and including) `roots`, SIGKILL what is left after
    `grace` seconds; the pids signalled."""
    parents = _parents()
    tree: list[int] = []
    todo = list(roots)
    while todo:
        pid = todo.pop()
        if pid in tree:
            continue
        tree.append(pid)
        todo += [child for child, parent in parents.items() if parent == pid]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        alive = []
        for pid in tree:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
                alive.append(pid)
        if not alive or sig == signal.SIGKILL:
            break
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(_running(p) for p in alive):
            time.sleep(0.05)
    return tree


def _running(pid: int) -> bool:
    try:
        state = (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[-1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


class VagrantControl:
    """python-vagrant calls, each bounded in time and recorded."""

    def __init__(self, module: Any, root: Path, env: dict[str, str], log_path: Path,
                 record: Callable[..., dict[str, Any]], provider: str | None = None) -> None:
        self.root, self.log_path, self.record, self.provider = root, log_path, record, provider
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_cm = module.make_file_cm(str(log_path))
        self.vagrant = module.Vagrant(root=str(root), env=env, out_cm=log_cm, err_cm=log_cm)
        self.killed: list[int] = []  # processes stopped at a deadline (journalled)

    def call(self, command: str, method: str, *args: Any, timeout: float, **kwargs: Any) -> Any:
        start = time.monotonic()
        fn = getattr(self.vagrant, method)
        before = child_pids()

        def kill() -> None:  # the `vagrant` this call started, and what it started in turn
            self.killed += stop_trees(child_pids() - before)

        try:
            value = call_with_deadline(lambda: fn(*args, **kwargs), timeout,
                                       f"vagrant {command}", on_timeout=kill)
        except LabTimeout as exc:
            self.record("vagrant", command=command, ok=False, timed_out=True,
                        duration=round(time.monotonic() - start, 3), error=str(exc))
            raise LabTimeout(f"`vagrant {command}` did not finish within {timeout:g} s "
                             f"(stopped; output in {self.log_path})") from None
        except subprocess.CalledProcessError as exc:
            self.record("vagrant", command=command, ok=False, exit_code=exc.returncode,
                        duration=round(time.monotonic() - start, 3))
            raise LabError(f"`vagrant {command}` failed with exit code {exc.returncode} "
                           f"(output in {self.log_path})") from None
        except (OSError, RuntimeError) as exc:
            self.record("vagrant", command=command, ok=False, error=str(exc),
                        duration=round(time.monotonic() - start, 3))
            raise LabError(f"`vagrant {command}`: {exc}") from exc
        self.record("vagrant", command=command, ok=True,
                    duration=round(time.monotonic() - start, 3))
        return value

    def status(self, timeout: float) -> dict[str, str]:
        return {s.name: s.state for s in self.call("status", "status", timeout=timeout)}

    def box_names(self, timeout: float) -> set[tuple[str, str | None]]:
        return {(b.name, b.provider) for b in self.call("box list", "box_list", timeout=timeout)}

    def snapshot_count(self, name: str, timeout: float) -> int:
        lines = self.call("snapshot list", "snapshot_list", timeout=timeout)
        return sum(1 for line in lines if line.strip() == name)

    def up(self, timeout: float) -> None:
        self.call("up" + (f" --provider={self.provider}" if self.provider else ""), "up",
                  timeout=timeout, provider=self.provider)

    def snapshot_save(self, name: str, timeout: float) -> None:
        self.call(f"snapshot save {name}", "snapshot_save", name, timeout=timeout)

    def snapshot_restore(self, name: str, timeout: float) -> None:
        self.call(f"snapshot restore {name}", "snapshot_restore", name, timeout=timeout)

    def snapshot_delete(self, name: str, timeout: float) -> None:
        self.call(f"snapshot delete {name}", "snapshot_delete", name, timeout=timeout)

    def halt(self, timeout: float) -> None:
        self.call("halt", "halt", timeout=timeout)


class HeldConnections:
    """TCP connections this machine opens to the host and holds, sending nothing: the
    'incomplete connections' of set_incomplete_connections, for real."""

    def __init__(self) -> None:
        self.sockets: list[socket.socket] = []

    def open(self, address: str, port: int, count: int, timeout: float) -> dict[str, Any]:
        self.close()
        with contextlib.suppress(ImportError, ValueError, OSError):
            import resource

            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            want = count + 256
            if soft != resource.RLIM_INFINITY and soft < want:
                resource.setrlimit(resource.RLIMIT_NOFILE,
                                   (want if hard == resource.RLIM_INFINITY else min(want, hard),
                                    hard))
        error = None
        for _ in range(count):
            try:
                self.sockets.append(socket.create_connection((address, port), timeout=timeout))
            except OSError as exc:
                error = f"{type(exc).__name__}: {exc}"
                break
        return {"address": address, "port": port, "requested": count,
                "opened": len(self.sockets), "error": error}

    def close(self) -> None:
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.close()
        self.sockets.clear()


class VmLock:
    """One cell at a time on the VMs, across the matrix's worker processes (an flock on a file
    in the lab's Vagrant folder); others wait up to `timeout`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: Any = None

    def acquire(self, timeout: float, sleep: Callable[[float], None] = time.sleep) -> float:
        try:
            import fcntl
        except ImportError:  # Windows runner: no flock; run the matrix with --jobs 1
            return 0.0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115 (held until release())
        start = time.monotonic()
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._file = handle
                return round(time.monotonic() - start, 3)
            except OSError:
                if time.monotonic() - start >= timeout:
                    handle.close()
                    raise LabTimeout(f"another rdplab process has held the VMs for {timeout:g} "
                                     f"s ({self.path}); the Vagrant lab runs one cell at a time "
                                     "(--jobs 1)") from None
                sleep(1.0)

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing drops the flock
            self._file = None


__all__ = ["HeldConnections", "VagrantControl", "VmLock", "child_pids", "stop_trees"]
