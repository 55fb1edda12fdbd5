"""Get-Service, Start-Service, Stop-Service, Restart-Service, Set-Service."""

from __future__ import annotations

import fnmatch
from typing import Any

from harness.windows.services import Service, ServiceError

from .commands import P, as_list, as_str, cmdlet
from .objects import ServiceObject

_NAME = P("Name", position=0, aliases=("ServiceName", "SN"), pipeline=False)
_INPUT = P("InputObject", pipeline=True)
_DISPLAY = P("DisplayName")


def _services(ctx: Any, args: dict[str, Any]) -> list[Service]:
    found: list[Service] = []
    manager = ctx.node.services
    wanted = [("name", n) for n in as_list(args.get("Name"))]
    wanted += [("display", n) for n in as_list(args.get("DisplayName"))]
    for item in as_list(args.get("InputObject")):
        if isinstance(item, ServiceObject):
            found.append(item.service)
        else:
            wanted.append(("name", as_str(item)))
    for kind, pattern in wanted:
        pattern = as_str(pattern)
        matches = [s for s in manager.services.values()
                   if fnmatch.fnmatchcase((s.name if kind == "name" else s.display_name).lower(),
                                          pattern.lower())]
        if not matches:
            what = "service name" if kind == "name" else "display name"
            raise ctx.fail(f"Cannot find any service with {what} '{pattern}'.", "ObjectNotFound")
        found.extend(matches)
    return found


@cmdlet("Get-Service", _NAME, _DISPLAY, P("InputObject", pipeline=True), aliases=("gsv",))
def get_service(ctx: Any, args: dict[str, Any]) -> list[Any]:
    if not any(k in args for k in ("Name", "DisplayName", "InputObject")):
        return [ServiceObject(s) for s in ctx.node.services.services.values()]
    return [ServiceObject(s) for s in _services(ctx, args)]


def _control(ctx: Any, service: Service, action: str, force: bool) -> None:
    manager = ctx.node.services
    label = f"'{service.display_name} ({service.name})'"
    try:
        if action == "start":
            changed = manager.start(service.name)
        elif action == "stop":
            changed = manager.stop(service.name, force)
        else:
            manager.restart(service.name, force)
            changed = True
    except ServiceError as exc:
        if exc.code == 1051:
            raise ctx.fail(f"Cannot stop service {label} because it has dependent services. "
                           "It can only be stopped if the Force flag is set.") from exc
        raise ctx.fail(f"Service {label} cannot be {'stopped' if action == 'stop' else 'started'}"
                       f" due to the following error: {exc.message}") from exc
    ctx.effect(f"{action} {service.name}: " + ("done" if changed else f"already {service.status}"))


def _make(name: str, action: str, extra: tuple[P, ...]) -> None:
    @cmdlet(name, _NAME, _INPUT, _DISPLAY, P("PassThru", True), *extra, should_process=True,
            aliases={"start": ("sasv",), "stop": ("spsv",)}.get(action, ()))
    def run(ctx: Any, args: dict[str, Any]) -> list[Any]:
        services = _services(ctx, args)
        if not services:
            raise ctx.fail(f"{name}: no service given (-Name or pipeline input).",
                           "InvalidArgument")
        for service in services:
            _control(ctx, service, action, bool(args.get("Force")))
        return [ServiceObject(s) for s in services] if args.get("PassThru") else []


_make("Start-Service", "start", ())
_make("Stop-Service", "stop", (P("Force", True), P("NoWait", True)))
_make("Restart-Service", "restart", (P("Force", True),))


@cmdlet("Set-Service", _NAME, _INPUT, _DISPLAY, P("StartupType", aliases=("StartMode", "ST")),
        P("Status"), P("PassThru", True), should_process=True)
def set_service(ctx: Any, args: dict[str, Any]) -> list[Any]:
    services = _services(ctx, args)
    for service in services:
        if "StartupType" in args:
            kind = as_str(args["StartupType"])
            kind = "Automatic" if kind.lower() == "automaticdelayedstart" else kind
            try:
                ctx.node.services.set_start_type(service.name, kind)
            except ServiceError as exc:
                raise ctx.fail(exc.message, "InvalidArgument") from exc
            ctx.effect(f"{service.name} start type {kind}")
        if "Status" in args:
            status = as_str(args["Status"]).lower()
            if status not in ("running", "stopped"):
                raise ctx.not_emulated(f"Set-Service -Status {status}")
            _control(ctx, service, "start" if status == "running" else "stop", False)
    return [ServiceObject(s) for s in services] if args.get("PassThru") else []
