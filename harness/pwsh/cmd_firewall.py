"""NetSecurity cmdlets: Get/Enable/Disable/Set/New/Remove-NetFirewallRule and
Set-NetFirewallProfile."""

from __future__ import annotations

from typing import Any

from harness.windows.firewall import FirewallRule

from .commands import P, as_bool, as_int, as_list, as_str, cmdlet
from .objects import FirewallRuleObject

SELECTORS = (P("Name", position=0, aliases=("ID",)), P("DisplayName"), P("DisplayGroup"),
             P("Group"), P("InputObject", pipeline=True))


def _rules(ctx: Any, args: dict[str, Any], all_if_none: bool = False) -> list[FirewallRule]:
    firewall = ctx.node.firewall
    found: list[FirewallRule] = []
    if "InputObject" in args:
        found += [o.rule for o in as_list(args["InputObject"]) if isinstance(o, FirewallRuleObject)]
    selectors = {"Name": "name", "DisplayName": "display_name", "DisplayGroup": "display_group",
                 "Group": "group"}
    given = [(k, v) for k, v in selectors.items() if k in args]
    for param, field in given:
        for value in as_list(args[param]):
            matches = firewall.find(**{field: as_str(value)})
            if not matches:
                raise ctx.fail(f"No MSFT_NetFirewallRule objects found with property '{param}' "
                               f"equal to '{as_str(value)}'.  Verify the value of the property "
                               "and retry.", "ObjectNotFound")
            found += [r for r in matches if r not in found]
    if not given and "InputObject" not in args and all_if_none:
        found = list(firewall.rules.values())
    return found


@cmdlet("Get-NetFirewallRule", *SELECTORS[:-1], P("Enabled"), P("Direction"), P("Action"))
def get_rule(ctx: Any, args: dict[str, Any]) -> list[Any]:
    rules = _rules(ctx, args, all_if_none=True)
    if "Enabled" in args:
        want = as_bool(args["Enabled"], "Enabled")
        rules = [r for r in rules if r.enabled == want]
    if "Direction" in args:
        rules = [r for r in rules if r.direction.lower() == as_str(args["Direction"]).lower()]
    if "Action" in args:
        rules = [r for r in rules if r.action.lower() == as_str(args["Action"]).lower()]
    return [FirewallRuleObject(r) for r in rules]


def _toggle(name: str, enabled: bool) -> None:
    @cmdlet(name, *SELECTORS, P("PassThru", True), should_process=True)
    def run(ctx: Any, args: dict[str, Any]) -> list[Any]:
        rules = _rules(ctx, args)
        for rule in rules:
            ctx.node.firewall.set_enabled(rule, enabled)
            ctx.effect(f"rule {rule.name} ({rule.display_name}) enabled={enabled}")
        return [FirewallRuleObject(r) for r in rules] if args.get("PassThru") else []


_toggle("Enable-NetFirewallRule", True)
_toggle("Disable-NetFirewallRule", False)


def _ports(ctx: Any, value: Any) -> tuple[int, ...]:
    ports: list[int] = []
    for item in as_list(value):
        text = as_str(item)
        if text.lower() == "any":
            return ()
        for part in text.split(","):
            if "-" in part:
                raise ctx.not_emulated("port ranges")
            ports.append(as_int(part, "LocalPort"))
    return tuple(ports)


@cmdlet("Set-NetFirewallRule", *SELECTORS, P("Enabled"), P("Action"), P("LocalPort"),
        P("Profile"), P("PassThru", True), should_process=True)
def set_rule(ctx: Any, args: dict[str, Any]) -> list[Any]:
    rules = _rules(ctx, args)
    for rule in rules:
        if "Enabled" in args:
            ctx.node.firewall.set_enabled(rule, as_bool(args["Enabled"], "Enabled"))
        if "Action" in args:
            ctx.node.firewall.set_action(rule, as_str(args["Action"]))
        if "LocalPort" in args:
            before, rule.ports = rule.ports, _ports(ctx, args["LocalPort"])
            ctx.node.journal.record("firewall", f"{rule.name} (ports)", list(before),
                                    list(rule.ports))
        ctx.effect(f"rule {rule.name}: enabled={rule.enabled} action={rule.action} "
                   f"ports={list(rule.ports) or 'Any'}")
    return [FirewallRuleObject(r) for r in rules] if args.get("PassThru") else []


@cmdlet("New-NetFirewallRule", P("DisplayName", mandatory=True), P("Name"), P("Direction"),
        P("Protocol"), P("LocalPort"), P("RemotePort"), P("RemoteAddress"), P("Action"),
        P("Profile"), P("Group"), P("Enabled"), P("Description"), P("Program"), P("Service"),
        should_process=True)
def new_rule(ctx: Any, args: dict[str, Any]) -> list[Any]:
    display = as_str(args["DisplayName"])
    name = as_str(args.get("Name") or "{" + display + "}")
    if ctx.node.firewall.find(name=name):
        raise ctx.fail(f"Cannot create a file when that file already exists. (rule {name})",
                       "ResourceExists")
    rule = FirewallRule(
        name, display, display_group=as_str(args.get("Group", "")),
        group=as_str(args.get("Group", "")), protocol=as_str(args.get("Protocol", "Any")),
        ports=_ports(ctx, args.get("LocalPort", "Any")),
        action="Block" if as_str(args.get("Action", "Allow")).lower() == "block" else "Allow",
        enabled=as_bool(args.get("Enabled", True), "Enabled"),
        direction="Outbound" if as_str(args.get("Direction", "Inbound")).lower() == "outbound"
        else "Inbound",
        program=as_str(args["Program"]) if "Program" in args else None,
        service=as_str(args["Service"]) if "Service" in args else None,
        remote_ports=_ports(ctx, args.get("RemotePort", "Any")),
        remote_addresses=tuple(a for a in (as_str(v).strip() for v in
                                           as_list(args.get("RemoteAddress", "Any")))
                               if a.lower() != "any"))
    ctx.node.firewall.add_rule(rule)
    remote = ""
    if rule.remote_ports or rule.remote_addresses:
        remote = (f" to {list(rule.remote_addresses) or 'Any'} port "
                  f"{list(rule.remote_ports) or 'Any'}")
    ctx.effect(f"new rule {rule.name}: {rule.direction} {rule.protocol} "
               f"{list(rule.ports) or 'Any'}{remote} {rule.action}")
    return [FirewallRuleObject(rule)]


@cmdlet("Remove-NetFirewallRule", *SELECTORS, should_process=True)
def remove_rule(ctx: Any, args: dict[str, Any]) -> None:
    for rule in _rules(ctx, args):
        ctx.node.firewall.remove_rule(rule)
        ctx.effect(f"removed rule {rule.name}")


@cmdlet("Set-NetFirewallProfile", P("Profile", position=0, aliases=("Name",)), P("Enabled"),
        P("DefaultOutboundAction"), P("All", True), should_process=True)
def set_profile(ctx: Any, args: dict[str, Any]) -> None:
    """The model keeps one state for the profiles; the lab's nodes are on the Public one."""
    profiles = {as_str(p).lower() for p in as_list(args.get("Profile"))}
    if "Enabled" not in args and "DefaultOutboundAction" not in args:
        raise ctx.not_emulated("Set-NetFirewallProfile without -Enabled or "
                               "-DefaultOutboundAction")
    if args.get("All") or not profiles or "public" in profiles or "any" in profiles:
        if "Enabled" in args:
            state = as_bool(args["Enabled"], "Enabled")
            ctx.node.firewall.set_state(state)
            ctx.effect(f"firewall {'on' if state else 'off'}")
        if "DefaultOutboundAction" in args:
            action = as_str(args["DefaultOutboundAction"])
            if action.lower() not in ("allow", "block", "notconfigured"):
                raise ctx.fail(f"Cannot convert value \"{action}\" to type \"Action\".",
                               "InvalidArgument")
            ctx.node.firewall.set_default_outbound("Block" if action.lower() == "block"
                                                   else "Allow")
            ctx.effect(f"default outbound action {ctx.node.firewall.default_outbound}")
    else:
        ctx.effect(f"profiles {sorted(profiles)} are not the active (Public) profile: no change")
