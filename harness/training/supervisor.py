"""The process that owns one running lab (`rdplab up` starts it detached, in its own session):
it builds the lab, publishes its entry point, and answers the commands on the lab's Unix
socket until `stop`, SIGTERM, or its lab directory disappears.

Run as `python -m harness.training.supervisor <lab dir>`; everything it needs is in
<lab dir>/lab.json. It writes its pid into the record before creating anything, and the netns
backend records namespaces under <lab dir>/net, so `rdplab down` removes all of it even after a
kill -9.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ..lab.base import ADDRESSES, GATEWAY_PORT, RDP_PORT, Lab, NotEmulated
from ..lab.contract import LabSnapshot
from ..lab.definition import load_lab
from ..lab.factory import backend_class, build_nodes
from ..matrix.aftermath import Capture, capture
from ..net.state import STATE_ENV, process_start
from ..pwsh.errors import NotEmulated as ScriptNotEmulated
from ..pwsh.errors import PwshError
from ..scenario.actions import apply_step
from ..windows.faults import FaultError
from . import control
from .connect import write_rdp_file
from .identity import apply_identity
from .labdir import LabDir
from .publish import Publisher, PublishError, bind_listener
from .shellsession import ShellSession
from .verdict import check_lab

log = logging.getLogger("rdplab.supervisor")
WATCH_INTERVAL = 2.0


class UsageError(Exception):
    """A request the lab refuses (bad input): the CLI exits 2."""


class Supervisor:
    def __init__(self, labdir: LabDir) -> None:
        self.labdir = labdir
        self.record = labdir.read()
        self.lab: Lab | None = None
        self.publisher: Publisher | None = None
        self.shells: dict[str, ShellSession] = {}
        self.ops_lock = threading.Lock()
        self.stopping = threading.Event()
        self.healthy_capture: Capture | None = None  # security properties at up
        self.broken_capture: Capture | None = None  # ... right after the break
        self._catalog: Any = None
        self.healthy: LabSnapshot | None = None  # after up
        self.broken: LabSnapshot | None = None  # right after the break: what reset restores

    # -- building ------------------------------------------------------------------------------

    def build_lab(self) -> Lab:
        spec = load_lab(self.record["lab"])
        spec = apply_identity(spec, self.record.get("identity"), self.labdir.read_password())
        workdir = self.labdir.workdir
        shutil.rmtree(workdir, ignore_errors=True)  # a supervisor restarted on a left dir
        workdir.mkdir(parents=True, mode=0o700)
        nodes = build_nodes(spec, workdir)
        # whatever the backend records for `down` (namespaces, processes, folders) goes to
        # this lab's own state directory, which `rdplab down --name` sweeps
        os.environ[STATE_ENV] = str(self.labdir.net_state_dir)
        lab = backend_class(self.record["backend"])(spec, workdir, nodes)
        lab.start()
        return lab

    def entry(self) -> tuple[str, int]:
        """Where raw connections to the published port go: the gateway, else the host."""
        assert self.lab is not None
        if self.lab.spec.has_gateway:
            return ADDRESSES["gateway"], GATEWAY_PORT
        return ADDRESSES["host"], RDP_PORT

    def _connect(self, address: str, port: int, timeout: float) -> socket.socket:
        lab = self.lab
        if lab is None:
            raise ConnectionRefusedError("the lab is being rebuilt")
        return lab.connect(address, port, timeout)

    def _resolve(self, name: str) -> str | None:
        lab = self.lab
        if lab is None:
            return None
        return lab.client.client_settings().resolve(name)

    def start(self) -> None:
        self.lab = self.build_lab()
        result = check_lab(self.lab)
        if result["verdict"] != "fixed":
            raise RuntimeError(f"the healthy lab does not connect: {result['client_shows']} "
                               f"({result['symptom']})")
        self.healthy_capture = capture(self.lab)
        self.healthy = self.lab.snapshot("healthy")
        address, port = self.record["publish"]
        listener = bind_listener(address, int(port))
        self.publisher = Publisher(listener, self.entry(), self._connect, self._resolve).start()
        host, bound = self.publisher.address
        self.record.update(publish_bound=[host, bound], names=self.client_names())
        self.save()
        settings = self.lab.client.client_settings()
        (self.labdir.path / "lab-ca.pem").write_bytes(settings.trusted_ca_pem)
        write_rdp_file(self.labdir, self.record)

    def client_names(self) -> dict[str, Any]:
        """The names the lab's client connects by (mstsc's target and RD Gateway)."""
        assert self.lab is not None
        target, _ = self.lab.client_target()
        gateway = self.lab.client.client_settings().gateway
        if gateway and gateway.count(":") == 1:
            gateway = gateway.rsplit(":", 1)[0]
        user = self.lab.spec.user[0]
        return {"host": target, "gateway": gateway or None, "user": user,
                "domain": self.lab.spec.domain, "client": self.lab.client.computer_name}

    def save(self) -> None:
        current = self.labdir.read()
        current.update({k: v for k, v in self.record.items() if k != "state"})
        self.record = current
        self.labdir.write(current)

    # -- faults --------------------------------------------------------------------------------

    def catalog(self) -> Any:
        if self._catalog is None:
            from ..scenario.catalog import load_catalog

            self._catalog = load_catalog()
        return self._catalog

    def inject(self, fault_id: str) -> list[str]:
        assert self.lab is not None
        fault = self.catalog().faults.get(fault_id)
        if fault is None:
            raise UsageError(f"unknown fault {fault_id!r}")
        for requirement in fault.requires:
            why = self.lab.unsupported(requirement)
            if why:
                raise UsageError(f"fault {fault_id} {why}")
        try:
            steps = [apply_step(self.lab, step).line for step in fault.inject]
        except (FaultError, NotEmulated) as exc:
            raise UsageError(f"fault {fault_id} cannot be injected here: {exc}") from exc
        self.lab.sync()
        return steps

    def op_break(self, req: dict[str, Any]) -> dict[str, Any]:
        if self.record.get("fault"):
            raise UsageError("the lab is already broken; `rdplab reset` puts the fault back, "
                             "`rdplab down` + `up` gives a healthy lab")
        fault_id = str(req["fault"])
        steps = self.inject(fault_id)
        assert self.lab is not None
        self.broken = self.lab.snapshot(f"broken:{fault_id}")
        self.broken_capture = capture(self.lab)
        seen = check_lab(self.lab)
        self.record["fault"] = {"id": fault_id,
                                "hidden": bool(req.get("hidden")), "broken_at": time.time(),
                                "symptom": seen.get("symptom"),
                                "client_shows": seen.get("client_shows")}
        self.save()
        self.labdir.log_command({"kind": "break", "hidden": bool(req.get("hidden"))})
        return {"steps": steps, "reproduced": seen["verdict"] == "broken",
                "client_shows": seen["client_shows"]}

    def op_reset(self, req: dict[str, Any]) -> dict[str, Any]:
        """Back to the state right after the break (the lab contract's snapshot), or to the
        healthy lab when nothing was broken; shell sessions start afresh."""
        assert self.lab is not None
        target = self.broken if self.record.get("fault") else self.healthy
        assert target is not None
        self.shells.clear()
        self.lab.restore(target)
        check_lab(self.lab)  # the client's failed attempt, as after the break
        self.labdir.log_command({"kind": "reset"})
        return {"snapshot": target.describe(), "fault": bool(self.record.get("fault"))}

    # -- what students do ----------------------------------------------------------------------

    def node(self, role: str) -> Any:
        assert self.lab is not None
        if role not in self.lab.nodes:
            raise UsageError(f"the lab has no node {role!r}; nodes: {', '.join(self.lab.nodes)}")
        return self.lab.nodes[role]

    def op_exec(self, req: dict[str, Any]) -> dict[str, Any]:
        from ..pwsh.interpreter import run_source

        role, text, name = str(req["node"]), str(req["script"]), str(req.get("file", "<script>"))
        node = self.node(role)
        entry: dict[str, Any] = {"kind": "exec", "node": role, "file": name}
        try:
            result = run_source(text, node, name)
        except ScriptNotEmulated as exc:
            self.labdir.log_command({**entry, "ok": False, "error": str(exc)})
            return {"output": [], "errors": [str(exc)], "not_emulated": True, "exit": 1}
        except PwshError as exc:
            self.labdir.log_command({**entry, "ok": False, "error": str(exc)})
            return {"output": [], "errors": [str(exc)], "exit": 1}
        finally:
            assert self.lab is not None
            self.lab.sync()
        self.labdir.log_command({**entry, "ok": not result.errors})
        return {"output": result.output, "errors": result.errors, "rebooted": result.rebooted,
                "exit": result.exit_code}

    def op_shell(self, req: dict[str, Any]) -> dict[str, Any]:
        role, line = str(req["node"]), str(req["line"])
        node = self.node(role)
        session = self.shells.get(role)
        if session is None or session.node is not node:
            session = self.shells[role] = ShellSession(node)
        out = session.run_line(line)
        assert self.lab is not None
        self.lab.sync()
        if line.strip():
            self.labdir.log_command({"kind": "shell", "node": role, "line": line,
                                     "ok": not out["error"]})
        return out

    def op_check(self, req: dict[str, Any]) -> dict[str, Any]:
        assert self.lab is not None
        result = check_lab(self.lab, self.healthy_capture, self.broken_capture)
        by = str(req.get("by") or "student")
        self.labdir.log_command({"kind": "check", "verdict": result["verdict"], "by": by})
        return result

    def op_status(self, req: dict[str, Any]) -> dict[str, Any]:
        assert self.lab is not None
        return {"state": "broken" if self.record.get("fault") else "running",
                "pid": os.getpid(), "publish": self.record.get("publish_bound"),
                "nodes": list(self.lab.nodes),
                "connections": self.publisher.connections if self.publisher else 0}

    def op_stop(self, req: dict[str, Any]) -> dict[str, Any]:
        self.stopping.set()
        return {"stopping": True}

    # -- the control socket --------------------------------------------------------------------

    def handle(self, req: dict[str, Any]) -> dict[str, Any]:
        op = req.get("op")
        handler = getattr(self, f"op_{op}", None) if isinstance(op, str) and op.isalpha() else None
        if handler is None:
            return {"ok": False, "usage": True, "error": f"unknown request {op!r}"}
        try:
            with self.ops_lock:
                return {"ok": True, **handler(req)}
        except UsageError as exc:
            return {"ok": False, "usage": True, "error": str(exc)}
        except (KeyError, TypeError, ValueError) as exc:
            return {"ok": False, "usage": True, "error": f"bad request: {exc}"}
        except Exception as exc:
            log.exception("request %s failed", op)
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}

    def serve(self, server: socket.socket) -> None:
        server.settimeout(WATCH_INTERVAL)
        while not self.stopping.is_set():
            if not self._still_ours():
                log.warning("lab directory gone or taken over: stopping")
                return
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                try:
                    req = control.read_message(conn, 10.0)
                except (OSError, ValueError) as exc:
                    log.debug("bad control message: %s", exc)
                    continue
                reply = self.handle(req)
                try:
                    control.send_message(conn, reply)
                except (TypeError, ValueError) as exc:  # a reply that is not JSON: say so
                    log.exception("reply to %s not sendable", req.get("op"))
                    with contextlib.suppress(OSError):
                        control.send_message(conn, {"ok": False, "error": f"internal: {exc}"})
                except OSError:
                    pass  # the command went away; the lab stays up

    def _still_ours(self) -> bool:
        try:
            return int(self.labdir.read().get("supervisor", {}).get("pid", 0)) == os.getpid()
        except Exception:
            return False

    def close(self) -> None:
        publisher, self.publisher = self.publisher, None
        if publisher is not None:
            publisher.stop()
        lab, self.lab = self.lab, None
        if lab is not None:
            lab.close()


def _terminate(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    labdir = LabDir(Path(args[0]))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    pid = os.getpid()
    labdir.update(supervisor={"pid": pid, "start": process_start(pid)})
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    sup = Supervisor(labdir)
    server: socket.socket | None = None
    try:
        try:
            sup.start()
        except PublishError as exc:
            labdir.update(state="failed", error=str(exc), error_usage=True)
            return 2
        except Exception as exc:
            log.exception("the lab did not start")
            labdir.update(state="failed", error=f"{type(exc).__name__}: {exc}")
            return 1
        labdir.socket_path.unlink(missing_ok=True)
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            server.bind(str(labdir.socket_path))
        finally:
            os.umask(old)
        server.listen(16)
        labdir.update(state="running")
        sup.serve(server)
        return 0
    finally:
        if server is not None:
            server.close()
            labdir.socket_path.unlink(missing_ok=True)
        sup.close()
        with contextlib.suppress(Exception):
            if labdir.exists() and sup._still_ours():
                labdir.update(state="stopped")


if __name__ == "__main__":
    sys.exit(main())
