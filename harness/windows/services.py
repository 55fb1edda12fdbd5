"""Windows services the lab cares about, with the Service Control Manager's rules.

Stopping a service whose dependents run needs force (Restart-Service -Force; sc.exe fails with
1051), a disabled service does not start (1058), and every state change writes event 7036.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .eventlog import EventLog
from .journal import ActionJournal

# name -> (display name, account, depends on)
CATALOGUE: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "TermService": ("Remote Desktop Services", "NT AUTHORITY\\NETWORK SERVICE", ()),
    "SessionEnv": ("Remote Desktop Configuration", "LocalSystem", ()),
    "UmRdpService": ("Remote Desktop Services UserMode Port Redirector", "LocalSystem",
                     ("TermService",)),
    "W32Time": ("Windows Time", "NT AUTHORITY\\LocalService", ()),
}
START_TYPES = ("Automatic", "Manual", "Disabled")


class ServiceError(Exception):
    """A control request Windows refuses; `code` is the Win32 error sc.exe prints."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass
class Service:
    name: str
    display_name: str
    account: str
    start_type: str
    running: bool
    depends_on: tuple[str, ...]

    @property
    def status(self) -> str:
        return "Running" if self.running else "Stopped"

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "start_type": self.start_type, "account": self.account}


class ServiceManager:
    """The node's services; `on_start` hooks run after a service enters the running state."""

    def __init__(self, defaults: dict[str, dict[str, Any]], eventlog: EventLog,
                 journal: ActionJournal | None = None) -> None:
        self.eventlog = eventlog
        self.journal = journal if journal is not None else ActionJournal()
        self.on_start: dict[str, Callable[[], None]] = {}
        self.services: dict[str, Service] = {}
        for name, (display, account, deps) in CATALOGUE.items():
            conf = defaults.get(name, {"start_type": "Manual", "running": False})
            self.services[name.lower()] = Service(name, display, account, conf["start_type"],
                                                  bool(conf["running"]), deps)

    def install(self, name: str, display_name: str, account: str, start_type: str = "Automatic",
                running: bool = True, depends_on: tuple[str, ...] = ()) -> Service:
        """A service a role adds (the RD Gateway's TSGateway), as set up at role install."""
        service = Service(name, display_name, account, start_type, running, depends_on)
        self.services[name.lower()] = service
        self.journal.record("services", name, None, service.to_json())
        return service

    def find(self, name: str) -> Service | None:
        found = self.services.get(name.lower())
        if found is None:
            found = next((s for s in self.services.values()
                          if s.display_name.lower() == name.lower()), None)
        return found

    def get(self, name: str) -> Service:
        found = self.find(name)
        if found is None:
            raise ServiceError(1060, "The specified service does not exist as an installed "
                                     "service.")
        return found

    def is_running(self, name: str) -> bool:
        return self.get(name).running

    def dependents(self, name: str) -> list[Service]:
        return [s for s in self.services.values()
                if name.lower() in (d.lower() for d in s.depends_on)]

    def _set(self, service: Service, running: bool) -> None:
        service.running = running
        state = "running" if running else "stopped"
        self.eventlog.write(7036, f"The {service.display_name} service entered the {state} "
                                  "state.", level="Information")
        self.journal.record("services", service.name, "Stopped" if running else "Running",
                            service.status)

    def start(self, name: str) -> bool:
        """Start (and its dependencies first); False when it was already running."""
        service = self.get(name)
        if service.running:
            return False
        if service.start_type == "Disabled":
            raise ServiceError(1058, "The service cannot be started, either because it is "
                                     "disabled or because it has no enabled devices associated "
                                     "with it.")
        for dep in service.depends_on:
            self.start(dep)
        self._set(service, True)
        hook = self.on_start.get(service.name)
        if hook:
            hook()
        return True

    def stop(self, name: str, force: bool = False) -> bool:
        """Stop; with running dependents only when forced (they stop first)."""
        service = self.get(name)
        if not service.running:
            return False
        running_deps = [d for d in self.dependents(service.name) if d.running]
        if running_deps and not force:
            raise ServiceError(1051, f"Cannot stop service '{service.display_name} "
                                     f"({service.name})' because it has dependent services. "
                                     "It can only be stopped if the Force flag is set.")
        for dep in running_deps:
            self.stop(dep.name, force=True)
        self._set(service, False)
        return True

    def restart(self, name: str, force: bool = False) -> None:
        self.stop(name, force)
        self.start(name)

    def set_start_type(self, name: str, start_type: str) -> None:
        service = self.get(name)
        match = next((t for t in START_TYPES if t.lower() == start_type.lower()), None)
        if match is None:
            raise ServiceError(87, f"The parameter is incorrect: start type {start_type}")
        before, service.start_type = service.start_type, match
        self.journal.record("services", f"{service.name} (start type)", before, match)

    def shutdown(self) -> None:
        """All services stop at once, as at a reboot (no 7036 per service)."""
        for service in self.services.values():
            service.running = False

    def start_automatic(self) -> None:
        for service in self.services.values():
            if service.start_type == "Automatic" and not service.running:
                self.start(service.name)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return {s.name: s.to_json() for s in self.services.values()}
