"""Output, restart, DNS cache, NIC MTU, modules and Windows Update (PSWindowsUpdate) cmdlets.

Windows Update is not a script; the lab models it through the PSWindowsUpdate module's
`Install-WindowsUpdate` (and wusa.exe, see nat_misc): updates from the OS profile's catalogue
become pending and take effect at the next restart, as on Windows.
"""

from __future__ import annotations

from typing import Any

from .commands import P, as_int, as_list, as_str, cmdlet
from .objects import NicObject, get_prop, to_text

BUILTIN_MODULES = {"netsecurity", "nettcpip", "dnsclient", "microsoft.powershell.management",
                   "microsoft.powershell.utility", "microsoft.powershell.security", "pki"}


@cmdlet("Write-Host", P("Object", position=0, remaining=True), P("ForegroundColor"),
        P("BackgroundColor"), P("NoNewline", True), P("Separator"))
def write_host(ctx: Any, args: dict[str, Any]) -> None:
    ctx.out(to_text(args.get("Object", "")))


@cmdlet("Write-Output", P("InputObject", position=0, pipeline=True, remaining=True),
        P("NoEnumerate", True), aliases=("echo", "write"))
def write_output(ctx: Any, args: dict[str, Any]) -> list[Any]:
    return as_list(args.get("InputObject"))


def _stream(name: str, prefix: str) -> None:
    @cmdlet(name, P("Message", position=0, remaining=True))
    def run(ctx: Any, args: dict[str, Any]) -> None:
        ctx.out(prefix + to_text(args.get("Message", "")))


_stream("Write-Warning", "WARNING: ")
_stream("Write-Verbose", "")
_stream("Write-Information", "")


@cmdlet("Out-Null", P("InputObject", pipeline=True), collect=True)
def out_null(ctx: Any, args: dict[str, Any]) -> None:
    return None


@cmdlet("Start-Sleep", P("Seconds", position=0, aliases=("s",)), P("Milliseconds",
                                                                    aliases=("ms",)),
        aliases=("sleep",))
def start_sleep(ctx: Any, args: dict[str, Any]) -> None:
    ctx.effect(f"sleep {to_text(args.get('Seconds', args.get('Milliseconds', 0)))} "
               "(the model does not wait)")


@cmdlet("Get-Date")
def get_date(ctx: Any, args: dict[str, Any]) -> list[Any]:
    return [ctx.node.now()]


@cmdlet("Restart-Computer", P("ComputerName", position=0, aliases=("CN", "__SERVER")),
        P("Force", True), P("Wait", True), should_process=True)
def restart_computer(ctx: Any, args: dict[str, Any]) -> None:
    targets = [as_str(c).lower() for c in as_list(args.get("ComputerName"))]
    local = {"localhost", ".", ctx.node.computer_name.lower(), ctx.node.fqdn.lower()}
    if any(t not in local for t in targets):
        raise ctx.not_emulated("Restart-Computer -ComputerName <other node>",
                               "the sidecar's target decides which node runs the script")
    raise ctx.reboot("Restart-Computer")


@cmdlet("Clear-DnsClientCache", should_process=True)
def clear_dns(ctx: Any, args: dict[str, Any]) -> None:
    count = ctx.node.network.flush_dns()
    ctx.effect(f"DNS client cache cleared ({count} entries)")


def _nic(ctx: Any, alias: Any) -> Any:
    nic = ctx.node.network.nic(as_str(alias))
    if nic is None:
        raise ctx.fail("No MSFT_NetIPInterface objects found with property 'InterfaceAlias' "
                       f"equal to '{as_str(alias)}'.  Verify the value of the property and "
                       "retry.", "ObjectNotFound")
    return nic


@cmdlet("Get-NetIPInterface", P("InterfaceAlias", position=0, aliases=("ifAlias",)),
        P("AddressFamily"))
def get_ip_interface(ctx: Any, args: dict[str, Any]) -> list[Any]:
    if "InterfaceAlias" in args:
        return [NicObject(_nic(ctx, a)) for a in as_list(args["InterfaceAlias"])]
    return [NicObject(n) for n in ctx.node.network.nics.values()]


@cmdlet("Set-NetIPInterface", P("InterfaceAlias", position=0, aliases=("ifAlias",)),
        P("InputObject", pipeline=True), P("NlMtuBytes", aliases=("NlMtu",)),
        P("AddressFamily"), P("PolicyStore"), should_process=True)
def set_ip_interface(ctx: Any, args: dict[str, Any]) -> None:
    if "NlMtuBytes" not in args:
        raise ctx.not_emulated("Set-NetIPInterface without -NlMtuBytes")
    nics = [o.nic for o in as_list(args.get("InputObject")) if isinstance(o, NicObject)]
    nics += [_nic(ctx, a) for a in as_list(args.get("InterfaceAlias"))]
    persistent = as_str(args.get("PolicyStore", "PersistentStore")).lower() != "activestore"
    for nic in nics:
        mtu = as_int(args["NlMtuBytes"], "NlMtuBytes")
        ctx.node.network.set_mtu(nic.alias, mtu, persistent)
        ctx.effect(f"{nic.alias} MTU {mtu}" + ("" if persistent else " (active store only)"))


@cmdlet("Install-Module", P("Name", position=0, mandatory=True), P("Force", True),
        P("Scope"), P("AllowClobber", True), P("Repository"), P("SkipPublisherCheck", True),
        should_process=True)
def install_module(ctx: Any, args: dict[str, Any]) -> None:
    for name in as_list(args["Name"]):
        ctx.node.modules.add(as_str(name).lower())
        ctx.node.journal.record("powershell", f"module {as_str(name)}", None, "installed")
        ctx.effect(f"module {as_str(name)} installed")


@cmdlet("Import-Module", P("Name", position=0, mandatory=True), P("Force", True))
def import_module(ctx: Any, args: dict[str, Any]) -> None:
    for name in as_list(args["Name"]):
        key = as_str(name).lower()
        if key not in ctx.node.modules and key not in BUILTIN_MODULES:
            raise ctx.fail(f"The specified module '{as_str(name)}' was not loaded because no "
                           "valid module file was found in any module directory.",
                           "ResourceUnavailable")


@cmdlet("Install-WindowsUpdate", P("KBArticleID", aliases=("KB",)), P("AcceptAll", True),
        P("AutoReboot", True), P("IgnoreReboot", True), P("MicrosoftUpdate", True),
        P("Install", True), P("Category"), P("NotCategory"), P("IgnoreUserInput", True),
        aliases=("Get-WUInstall",))
def install_windows_update(ctx: Any, args: dict[str, Any]) -> None:
    if "pswindowsupdate" not in ctx.node.modules:
        raise ctx.script_error("The term 'Install-WindowsUpdate' is not recognized as a name of "
                               "a cmdlet, function, script file, or executable program. "
                               "(the PSWindowsUpdate module is not installed)")
    if not args.get("AcceptAll"):
        raise ctx.not_emulated("Install-WindowsUpdate without -AcceptAll",
                               "it prompts for each update")
    wanted = {as_str(k).upper() for k in as_list(args.get("KBArticleID"))}
    wanted = {k if k.startswith("KB") else "KB" + k for k in wanted}
    installed = []
    for update in ctx.node.patches.available():
        if wanted and update.kb.upper() not in wanted:
            continue
        if ctx.node.install_update(update.kb):
            installed.append(update.kb)
            ctx.effect(f"installed {update.kb} ({update.title}); effective after restart")
    if not installed:
        ctx.effect("no applicable updates")
        return
    if args.get("AutoReboot"):
        raise ctx.reboot("Install-WindowsUpdate -AutoReboot")
    ctx.out("Reboot is required, but do it manually.")


@cmdlet("Select-Object", P("Property", position=0), P("ExpandProperty"), P("First"), P("Last"),
        P("InputObject", pipeline=True), aliases=("select",), collect=True)
def select_object(ctx: Any, args: dict[str, Any]) -> list[Any]:
    items = as_list(args.get("InputObject"))
    if "First" in args:
        items = items[:as_int(args["First"], "First")]
    if "Last" in args:
        items = items[-as_int(args["Last"], "Last"):]
    if "ExpandProperty" in args:
        return [get_prop(i, as_str(args["ExpandProperty"])) for i in items]
    if "Property" in args:
        names = [as_str(n) for n in as_list(args["Property"])]
        return [{n: get_prop(i, n) for n in names} for i in items]
    return items


def _format(name: str, *extra: P) -> None:
    @cmdlet(name, P("Property", position=0), P("InputObject", pipeline=True), *extra,
            collect=True)
    def run(ctx: Any, args: dict[str, Any]) -> list[Any]:
        out = []
        for item in as_list(args.get("InputObject")):
            props = item if isinstance(item, dict) else getattr(item, "props", dict)()
            if "Property" in args:
                names = [as_str(n).lower() for n in as_list(args["Property"])]
                props = {k: v for k, v in props.items() if k.lower() in names}
            out.append("\n".join(f"{k} : {to_text(v)}" for k, v in props.items())
                       if props else to_text(item))
        return out


_format("Format-List")
_format("Format-Table", P("AutoSize", True))
