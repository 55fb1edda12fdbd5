"""netsh: interface ipv4 set/show subinterface, advfirewall firewall set/add/delete/show rule,
advfirewall set <profile> state. netsh matches contexts and commands by prefix, and a firewall
rule's `name=` by its display name, `group=` by its display group."""

from __future__ import annotations

from typing import Any

from harness.windows.firewall import FirewallRule

from .commands import native


def _is(token: str, word: str, shortest: int = 3) -> bool:
    token = token.lower()
    return token == word or (len(token) >= shortest and word.startswith(token))


def _pairs(args: list[str]) -> tuple[list[str], dict[str, str]]:
    loose, pairs = [], {}
    for arg in args:
        key, sep, value = arg.partition("=")
        if sep:
            pairs[key.lower()] = value.strip('"')
        else:
            loose.append(arg)
    return loose, pairs


def _subinterface(ctx: Any, verb: str, args: list[str]) -> int:
    network = ctx.node.network
    if verb == "show":
        ctx.out("   MTU  MediaSenseState   Bytes In  Bytes Out  Interface\n"
                "------  ---------------  ---------  ---------  -------------")
        for nic in network.nics.values():
            ctx.out(f"{nic.mtu:>6}                1          0          0  {nic.alias}")
        return 0
    loose, pairs = _pairs(args)
    alias = pairs.get("interface") or (loose[0] if loose else "")
    unknown = set(pairs) - {"interface", "mtu", "store"}
    if unknown:
        raise ctx.not_emulated(f"netsh interface ipv4 set subinterface {sorted(unknown)[0]}=")
    nic = network.nic(alias)
    if nic is None:
        ctx.out("Element not found.")
        return 1
    if "mtu" not in pairs:
        ctx.out("One or more essential parameters were not entered.")
        return 1
    try:
        mtu = int(pairs["mtu"])
    except ValueError:
        ctx.out(f"The parameter is incorrect. (mtu={pairs['mtu']})")
        return 1
    store = pairs.get("store", "persistent").lower()
    if store not in ("active", "persistent"):
        ctx.out("The parameter is incorrect.")
        return 1
    network.set_mtu(nic.alias, mtu, persistent=store == "persistent")
    ctx.effect(f"{nic.alias} MTU {mtu} (store={store})")
    ctx.out("Ok.")
    return 0


def _select(ctx: Any, pairs: dict[str, str]) -> list[FirewallRule]:
    firewall = ctx.node.firewall
    name, group = pairs.get("name"), pairs.get("group")
    rules = list(firewall.rules.values())
    if name is not None and name.lower() != "all":
        rules = [r for r in rules if r.display_name.lower() == name.lower()]
    if group is not None:
        rules = [r for r in rules if r.display_group.lower() == group.lower()]
    if "dir" in pairs:
        want = "Inbound" if pairs["dir"].lower() == "in" else "Outbound"
        rules = [r for r in rules if r.direction == want]
    if "protocol" in pairs:
        rules = [r for r in rules if r.protocol.lower() == pairs["protocol"].lower()]
    if "localport" in pairs:
        rules = [r for r in rules if [str(p) for p in r.ports] == pairs["localport"].split(",")]
    return rules


def _firewall_rule(ctx: Any, verb: str, args: list[str]) -> int:
    if verb == "set":
        lower = [a.lower() for a in args]
        if "new" not in lower:
            ctx.out("One or more essential parameters were not entered.")
            return 1
        cut = lower.index("new")
        _, where = _pairs(args[:cut])
        _, new = _pairs(args[cut + 1:])
        unknown = set(new) - {"enable", "action", "localport"}
        if unknown:
            raise ctx.not_emulated(f"netsh advfirewall firewall set rule new {sorted(unknown)[0]}=")
        if "name" not in where and "group" not in where:
            ctx.out("One or more essential parameters were not entered.")
            return 1
        rules = _select(ctx, where)
        if not rules:
            ctx.out("No rules match the specified criteria.")
            return 1
        for rule in rules:
            if "enable" in new:
                ctx.node.firewall.set_enabled(rule, new["enable"].lower() == "yes")
            if "action" in new:
                ctx.node.firewall.set_action(rule, new["action"])
            if "localport" in new:
                rule.ports = tuple(int(p) for p in new["localport"].split(","))
            ctx.effect(f"rule {rule.name} ({rule.display_name}) enabled={rule.enabled} "
                       f"action={rule.action}")
        ctx.out(f"\nUpdated {len(rules)} rule(s).\nOk.")
        return 0
    _, pairs = _pairs(args)
    if verb == "add":
        if "name" not in pairs or "dir" not in pairs or "action" not in pairs:
            ctx.out("One or more essential parameters were not entered.")
            return 1
        ports = tuple(int(p) for p in pairs.get("localport", "").split(",") if p.isdigit())
        rule = ctx.node.firewall.add_rule(FirewallRule(
            f"netsh-{pairs['name']}-{len(ctx.node.firewall.rules)}", pairs["name"],
            protocol=pairs.get("protocol", "Any").upper(), ports=ports,
            action="Block" if pairs["action"].lower() == "block" else "Allow",
            direction="Inbound" if pairs["dir"].lower() == "in" else "Outbound"))
        ctx.effect(f"new rule {rule.display_name}: {rule.direction} {rule.protocol} "
                   f"{list(rule.ports) or 'Any'} {rule.action}")
        ctx.out("Ok.")
        return 0
    rules = _select(ctx, pairs)
    if not rules:
        ctx.out("No rules match the specified criteria.")
        return 1
    if verb == "delete":
        for rule in rules:
            ctx.node.firewall.remove_rule(rule)
            ctx.effect(f"removed rule {rule.display_name}")
        ctx.out(f"\nDeleted {len(rules)} rule(s).\nOk.")
        return 0
    for rule in rules:  # show
        ctx.out(f"Rule Name: {rule.display_name}\nEnabled: {'Yes' if rule.enabled else 'No'}\n"
                f"Direction: {'In' if rule.direction == 'Inbound' else 'Out'}\n"
                f"Grouping: {rule.display_group}\nProtocol: {rule.protocol}\n"
                f"LocalPort: {','.join(map(str, rule.ports)) or 'Any'}\nAction: {rule.action}\n")
    ctx.out("Ok.")
    return 0


@native("netsh")
def netsh(ctx: Any, argv: list[str]) -> int:
    words = list(argv)
    if len(words) >= 4 and _is(words[0], "interface") and words[1].lower() in ("ipv4", "ip") \
            and words[2].lower() in ("set", "show") and _is(words[3], "subinterfaces", 6):
        return _subinterface(ctx, words[2].lower(), words[4:])
    if len(words) >= 4 and _is(words[0], "advfirewall") and _is(words[1], "firewall") \
            and words[2].lower() in ("set", "add", "delete", "show") and _is(words[3], "rule"):
        return _firewall_rule(ctx, words[2].lower(), words[4:])
    if len(words) == 5 and _is(words[0], "advfirewall") and words[1].lower() == "set" \
            and words[3].lower() == "state":
        profile = words[2].lower()
        if profile not in ("allprofiles", "currentprofile", "publicprofile", "privateprofile",
                           "domainprofile"):
            ctx.out("The following command was not found: " + " ".join(argv))
            return 1
        if profile in ("privateprofile", "domainprofile"):
            ctx.effect(f"{profile} is not the active (Public) profile: no change")
        else:
            ctx.node.firewall.set_state(words[4].lower() == "on")
            ctx.effect(f"firewall {words[4].lower()}")
        ctx.out("Ok.")
        return 0
    if [w.lower() for w in words] == ["winsock", "reset"]:
        ctx.node.network.reset_winsock()
        ctx.effect("Winsock catalog reset (takes effect at the next restart)")
        ctx.out("\nSucessfully reset the Winsock Catalog.\nYou must restart the computer in "
                "order to complete the reset.\n")
        return 0
    raise ctx.not_emulated("netsh " + " ".join(argv[:4]))
