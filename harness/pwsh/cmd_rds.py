"""The RemoteDesktopServices provider (RDS:\\GatewayServer) on an RD Gateway node, Set-Item, and
New-SelfSignedCertificate (PKI module).

The subset of the provider tree the lab models (anything else is not emulated):

  RDS:\\GatewayServer\\SSLCertificate\\Thumbprint
  RDS:\\GatewayServer\\CAP\\<name>\\{Status, AuthMethod, UserGroups\\<group>}
  RDS:\\GatewayServer\\RAP\\<name>\\{Status, ComputerGroupType, ComputerGroup, PortNumbers,
                                   UserGroups\\<group>}
  RDS:\\GatewayServer\\GatewayManagedComputerGroups\\<name>\\{Description, Computers\\<name>}

New-Item takes the provider's dynamic parameters there: -UserGroups and -AuthMethod (CAP),
-UserGroups, -ComputerGroupType and -ComputerGroup (RAP), -Description and -Computers (group).
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from harness.windows.acl import ace
from harness.windows.certstore import StoredCert
from harness.windows.gateway import Cap, ManagedGroup, Rap
from harness.windows.labca import self_signed
from harness.windows.machinekeys import KeyStoreError

from .commands import P, as_int, as_list, as_str, cmdlet
from .errors import CmdletError
from .objects import CertObject, PsObject
from .providers import ProviderPath, UnsupportedPath, resolve

RDS_PARAMS = ("UserGroups", "AuthMethod", "ComputerGroupType", "ComputerGroup", "Description",
              "Computers")
_CAP_SETTINGS = {"status": "status", "authmethod": "auth_method"}
_RAP_SETTINGS = {"status": "status", "computergrouptype": "computer_group_type",
                 "computergroup": "computer_group", "portnumbers": "port_numbers"}


class RdsItem(PsObject):
    """An item of the RDS: drive: a container or a setting with its CurrentValue."""

    type_name = "Microsoft.RemoteDesktopServices.Management.RDSConfigurationItem"

    def __init__(self, path: str, name: str, value: Any = None, container: bool = False) -> None:
        self.path, self.name, self.value, self.container = path, name, value, container

    def props(self) -> dict[str, Any]:
        out = {"Name": self.name, "Type": "Container" if self.container else "Setting",
               "PSPath": f"RDS:\\{self.path}", "PSIsContainer": self.container}
        if not self.container:
            out["CurrentValue"] = self.value
        return out

    def __str__(self) -> str:
        return self.name if self.container else f"{self.name} = {self.value}"


def _config(ctx: Any) -> Any:
    config = getattr(ctx.node, "gateway", None)
    if config is None:
        raise ctx.fail("Cannot find drive. A drive with the name 'RDS' does not exist. "
                       "(the RD Gateway role is not installed on this node)", "ObjectNotFound")
    return config


def _parts(path: ProviderPath) -> list[str]:
    return [p for p in path.path.split("\\") if p]


def _not_found(path: ProviderPath) -> CmdletError:
    return CmdletError(f"Cannot find path '{path.display()}' because it does not exist.",
                       "ObjectNotFound")


def _lookup(ctx: Any, path: ProviderPath) -> tuple[list[str], Any, Any]:
    """(parts after GatewayServer, the config, the CAP/RAP/group named by parts[1] or None)."""
    config = _config(ctx)
    parts = _parts(path)
    if not parts or parts[0].lower() != "gatewayserver":
        raise ctx.not_emulated(f"RDS provider path {path.display()}",
                               "only RDS:\\GatewayServer is modelled")
    rest = parts[1:]
    item = None
    finder = {"cap": config.cap, "rap": config.rap,
              "gatewaymanagedcomputergroups": config.group}.get(rest[0].lower() if rest else "")
    if rest and finder is None and rest[0].lower() != "sslcertificate":
        raise ctx.not_emulated(f"RDS provider path {path.display()}",
                               "only CAP, RAP, GatewayManagedComputerGroups, SSLCertificate")
    if finder is not None and len(rest) >= 2:
        item = finder(rest[1])
        if item is None:
            raise _not_found(path)
    return rest, config, item


def _children(ctx: Any, path: ProviderPath) -> list[RdsItem] | None:
    """The children of a container path, None when the path is a setting."""
    rest, config, item = _lookup(ctx, path)
    base = "\\".join(_parts(path))
    low = [r.lower() for r in rest]

    def setting(name: str, value: Any) -> RdsItem:
        return RdsItem(f"{base}\\{name}", name, value)

    def container(name: str) -> RdsItem:
        return RdsItem(f"{base}\\{name}", name, container=True)

    if not rest:
        return [container(n) for n in ("CAP", "RAP", "GatewayManagedComputerGroups",
                                       "SSLCertificate")]
    if low == ["sslcertificate"]:
        return [setting("Thumbprint", config.ssl_thumbprint or "")]
    if low == ["cap"]:
        return [container(c.name) for c in config.caps.values()]
    if low == ["rap"]:
        return [container(r.name) for r in config.raps.values()]
    if low == ["gatewaymanagedcomputergroups"]:
        return [container(g.name) for g in config.groups.values()]
    if len(rest) == 2 and isinstance(item, Cap):
        return [setting("Status", item.status), setting("AuthMethod", item.auth_method),
                container("UserGroups")]
    if len(rest) == 2 and isinstance(item, Rap):
        return [setting("Status", item.status),
                setting("ComputerGroupType", item.computer_group_type),
                setting("ComputerGroup", item.computer_group),
                setting("PortNumbers", item.port_numbers), container("UserGroups")]
    if len(rest) == 2 and isinstance(item, ManagedGroup):
        return [setting("Description", item.description), container("Computers")]
    if len(rest) == 3 and low[2] == "usergroups" and isinstance(item, Cap | Rap):
        return [setting(g, g) for g in item.user_groups]
    if len(rest) == 3 and low[2] == "computers" and isinstance(item, ManagedGroup):
        return [setting(c, c) for c in item.computers]
    return None


def _leaf(ctx: Any, path: ProviderPath) -> RdsItem:
    """A setting (or list entry) as Get-Item returns it."""
    parts = _parts(path)
    if not parts:
        raise _not_found(path)
    parent = ProviderPath("rds", "\\".join(parts[:-1]))
    if len(parts) > 1:
        siblings = _children(ctx, parent)
        for child in siblings or []:
            if child.name.lower() == parts[-1].lower():
                return child
    elif parts[0].lower() == "gatewayserver":
        _config(ctx)
        return RdsItem(parts[0], parts[0], container=True)
    raise _not_found(path)


def rds_get_item(ctx: Any, path: ProviderPath) -> list[Any]:
    return [_leaf(ctx, path)]


def rds_get_children(ctx: Any, path: ProviderPath) -> list[Any]:
    children = _children(ctx, path)
    if children is None:
        return [_leaf(ctx, path)]
    return list(children)


def rds_exists(ctx: Any, path: ProviderPath) -> bool:
    try:
        _leaf(ctx, path)
    except CmdletError:
        return False
    return True


def _int_setting(ctx: Any, value: Any, name: str, allowed: tuple[int, ...]) -> int:
    number = as_int(value, name)
    if number not in allowed:
        raise ctx.fail(f"The value {number} is not valid for {name} (allowed: "
                       f"{', '.join(map(str, allowed))}).", "InvalidArgument")
    return number


def _bind_certificate(ctx: Any, thumbprint: str) -> None:
    node = ctx.node
    want = thumbprint.strip().upper()
    cert = next((c for c in node.certstore.store("My") if c.thumbprint == want), None)
    if cert is None:
        raise ctx.fail(f"The certificate with thumbprint {want} was not found in the "
                       "LocalMachine\\My store.", "ObjectNotFound")
    if cert.key_name is None or not node.machinekeys.exists(cert.key_name):
        raise ctx.fail(f"The certificate {want} has no private key.", "InvalidData")
    node.gateway.bind_certificate(want)
    # RD Gateway Manager / the provider lets TSGateway (NETWORK SERVICE) read the key [open]
    key_path = node.machinekeys.file_path(cert.key_name)
    if not node.acl.allows(key_path, "NETWORK SERVICE", "read"):
        node.acl.grant(key_path, ace("NETWORK SERVICE", "R"))
        node.journal.record("machinekeys", f"{key_path} (ACL)", None, "NETWORK SERVICE:(R)")
    ctx.effect(f"RD Gateway SSL certificate = {want} ({cert.subject}, expires "
               f"{cert.not_after:%Y-%m-%d})")


def rds_set_item(ctx: Any, path: ProviderPath, value: Any) -> None:
    rest, config, item = _lookup(ctx, path)
    low = [r.lower() for r in rest]
    if low == ["sslcertificate", "thumbprint"]:
        _bind_certificate(ctx, as_str(value))
        return
    if len(rest) == 3 and isinstance(item, Cap) and low[2] in _CAP_SETTINGS:
        attr = _CAP_SETTINGS[low[2]]
        number = _int_setting(ctx, value, rest[2], (0, 1) if attr == "status" else (1, 2, 3))
        config.set_field(item, attr, number)
        ctx.effect(f"CAP {item.name} {rest[2]} = {number}")
        return
    if len(rest) == 3 and isinstance(item, Rap) and low[2] in _RAP_SETTINGS:
        attr = _RAP_SETTINGS[low[2]]
        new: Any
        if attr == "status":
            new = _int_setting(ctx, value, rest[2], (0, 1))
        elif attr == "computer_group_type":
            new = _int_setting(ctx, value, rest[2], (0, 1, 2))
        elif attr == "computer_group":
            new = as_str(value)
            if item.computer_group_type == 0 and config.group(new) is None:
                raise ctx.fail(f"The RD Gateway-managed computer group {new} does not exist.",
                               "ObjectNotFound")
        else:
            new = ",".join(as_str(v) for v in as_list(value)) or "3389"
        config.set_field(item, attr, new)
        ctx.effect(f"RAP {item.name} {rest[2]} = {new}")
        return
    if len(rest) == 3 and isinstance(item, ManagedGroup) and low[2] == "description":
        item.description = as_str(value)
        ctx.effect(f"computer group {item.name} description set")
        return
    if rds_exists(ctx, path):
        raise ctx.not_emulated(f"Set-Item {path.display()}")
    raise _not_found(path)


def rds_new_item(ctx: Any, path: ProviderPath, args: dict[str, Any]) -> list[Any]:
    rest, config, item = _lookup(ctx, path)
    low = [r.lower() for r in rest]
    name = as_str(args.get("Name", ""))
    if not name:
        raise ctx.fail("New-Item on the RDS provider needs -Name.", "InvalidArgument")
    groups = [as_str(g) for g in as_list(args.get("UserGroups"))]
    base = "\\".join(_parts(path))
    if low == ["cap"]:
        if config.cap(name):
            raise ctx.fail(f"A CAP named {name} already exists.", "ResourceExists")
        if not groups:
            raise ctx.fail("New-Item RDS:\\GatewayServer\\CAP needs -UserGroups.",
                           "InvalidArgument")
        auth = _int_setting(ctx, args.get("AuthMethod", 1), "AuthMethod", (1, 2, 3))
        config.add_cap(Cap(name, groups, 1, auth))
        ctx.effect(f"new CAP {name} for {groups}")
    elif low == ["rap"]:
        if config.rap(name):
            raise ctx.fail(f"A RAP named {name} already exists.", "ResourceExists")
        if not groups or "ComputerGroupType" not in args:
            raise ctx.fail("New-Item RDS:\\GatewayServer\\RAP needs -UserGroups and "
                           "-ComputerGroupType.", "InvalidArgument")
        kind = _int_setting(ctx, args["ComputerGroupType"], "ComputerGroupType", (0, 1, 2))
        group = as_str(args.get("ComputerGroup", ""))
        if kind in (0, 1) and not group:
            raise ctx.fail("-ComputerGroup is required when -ComputerGroupType is 0 or 1.",
                           "InvalidArgument")
        if kind == 0 and config.group(group) is None:
            raise ctx.fail(f"The RD Gateway-managed computer group {group} does not exist.",
                           "ObjectNotFound")
        config.add_rap(Rap(name, groups, kind, group if kind != 2 else ""))
        ctx.effect(f"new RAP {name} for {groups}: computer group type {kind} {group}".rstrip())
    elif low == ["gatewaymanagedcomputergroups"]:
        if config.group(name):
            raise ctx.fail(f"A computer group named {name} already exists.", "ResourceExists")
        computers = [as_str(c) for c in as_list(args.get("Computers"))]
        config.add_group(ManagedGroup(name, as_str(args.get("Description", "")), computers))
        ctx.effect(f"new RD Gateway-managed computer group {name}: {computers}")
    elif len(rest) == 3 and low[2] == "usergroups" and isinstance(item, Cap | Rap):
        if any(g.lower() == name.lower() for g in item.user_groups):
            raise ctx.fail(f"{name} is already in {item.name}.", "ResourceExists")
        config.set_field(item, "user_groups", [*item.user_groups, name])
        ctx.effect(f"{item.name}: user group {name} added")
    elif len(rest) == 3 and low[2] == "computers" and isinstance(item, ManagedGroup):
        if not config.add_computer(item, name):
            raise ctx.fail(f"{name} is already in {item.name}.", "ResourceExists")
        ctx.effect(f"computer group {item.name}: {name} added")
    else:
        raise ctx.not_emulated(f"New-Item {path.display()}")
    return [RdsItem(f"{base}\\{name}", name, container=True)]


def rds_remove_item(ctx: Any, path: ProviderPath) -> None:
    rest, config, item = _lookup(ctx, path)
    low = [r.lower() for r in rest]
    if len(rest) == 2:
        kind = {"cap": "cap", "rap": "rap", "gatewaymanagedcomputergroups": "group"}[low[0]]
        if kind == "group":
            users = [r.name for r in config.raps.values()
                     if r.computer_group_type == 0 and r.computer_group.lower() == low[1]]
            if users:
                raise ctx.fail(f"The computer group {item.name} is used by RAP {users[0]}.",
                               "ResourceBusy")
        config.remove(kind, item.name)
        ctx.effect(f"removed {path.display()}")
    elif len(rest) == 4 and low[2] == "usergroups" and isinstance(item, Cap | Rap):
        kept = [g for g in item.user_groups if g.lower() != low[3]]
        if len(kept) == len(item.user_groups):
            raise _not_found(path)
        config.set_field(item, "user_groups", kept)
        ctx.effect(f"{item.name}: user group {rest[3]} removed")
    elif len(rest) == 4 and low[2] == "computers" and isinstance(item, ManagedGroup):
        if not config.remove_computer(rest[3], item):
            raise _not_found(path)
        ctx.effect(f"computer group {item.name}: {rest[3]} removed")
    else:
        raise ctx.not_emulated(f"Remove-Item {path.display()}")


# -- Set-Item -------------------------------------------------------------------------------------

@cmdlet("Set-Item", P("Path", position=0, pipeline=True, aliases=("LiteralPath", "PSPath")),
        P("Value", position=1), P("Force", True), P("PassThru", True), should_process=True,
        aliases=("si",))
def set_item(ctx: Any, args: dict[str, Any]) -> None:
    for raw in as_list(args.get("Path")):
        try:
            path = resolve(as_str(raw))
        except UnsupportedPath as exc:
            raise ctx.not_emulated(str(exc), "provider path") from exc
        if path.kind != "rds":
            raise ctx.not_emulated(f"Set-Item on {path.kind} path {path.display()}")
        rds_set_item(ctx, path, args.get("Value"))


# -- New-SelfSignedCertificate ---------------------------------------------------------------------

@cmdlet("New-SelfSignedCertificate", P("DnsName", position=0), P("CertStoreLocation"),
        P("Subject"), P("FriendlyName"), P("NotAfter"), P("KeyLength"), P("KeyAlgorithm"),
        P("KeyExportPolicy"), P("KeyUsage"), P("Provider"), P("Type"), should_process=True)
def new_self_signed_certificate(ctx: Any, args: dict[str, Any]) -> list[Any]:
    """A self-signed certificate (issuer = subject, no lab CA) with a new key in MachineKeys."""
    node = ctx.node
    names = [as_str(n) for n in as_list(args.get("DnsName"))]
    subject = as_str(args.get("Subject", ""))
    if subject.upper().startswith("CN="):
        subject = subject[3:].split(",")[0]
    if not names and not subject:
        raise ctx.fail("New-SelfSignedCertificate needs -DnsName or -Subject.", "InvalidArgument")
    store_text = as_str(args.get("CertStoreLocation", "Cert:\\CurrentUser\\My"))
    try:
        store = resolve(store_text)
    except UnsupportedPath as exc:
        raise ctx.not_emulated(f"New-SelfSignedCertificate -CertStoreLocation {store_text}",
                               str(exc)) from exc
    if store.kind != "cert" or (store.store or "").lower() != "my":
        raise ctx.not_emulated(f"New-SelfSignedCertificate -CertStoreLocation {store_text}",
                               "only Cert:\\LocalMachine\\My")
    now = node.now()
    not_after = args.get("NotAfter")
    if not isinstance(not_after, dt.datetime):
        if not_after is not None:
            raise ctx.not_emulated("New-SelfSignedCertificate -NotAfter <expression>")
        not_after = now + dt.timedelta(days=365)
    key_name = f"{os.urandom(16).hex()}_{node.machinekeys.machine_guid}"
    try:
        key = node.machinekeys.create_key(key_name, "Administrators",
                                          acl=[ace("SYSTEM", "F"), ace("Administrators", "F")])
    except KeyStoreError as exc:
        raise ctx.fail(f"CertEnroll::CX509Enrollment::_CreateRequest: {exc.status} "
                       f"{exc.code}", "InvalidOperation") from exc
    cn = subject or names[0]
    cert = self_signed(key, cn, names or [cn], now - dt.timedelta(minutes=10), not_after)
    item = StoredCert(cert, key_name)
    node.certstore.add(store.store or "My", item)
    ctx.effect(f"self-signed certificate {item.thumbprint} CN={cn} in LocalMachine\\My "
               f"(valid to {cert.not_valid_after_utc:%Y-%m-%d}; trusted by no client until "
               "deployed to its Trusted Root store)")
    return [CertObject(item, "My")]
