"""icacls: /grant[:r], /deny, /remove[:g|:d], /reset, /inheritance:e|d|r, with /T /C /Q /L.

It acts on the model's ACL table (harness.windows.acl), the only authority on who may read a
key file. The lab assumes the administrator may always rewrite an ACL (as owner or through
SeTakeOwnership); Windows can refuse that when SYSTEM owns the file [open].
"""

from __future__ import annotations

import re
from typing import Any

from harness.windows.acl import SIMPLE_RIGHTS, SPECIFIC_RIGHTS, Ace, AclError, principal

from .commands import native

_GROUP = re.compile(r"\(([^)]*)\)|([A-Za-z]+)")
INHERIT_FLAGS = {"OI", "CI", "IO", "NP", "I"}


def parse_grant(spec: str, deny: bool = False) -> Ace:
    """'NT AUTHORITY\\NETWORK SERVICE:(R)' or 'Users:(OI)(CI)RX' -> Ace; ValueError if bad."""
    who, sep, perms = spec.rpartition(":")
    if not sep or not who:
        raise ValueError(spec)
    rights: set[str] = set()
    inheritable = False
    for group, bare in _GROUP.findall(perms):
        for token in (group or bare).upper().split(","):
            token = token.strip()
            if token in INHERIT_FLAGS:
                inheritable = inheritable or token in ("OI", "CI")
            elif token in SIMPLE_RIGHTS:
                rights |= SIMPLE_RIGHTS[token]
            elif token in SPECIFIC_RIGHTS:
                rights.add(SPECIFIC_RIGHTS[token])
            elif token == "N":
                continue
            else:
                raise ValueError(spec)
    if not rights and "N" not in perms.upper():
        raise ValueError(spec)
    return Ace(principal(who), frozenset(rights), deny, inheritable)


def _targets(ctx: Any, path: str, recurse: bool) -> list[str]:
    fs = ctx.node.fs
    found = fs.glob(path)
    out: list[str] = []
    for item in found:
        out.append(item)
        if recurse and fs.is_dir(item):
            for real in sorted(fs.real(item).rglob("*")):
                out.append(fs.win(real))
    return out


@native("icacls")
def icacls(ctx: Any, argv: list[str]) -> int:
    if not argv:
        ctx.out("ERROR: Invalid parameter.")
        return 87
    path, rest = argv[0], argv[1:]
    ops: list[tuple[str, Any]] = []
    flags: set[str] = set()
    i = 0
    try:
        while i < len(rest):
            opt = rest[i].lower()
            i += 1
            if opt in ("/t", "/c", "/q", "/l"):
                flags.add(opt)
            elif opt == "/reset":
                ops.append(("reset", None))
            elif opt.startswith("/inheritance:") and opt[-1] in "edr":
                ops.append(("inheritance", opt[-1]))
            elif opt in ("/grant", "/grant:r", "/deny"):
                specs = []
                while i < len(rest) and not rest[i].startswith("/"):
                    specs.append(parse_grant(rest[i], deny=opt == "/deny"))
                    i += 1
                ops.append(("grant:r" if opt == "/grant:r" else "grant", specs))
            elif opt in ("/remove", "/remove:g", "/remove:d"):
                who = []
                while i < len(rest) and not rest[i].startswith("/"):
                    who.append(principal(rest[i]))
                    i += 1
                ops.append((opt.lstrip("/"), who))
            else:
                raise ctx.not_emulated(f"icacls {opt}")
    except AclError as exc:
        ctx.out(f"{exc}\nSuccessfully processed 0 files; Failed processing 1 files")
        return 1332
    except ValueError as exc:
        ctx.out(f"Invalid parameter \"{exc}\"")
        return 87
    targets = _targets(ctx, path, "/t" in flags)
    if not targets:
        ctx.out(f"{path}: The system cannot find the file specified.\n"
                "Successfully processed 0 files; Failed processing 1 files")
        return 2
    acl = ctx.node.acl
    if not ops:
        for target in targets:
            ctx.out(target + " " + "\n".join(acl.text(target)))
        ctx.out(f"Successfully processed {len(targets)} files; Failed processing 0 files")
        return 0
    for target in targets:
        before = acl.text(target)
        for op, arg in ops:
            if op == "reset":
                acl.reset(target)
            elif op == "inheritance":
                acl.inheritance(target, arg)
            elif op in ("grant", "grant:r"):
                for ace in arg:
                    acl.grant(target, ace, replace_existing=op == "grant:r")
            else:
                for who in arg:
                    acl.remove(target, who, grants=op != "remove:d", denies=op != "remove:g")
        after = acl.text(target)
        if before != after:
            ctx.node.journal.record("acl", target, before, after)
        if "/q" not in flags:
            ctx.out(f"processed file: {target}")
    ctx.effect(f"icacls {' '.join(argv[1:])} on {len(targets)} item(s) under {targets[0]}")
    ctx.out(f"Successfully processed {len(targets)} files; Failed processing 0 files")
    return 0
