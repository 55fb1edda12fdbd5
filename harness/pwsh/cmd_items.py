"""Item cmdlets on the Registry, Cert:, C: and RDS: providers: *-ItemProperty, *-Item,
Get-ChildItem (the RDS: drive is in cmd_rds)."""

from __future__ import annotations

import fnmatch
from typing import Any

from harness.windows.filesystem import FsError
from harness.windows.registry import PS_TYPE_NAMES, RegistryError, RegType, split_path

from . import cmd_rds
from .commands import P, as_list, as_str, cmdlet
from .errors import CmdletError, ScriptError
from .objects import (
    CertObject,
    FileObject,
    ItemPropertyObject,
    RegistryKeyObject,
)
from .providers import ProviderPath, UnsupportedPath, resolve

_PATH = P("Path", position=0, pipeline=True, aliases=("LiteralPath", "PSPath", "LP"))


def _paths(ctx: Any, args: dict[str, Any]) -> list[ProviderPath]:
    out = []
    for item in as_list(args.get("Path")):
        if isinstance(item, CertObject):
            out.append(ProviderPath("cert", item.ps_path, item.store, item.item.thumbprint))
            continue
        try:
            out.append(resolve(as_str(item)))
        except UnsupportedPath as exc:
            raise ctx.not_emulated(str(exc), "provider path") from exc
    if not out:
        raise ctx.fail("Cannot process command because of one or more missing mandatory "
                       "parameters: Path.", "InvalidArgument")
    return out


def _not_found(path: ProviderPath) -> CmdletError:
    return CmdletError(f"Cannot find path '{path.display()}' because it does not exist.",
                       "ObjectNotFound")


def _registry_key(ctx: Any, path: ProviderPath) -> str:
    if path.kind == "fs" and not ctx.node.fs.exists(path.path):
        raise _not_found(path)
    if path.kind != "registry":
        raise ctx.not_emulated(f"item properties on {path.kind} path {path.path}")
    if not ctx.node.registry.key_exists(path.path):
        raise _not_found(path)
    return path.path


def _infer_type(value: Any) -> RegType:
    if isinstance(value, bool | int):
        return RegType.REG_DWORD
    if isinstance(value, list | tuple):
        return RegType.REG_MULTI_SZ
    if isinstance(value, bytes):
        return RegType.REG_BINARY
    return RegType.REG_SZ


def _reg_type(ctx: Any, name: Any) -> RegType:
    kind = PS_TYPE_NAMES.get(as_str(name).lower())
    if kind is None:
        raise ctx.fail(f"Cannot bind parameter 'Type'. Cannot convert value \"{as_str(name)}\" "
                       "to type \"Microsoft.Win32.RegistryValueKind\".", "InvalidArgument")
    return kind


def _set_value(ctx: Any, key: str, name: str, value: Any, kind: RegType) -> None:
    data = [as_str(v) for v in value] if kind is RegType.REG_MULTI_SZ else value
    if isinstance(data, bool):
        data = int(data)
    try:
        ctx.node.registry.set(key, name, data, kind)
    except RegistryError as exc:
        raise ctx.fail(f"{exc}", "InvalidArgument") from exc
    ctx.effect(f"{key}\\{name} = {data!r} ({kind})")


@cmdlet("Set-ItemProperty", _PATH, P("Name", position=1, aliases=("PSProperty",)),
        P("Value", position=2), P("Type"), P("Force", True), P("PassThru", True),
        should_process=True, aliases=("sp",))
def set_item_property(ctx: Any, args: dict[str, Any]) -> None:
    for path in _paths(ctx, args):
        key = _registry_key(ctx, path)
        name = as_str(args.get("Name"))
        existing = ctx.node.registry.get(key, name)
        if "Type" in args:
            kind = _reg_type(ctx, args["Type"])
        else:
            kind = existing.type if existing else _infer_type(args.get("Value"))
        _set_value(ctx, key, name, args.get("Value"), kind)


@cmdlet("New-ItemProperty", _PATH, P("Name", position=1, mandatory=True),
        P("Value", position=2), P("PropertyType", aliases=("Type",)), P("Force", True),
        should_process=True)
def new_item_property(ctx: Any, args: dict[str, Any]) -> list[Any]:
    out = []
    for path in _paths(ctx, args):
        key = _registry_key(ctx, path)
        name = as_str(args["Name"])
        if ctx.node.registry.get(key, name) is not None and not args.get("Force"):
            raise ctx.fail("The property already exists.", "ResourceExists")
        kind = _reg_type(ctx, args["PropertyType"]) if "PropertyType" in args else RegType.REG_SZ
        _set_value(ctx, key, name, args.get("Value", "" if kind is RegType.REG_SZ else 0), kind)
        out.append(ItemPropertyObject(key, {name: ctx.node.registry.value(key, name)}))
    return out


@cmdlet("Remove-ItemProperty", _PATH, P("Name", position=1, mandatory=True), P("Force", True),
        should_process=True, aliases=("rp",))
def remove_item_property(ctx: Any, args: dict[str, Any]) -> None:
    for path in _paths(ctx, args):
        key = _registry_key(ctx, path)
        for name in as_list(args["Name"]):
            if not ctx.node.registry.delete_value(key, as_str(name)):
                raise ctx.fail(f"Property {as_str(name)} does not exist at path {key}.",
                               "InvalidArgument")
            ctx.effect(f"deleted {key}\\{as_str(name)}")


@cmdlet("Get-ItemProperty", _PATH, P("Name", position=1), aliases=("gp",))
def get_item_property(ctx: Any, args: dict[str, Any]) -> list[Any]:
    out = []
    for path in _paths(ctx, args):
        key = _registry_key(ctx, path)
        values = {v.name: v.data for v in ctx.node.registry.values(key)}
        if "Name" in args:
            wanted = [as_str(n) for n in as_list(args["Name"])]
            missing = [n for n in wanted if n.lower() not in {k.lower() for k in values}]
            if missing:
                raise ctx.fail(f"Property {missing[0]} does not exist at path {key}.",
                               "InvalidArgument")
            values = {k: v for k, v in values.items() if k.lower() in {n.lower() for n in wanted}}
        out.append(ItemPropertyObject(key, values))
    return out


@cmdlet("Get-ItemPropertyValue", _PATH, P("Name", position=1, mandatory=True), aliases=("gpv",))
def get_item_property_value(ctx: Any, args: dict[str, Any]) -> list[Any]:
    return [obj.prop(as_str(n)) for obj in get_item_property(ctx, args)
            for n in as_list(args["Name"])]


@cmdlet("Test-Path", _PATH, P("PathType"))
def test_path(ctx: Any, args: dict[str, Any]) -> list[Any]:
    out = []
    for path in _paths(ctx, args):
        if path.kind == "registry":
            out.append(ctx.node.registry.key_exists(path.path))
        elif path.kind == "rds":
            out.append(cmd_rds.rds_exists(ctx, path))
        elif path.kind == "cert":
            out.append(bool(_certs(ctx, path, quiet=True)))
        else:
            out.append(bool(ctx.node.fs.glob(path.path)))
    return out


def _certs(ctx: Any, path: ProviderPath, quiet: bool = False) -> list[CertObject]:
    try:
        certs = ctx.node.certstore.store(path.store)
    except KeyError as exc:
        if quiet:
            return []
        raise ctx.not_emulated(f"certificate store {path.store}") from exc
    pattern = path.item or "*"
    found = [CertObject(c, path.store) for c in certs
             if fnmatch.fnmatchcase(c.thumbprint, pattern.upper())]
    if path.item and not any(c in path.item for c in "*?") and not found and not quiet:
        raise _not_found(path)
    return found


@cmdlet("Get-ChildItem", _PATH, P("Recurse", True), P("Force", True), P("Filter"),
        aliases=("gci", "ls", "dir"))
def get_child_item(ctx: Any, args: dict[str, Any]) -> list[Any]:
    out: list[Any] = []
    for path in _paths(ctx, args):
        if path.kind == "cert":
            out.extend(_certs(ctx, path))
        elif path.kind == "rds":
            out.extend(cmd_rds.rds_get_children(ctx, path))
        elif path.kind == "registry":
            if not ctx.node.registry.key_exists(path.path):
                raise _not_found(path)
            out.extend(RegistryKeyObject(f"{path.path}\\{k}")
                       for k in ctx.node.registry.subkeys(path.path))
        else:
            fs = ctx.node.fs
            matches = fs.glob(path.path)
            if not matches:
                raise _not_found(path)
            for match in matches:
                children = fs.listdir(match) if fs.is_dir(match) else [match]
                out.extend(FileObject(c, fs.is_dir(c)) for c in children)
    return out


@cmdlet("Get-Item", _PATH, P("Force", True), aliases=("gi",))
def get_item(ctx: Any, args: dict[str, Any]) -> list[Any]:
    out: list[Any] = []
    for path in _paths(ctx, args):
        if path.kind == "cert":
            out.extend(_certs(ctx, path))
        elif path.kind == "rds":
            out.extend(cmd_rds.rds_get_item(ctx, path))
        elif path.kind == "registry":
            out.append(RegistryKeyObject(_registry_key(ctx, path)))
        else:
            matches = ctx.node.fs.glob(path.path)
            if not matches:
                raise _not_found(path)
            out.extend(FileObject(m, ctx.node.fs.is_dir(m)) for m in matches)
    return out


@cmdlet("New-Item", _PATH, P("Name"), P("ItemType", aliases=("Type",)), P("Value"),
        P("Force", True), *(P(n) for n in cmd_rds.RDS_PARAMS), should_process=True,
        aliases=("ni",))
def new_item(ctx: Any, args: dict[str, Any]) -> list[Any]:
    out: list[Any] = []
    for path in _paths(ctx, args):
        dynamic = [n for n in cmd_rds.RDS_PARAMS if n in args]
        if dynamic and path.kind != "rds":  # the RDS provider's dynamic parameters
            raise ScriptError(ctx.file, ctx.line, "A parameter cannot be found that matches "
                              f"parameter name '{dynamic[0]}'.")
        if path.kind == "rds":
            out.extend(cmd_rds.rds_new_item(ctx, path, args))
            continue
        full = path.path + ("\\" + as_str(args["Name"]) if "Name" in args else "")
        if path.kind == "registry":
            registry = ctx.node.registry
            hive, parts = split_path(full)
            parent = "\\".join([hive, *parts[:-1]])
            if registry.key_exists(full):
                if not args.get("Force"):
                    raise ctx.fail("A key at this path already exists.", "ResourceExists")
                registry.delete_key(full)  # -Force recreates the key: its values are lost
                ctx.effect(f"recreated {full} (existing values removed by New-Item -Force)")
            elif not registry.key_exists(parent) and not args.get("Force"):
                raise _not_found(ProviderPath("registry", parent))
            registry.create_key(full)
            ctx.effect(f"created key {full}")
            out.append(RegistryKeyObject(full))
        elif path.kind == "fs":
            kind = as_str(args.get("ItemType", "File")).lower()
            real = ctx.node.fs.real(full)
            if real.exists() and not args.get("Force"):
                raise ctx.fail(f"An item with the specified name {full} already exists.",
                               "ResourceExists")
            if kind in ("directory", "dir"):
                real.mkdir(parents=True, exist_ok=True)
            elif kind == "file":
                real.parent.mkdir(parents=True, exist_ok=True)
                real.write_text(as_str(args.get("Value", "")))
            else:
                raise ctx.not_emulated(f"New-Item -ItemType {kind}")
            ctx.effect(f"created {full}")
            out.append(FileObject(ctx.node.fs.canonical(full), kind != "file"))
        else:
            raise ctx.not_emulated(f"New-Item on {path.kind} path")
    return out


@cmdlet("Remove-Item", _PATH, P("Recurse", True), P("Force", True), P("DeleteKey", True),
        should_process=True, aliases=("rm", "del", "ri", "erase", "rmdir", "rd"))
def remove_item(ctx: Any, args: dict[str, Any]) -> None:
    for path in _paths(ctx, args):
        if path.kind == "rds":
            cmd_rds.rds_remove_item(ctx, path)
        elif path.kind == "cert":
            for cert in _certs(ctx, path):
                ctx.node.certstore.remove(path.store, cert.item.thumbprint)
                ctx.effect(f"removed certificate {cert.item.thumbprint} from {path.store}")
                key = cert.item.key_name
                if args.get("DeleteKey") and key and ctx.node.machinekeys.exists(key):
                    ctx.node.machinekeys.delete(key)
                    ctx.effect(f"deleted private key {key}")
        elif path.kind == "registry":
            registry = ctx.node.registry
            if not registry.key_exists(path.path):
                raise _not_found(path)
            if registry.subkeys(path.path) and not args.get("Recurse"):
                raise ctx.not_emulated("Remove-Item on a registry key with subkeys without "
                                       "-Recurse", "interactive confirmation")
            registry.delete_key(path.path)
            ctx.effect(f"deleted key {path.path}")
        else:
            _remove_files(ctx, path, bool(args.get("Recurse")))


def _remove_files(ctx: Any, path: ProviderPath, recurse: bool) -> None:
    fs, acl = ctx.node.fs, ctx.node.acl
    matches = fs.glob(path.path)
    if not matches:
        raise _not_found(path)
    for match in matches:
        if not acl.allows(match, "Administrators", "delete"):
            raise ctx.fail(f"Access to the path '{match}' is denied.", "PermissionDenied")
        try:
            fs.remove(match, recursive=recurse)
        except FsError as exc:
            raise ctx.fail(str(exc)) from exc
        acl.forget(match)
        ctx.node.journal.record("filesystem", match, "present", None)
        ctx.effect(f"deleted {match}")


@cmdlet("Rename-Item", _PATH, P("NewName", position=1, mandatory=True), P("Force", True),
        P("PassThru", True), should_process=True, aliases=("ren", "rni"))
def rename_item(ctx: Any, args: dict[str, Any]) -> None:
    for path in _paths(ctx, args):
        if path.kind != "fs":
            raise ctx.not_emulated(f"Rename-Item on {path.kind} path")
        fs = ctx.node.fs
        if not fs.exists(path.path):
            raise ctx.fail(f"Cannot rename because item at '{path.path}' does not exist.",
                           "ObjectNotFound")
        try:
            new = fs.rename(path.path, as_str(args["NewName"]))
        except FsError as exc:
            raise ctx.fail(str(exc)) from exc
        ctx.node.acl.move(path.path, new)
        ctx.node.journal.record("filesystem", fs.canonical(path.path), "present",
                                f"renamed to {new}")
        ctx.effect(f"renamed {path.path} to {new}")


@cmdlet("Set-Content", _PATH, P("Value", position=1), P("Force", True), P("Encoding"),
        should_process=True, aliases=("sc",))
def set_content(ctx: Any, args: dict[str, Any]) -> None:
    for path in _paths(ctx, args):
        if path.kind != "fs":
            raise ctx.not_emulated(f"Set-Content on {path.kind} path")
        real = ctx.node.fs.real(path.path)
        if not real.parent.is_dir():
            raise _not_found(ProviderPath("fs", path.path.rsplit("\\", 1)[0]))
        text = "\n".join(as_str(v) for v in as_list(args.get("Value")))
        real.write_text(text + "\n")
        ctx.node.journal.record("filesystem", path.path, None, "written")
        ctx.effect(f"wrote {path.path}")
