"""w32tm, ipconfig, shutdown, wusa, sc.exe and net: their messages and exit codes."""

from __future__ import annotations

import re
from typing import Any

from harness.windows.registry import W32TIME_PARAMETERS, RegType
from harness.windows.services import Service, ServiceError

from .commands import native

_SYNC_TYPES = {"manual": "NTP", "domhier": "NT5DS", "all": "AllSync", "no": "NoSync"}


@native("w32tm")
def w32tm(ctx: Any, argv: list[str]) -> int:
    opts = [a.lower() for a in argv]
    node = ctx.node
    if any(o.startswith("/computer") for o in opts):
        raise ctx.not_emulated("w32tm /computer:", "remote computers")
    if opts and opts[0] == "/resync":
        if set(opts[1:]) - {"/force", "/nowait", "/rediscover"}:
            raise ctx.not_emulated("w32tm " + " ".join(argv))
        done, message = node.resync_time()
        ctx.out("Sending resync command to local computer\n" + message)
        ctx.effect(f"w32tm /resync: {message}")
        return 0 if done else 1
    if opts and opts[0] == "/config":
        for arg in argv[1:]:
            key, _, value = arg.partition(":")
            key = key.lower()
            if key == "/manualpeerlist":
                node.registry.set(W32TIME_PARAMETERS, "NtpServer", value.strip('"'), RegType.REG_SZ)
            elif key == "/syncfromflags" and value.lower() in _SYNC_TYPES:
                node.registry.set(W32TIME_PARAMETERS, "Type", _SYNC_TYPES[value.lower()],
                                  RegType.REG_SZ)
            elif key not in ("/update", "/reliable"):
                raise ctx.not_emulated(f"w32tm /config {key}")
        if "/update" in opts and not node.services.is_running("W32Time"):
            ctx.out("The following error occurred: The service has not been started. "
                    "(0x80070426)")
            return 1
        ctx.effect("w32tm configuration written")
        ctx.out("The command completed successfully.")
        return 0
    if opts[:2] in (["/query", "/status"], ["/query", "/source"]):
        if not node.services.is_running("W32Time"):
            ctx.out("The following error occurred: The service has not been started. "
                    "(0x80070426)")
            return 1
        source = node.registry.value(W32TIME_PARAMETERS, "NtpServer", "")
        ctx.out(f"Source: {source}\nPhase Offset: {-node.network.clock_offset:.7f}s")
        return 0
    raise ctx.not_emulated("w32tm " + " ".join(argv[:2]))


@native("ipconfig")
def ipconfig(ctx: Any, argv: list[str]) -> int:
    opts = [a.lower() for a in argv]
    network = ctx.node.network
    if opts == ["/flushdns"]:
        count = network.flush_dns()
        ctx.effect(f"DNS resolver cache flushed ({count} entries)")
        ctx.out("\nWindows IP Configuration\n\nSuccessfully flushed the DNS Resolver Cache.")
        return 0
    if opts in ([], ["/all"]):
        ctx.out("\nWindows IP Configuration\n")
        for nic in network.nics.values():
            ctx.out(f"Ethernet adapter {nic.alias}:\n\n   IPv4 Address. . . . . . . . . . . : "
                    f"{', '.join(nic.addresses) or '(none)'}\n")
        return 0
    if opts == ["/displaydns"]:
        for name, address in network.dns_cache.items():
            ctx.out(f"    {name}\n    ----------------------------------------\n"
                    f"    A (Host) Record . . . : {address}\n")
        return 0
    if opts == ["/registerdns"]:
        # Dynamic update: the node's A record on its DNS server now names its current address.
        address = network.primary_address()
        if address:
            network.set_dns_record(ctx.node.fqdn, address)
            ctx.effect(f"DNS A record {ctx.node.fqdn} -> {address} registered")
        network.flush_dns()
        ctx.out("\nWindows IP Configuration\n\nRegistration of the DNS resource records for all "
                "adapters of this computer has been initiated. Any errors will be reported in "
                "the Event Viewer in 15 minutes.")
        return 0
    raise ctx.not_emulated("ipconfig " + " ".join(argv))


@native("shutdown")
def shutdown(ctx: Any, argv: list[str]) -> int:
    opts = [a.lower() for a in argv]
    if "/a" in opts:
        ctx.out("Unable to abort the system shutdown because no shutdown was in progress.(1116)")
        return 1116
    if "/s" in opts or "/p" in opts or "/h" in opts:
        raise ctx.not_emulated("shutdown /s", "the lab cannot power a node back on")
    if "/r" not in opts and "/g" not in opts:
        raise ctx.not_emulated("shutdown " + " ".join(argv))
    raise ctx.reboot("shutdown " + " ".join(argv))


@native("wusa")
def wusa(ctx: Any, argv: list[str]) -> int:
    """The .msu named on the command line is taken as downloaded (the model has no file)."""
    opts = [a.lower() for a in argv]
    if "/quiet" not in opts:
        raise ctx.not_emulated("wusa without /quiet", "interactive installer")
    node = ctx.node
    if "/uninstall" in opts:
        kb = next((o.split(":", 1)[1] for o in opts if o.startswith("/kb:")), "")
        node.uninstall_update("KB" + kb.removeprefix("kb").upper())
        ctx.effect(f"uninstalled KB{kb}")
        return 0 if "/norestart" in opts else 3010
    package = next((a for a in argv if a.lower().endswith(".msu")), None)
    match = re.search(r"kb(\d+)", package or "", re.IGNORECASE)
    if match is None:
        raise ctx.not_emulated("wusa " + " ".join(argv))
    kb = "KB" + match.group(1)
    if kb in node.patches.installed + node.patches.pending:
        return 2359302  # WU_S_ALREADY_INSTALLED
    if not node.install_update(kb):
        return 2149842967  # WU_E_NOT_APPLICABLE
    ctx.effect(f"installed {kb}; effective after restart")
    if "/norestart" in opts:
        return 3010  # ERROR_SUCCESS_REBOOT_REQUIRED
    raise ctx.reboot(f"wusa {kb}")


def _find_service(ctx: Any, name: str) -> Service | None:
    return ctx.node.services.find(name)


_START_TYPES = {"auto": "Automatic", "demand": "Manual", "disabled": "Disabled",
                "delayed-auto": "Automatic"}


@native("sc")
def sc(ctx: Any, argv: list[str]) -> int:
    if len(argv) < 2 or argv[0].startswith("\\\\"):
        raise ctx.not_emulated("sc.exe " + " ".join(argv))
    verb, name = argv[0].lower(), argv[1]
    service = _find_service(ctx, name)
    if service is None or service.name.lower() != name.lower():
        ctx.out("[SC] OpenService FAILED 1060:\n\nThe specified service does not exist as an "
                "installed service.")
        return 1060
    manager = ctx.node.services
    try:
        if verb in ("query", "queryex"):
            ctx.out(f"SERVICE_NAME: {service.name}\n        STATE              : "
                    f"{4 if service.running else 1}  {'RUNNING' if service.running else 'STOPPED'}")
            return 0
        if verb == "start":
            if not manager.start(service.name):
                ctx.out("[SC] StartService FAILED 1056:\n\nAn instance of the service is already "
                        "running.")
                return 1056
            ctx.effect(f"started {service.name}")
            ctx.out(f"SERVICE_NAME: {service.name}\n        STATE              : 2  START_PENDING")
            return 0
        if verb == "stop":
            if not service.running:
                ctx.out("[SC] ControlService FAILED 1062:\n\nThe service has not been started.")
                return 1062
            manager.stop(service.name, force=False)
            ctx.effect(f"stopped {service.name}")
            ctx.out(f"SERVICE_NAME: {service.name}\n        STATE              : 3  STOP_PENDING")
            return 0
        if verb == "config":
            rest = [a.lower() for a in argv[2:]]
            if len(rest) != 2 or rest[0] != "start=" or rest[1] not in _START_TYPES:
                ctx.out("DESCRIPTION:\n        Modifies a service entry in the registry and "
                        "Service Database.\nUSAGE:\n        sc <server> config [service name] "
                        "<option1> <option2>...\n(option= and its value are separate arguments)")
                return 1639
            manager.set_start_type(service.name, _START_TYPES[rest[1]])
            ctx.effect(f"{service.name} start type {_START_TYPES[rest[1]]}")
            ctx.out("[SC] ChangeServiceConfig SUCCESS")
            return 0
    except ServiceError as exc:
        messages = {1051: "A stop control has been sent to a service that other running "
                          "services are dependent on."}
        action = "ControlService" if verb == "stop" else "StartService"
        ctx.out(f"[SC] {action} FAILED {exc.code}:\n\n{messages.get(exc.code, exc.message)}")
        return exc.code
    raise ctx.not_emulated(f"sc.exe {verb}")


@native("net")
def net(ctx: Any, argv: list[str]) -> int:
    """net start|stop <service> [/y]: without /y, stopping a service with running dependents
    asks (Y/N) and the unattended default is No."""
    words = [a for a in argv if a.lower() != "/y"]
    if len(words) < 2 or words[0].lower() not in ("start", "stop"):
        raise ctx.not_emulated("net " + " ".join(argv[:2]))
    verb = words[0].lower()
    service = _find_service(ctx, " ".join(words[1:]))
    if service is None:
        ctx.out("The service name is invalid.\n\nMore help is available by typing NET HELPMSG "
                "2185.")
        return 2
    manager = ctx.node.services
    display = service.display_name
    try:
        if verb == "start":
            if not manager.start(service.name):
                ctx.out("The requested service has already been started.\n\nMore help is "
                        "available by typing NET HELPMSG 2182.")
                return 2
            ctx.effect(f"started {service.name}")
            ctx.out(f"The {display} service is starting.\nThe {display} service was started "
                    "successfully.")
            return 0
        if not service.running:
            ctx.out(f"The {display} service is not started.\n\nMore help is available by typing "
                    "NET HELPMSG 3521.")
            return 2
        running_deps = [d for d in manager.dependents(service.name) if d.running]
        if running_deps and "/y" not in (a.lower() for a in argv):
            ctx.out(f"The following services are dependent on the {display} service.\n"
                    f"Stopping the {display} service will also stop these services.\n\n   "
                    + "\n   ".join(d.display_name for d in running_deps)
                    + "\n\nDo you want to continue this operation? (Y/N) [N]: \n"
                    "You chose not to continue.")
            return 2
        manager.stop(service.name, force=True)
        ctx.effect(f"stopped {service.name}")
        ctx.out(f"The {display} service is stopping.\nThe {display} service was stopped "
                "successfully.")
        return 0
    except ServiceError as exc:
        ctx.out(f"System error {exc.code} has occurred.\n\n{exc.message}")
        return 2
