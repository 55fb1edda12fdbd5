"""reg.exe add / delete / query, with its messages and exit codes.

reg prompts before overwriting or deleting without /f; the lab runs non-interactively, so the
prompt reads end-of-input and the operation is cancelled (exit 1), which is what happens when a
script is run unattended.
"""

from __future__ import annotations

from typing import Any

from harness.windows.registry import RegistryError, RegType, canonical, coerce

from .commands import native

OK = "The operation completed successfully."
NOT_FOUND = "ERROR: The system was unable to find the specified registry key or value."


def _options(argv: list[str]) -> tuple[list[str], dict[str, str | bool]]:
    positional: list[str] = []
    opts: dict[str, str | bool] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg[:1] in "/-" and len(arg) > 1:
            name = arg[1:].lower()
            if name in ("v", "t", "d", "s", "se") and i + 1 < len(argv):
                opts[name] = argv[i + 1]
                i += 2
                continue
            opts[name] = True
        else:
            positional.append(arg)
        i += 1
    return positional, opts


def _show(value: Any) -> str:
    data = value.data
    if value.type in (RegType.REG_DWORD, RegType.REG_QWORD):
        shown = hex(data)
    elif isinstance(data, bytes):
        shown = data.hex().upper()
    elif isinstance(data, tuple):
        shown = "\\0".join(data)
    else:
        shown = str(data)
    return f"    {value.name or '(Default)'}    {value.type}    {shown}"


@native("reg")
def reg(ctx: Any, argv: list[str]) -> int:
    if not argv:
        ctx.out("ERROR: Invalid syntax.")
        return 1
    verb, rest = argv[0].lower(), argv[1:]
    if verb not in ("add", "delete", "query"):
        raise ctx.not_emulated(f"reg {verb}")
    positional, opts = _options(rest)
    unknown = set(opts) - {"v", "ve", "va", "t", "d", "s", "f", "reg:64", "reg:32"}
    if unknown:
        raise ctx.not_emulated(f"reg {verb} /{sorted(unknown)[0]}")
    if len(positional) != 1:
        ctx.out(f"ERROR: Invalid syntax.\nType \"REG {verb.upper()} /?\" for usage.")
        return 1
    try:
        key = canonical(positional[0])
    except RegistryError:
        ctx.out(f"ERROR: Invalid key name.\nType \"REG {verb.upper()} /?\" for usage.")
        return 1
    name = "" if opts.get("ve") else opts.get("v")
    registry = ctx.node.registry
    if verb == "query":
        if not registry.key_exists(key):
            ctx.out(NOT_FOUND)
            return 1
        values = registry.values(key)
        if isinstance(name, str):
            values = [v for v in values if v.name.lower() == name.lower()]
            if not values:
                ctx.out(NOT_FOUND)
                return 1
        ctx.out("\n".join([key, *(_show(v) for v in values)]))
        return 0
    if verb == "delete":
        if not registry.key_exists(key) or (isinstance(name, str)
                                            and registry.get(key, name) is None):
            ctx.out(NOT_FOUND)
            return 1
        if not opts.get("f"):
            ctx.out("Permanently delete the registry value (Yes/No)? \nThe operation was "
                    "canceled by the user.")
            return 1
        if isinstance(name, str):
            registry.delete_value(key, name)
            ctx.effect(f"deleted {key}\\{name}")
        elif opts.get("va"):
            for value in registry.values(key):
                registry.delete_value(key, value.name)
            ctx.effect(f"deleted all values of {key}")
        else:
            registry.delete_key(key)
            ctx.effect(f"deleted key {key}")
        ctx.out(OK)
        return 0
    # add
    if not isinstance(name, str):
        registry.create_key(key)
        ctx.effect(f"created key {key}")
        ctx.out(OK)
        return 0
    kind_text = str(opts.get("t", "REG_SZ")).upper()
    if kind_text not in RegType.__members__:
        ctx.out(f"ERROR: Invalid syntax.\nType \"REG ADD /?\" for usage.  ({kind_text})")
        return 1
    kind = RegType(kind_text)
    raw = opts.get("d", "0" if kind in (RegType.REG_DWORD, RegType.REG_QWORD) else "")
    try:
        data = coerce(kind, str(raw))
    except RegistryError:
        ctx.out("ERROR: Invalid syntax.\nType \"REG ADD /?\" for usage.")
        return 1
    if registry.get(key, name) is not None and not opts.get("f"):
        ctx.out(f"Value {name} exists, overwrite(Yes/No)? \nThe operation was canceled by the "
                "user.")
        return 1
    registry.set(key, name, data, kind)
    ctx.effect(f"{key}\\{name} = {data!r} ({kind})")
    ctx.out(OK)
    return 0
