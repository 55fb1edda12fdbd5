"""Fault injection on a node by name: the actions scenario files use (`inject: [{node, action,
args}]`), each a thin call into the model's mutation API. Every change lands in the journal."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from ..errors import FaultError
from .acl import ace
from .os_profiles import SCHANNEL_NAMES
from .registry import (
    CREDSSP_PARAMETERS,
    RDP_TCP,
    SCHANNEL_PROTOCOLS,
    TERMINAL_SERVER,
    TS_POLICY,
    RegType,
)

Action = Callable[..., None]
ACTIONS: dict[str, Action] = {}


def action(fn: Action) -> Action:
    ACTIONS[fn.__name__] = fn
    return fn


# -- certificate and key store ------------------------------------------------------------------

@action
def expire_rdp_certificate(node: Any, days_ago: int = 30) -> None:
    """The served certificate expired `days_ago` days ago (same key)."""
    node.certstore.replace_with_expired(days_ago)


@action
def remove_rdp_certificate(node: Any) -> None:
    node.certstore.remove_rdp_certificate()


@action
def corrupt_rdp_key(node: Any) -> None:
    """Damage the RDP key file's bytes on disk."""
    node.machinekeys.corrupt()


@action
def delete_rdp_key(node: Any) -> None:
    node.machinekeys.delete()


@action
def mismatch_rdp_key(node: Any) -> None:
    """A valid key that does not belong to the certificate."""
    node.machinekeys.replace_with_foreign_key()


@action
def revoke_key_access(node: Any, account: str = "NETWORK SERVICE") -> None:
    """Remove an account's ACEs from the RDP key file (TermService reads as NETWORK SERVICE)."""
    node.machinekeys.revoke(account)


@action
def deny_key_access(node: Any, account: str = "NETWORK SERVICE", rights: str = "R") -> None:
    node.machinekeys.deny(account, rights)


@action
def break_machinekeys_acl(node: Any) -> None:
    """As after `icacls MachineKeys /inheritance:r /grant:r Administrators:(R) /T`: nobody
    but Administrators can read, nobody can create keys."""
    acl = [ace("Administrators", "R")]
    node.machinekeys.set_acl(acl)
    for name in node.machinekeys.names():
        node.machinekeys.set_acl(acl, name)


@action
def rename_machinekeys(node: Any, new_name: str = "MachineKeys.bak") -> None:
    """The key store folder is gone (renamed away): keys cannot be found or created."""
    node.machinekeys.rename_folder(new_name)


# -- registry -------------------------------------------------------------------------------------

@action
def set_registry(node: Any, path: str, name: str, value: Any, type: str = "REG_DWORD") -> None:
    node.registry.set(path, name, value, RegType(type.upper()))


@action
def delete_registry_value(node: Any, path: str, name: str) -> None:
    node.registry.delete_value(path, name)


@action
def set_security_layer(node: Any, value: int, policy: bool = False) -> None:
    """SecurityLayer on RDP-Tcp, or (policy=True) Group Policy's "Require use of specific
    security layer for remote (RDP) connections", which wins (0 RDP, 1 Negotiate, 2 SSL)."""
    node.registry.set(TS_POLICY if policy else RDP_TCP, "SecurityLayer", value)


@action
def set_nla(node: Any, required: bool = True, policy: bool = False) -> None:
    """UserAuthentication on RDP-Tcp, or (policy=True) the Group Policy value that wins."""
    node.registry.set(TS_POLICY if policy else RDP_TCP, "UserAuthentication", int(required))


@action
def set_allow_encryption_oracle(node: Any, value: int) -> None:
    node.registry.set(CREDSSP_PARAMETERS, "AllowEncryptionOracle", value)


@action
def set_rdp_port(node: Any, port: int, restart: bool = True) -> None:
    """Change PortNumber; the listener moves only when TermService restarts."""
    node.registry.set(RDP_TCP, "PortNumber", port)
    if restart and node.services.is_running("TermService"):
        node.services.restart("TermService", force=True)


@action
def deny_ts_connections(node: Any, deny: bool = True) -> None:
    node.registry.set(TERMINAL_SERVER, "fDenyTSConnections", int(deny))


@action
def set_max_outstanding_connections(node: Any, value: int) -> None:
    node.registry.set(TERMINAL_SERVER, "MaxOutstandingConnections", value)


@action
def set_schannel_protocol(node: Any, version: str, enabled: bool, side: str = "Server",
                          apply: bool = True) -> None:
    """Enabled / DisabledByDefault under SCHANNEL\\Protocols\\<TLS x.y>\\<Server|Client>;
    apply=True has Schannel load it now (as after the reboot such a change needs)."""
    key = f"{SCHANNEL_PROTOCOLS}\\{SCHANNEL_NAMES[version]}\\{side.capitalize()}"
    node.registry.set(key, "Enabled", int(enabled))
    node.registry.set(key, "DisabledByDefault", int(not enabled))
    if apply:
        node.reload_schannel()


# -- services, firewall, network, load ------------------------------------------------------------

@action
def stop_service(node: Any, name: str = "TermService") -> None:
    node.services.stop(name, force=True)


@action
def disable_service(node: Any, name: str = "TermService", stop: bool = True) -> None:
    node.services.set_start_type(name, "Disabled")
    if stop:
        node.services.stop(name, force=True)


@action
def disable_firewall_group(node: Any, group: str = "Remote Desktop") -> None:
    node.firewall.set_group_enabled(group, False)


@action
def add_block_rule(node: Any, port: int = 3389, mode: str = "drop",
                   upstream: bool = False) -> None:
    node.firewall.add_block_rule(port, mode, upstream=upstream)  # type: ignore[arg-type]


@action
def set_clock_offset(node: Any, seconds: float) -> None:
    node.network.set_clock_offset(seconds)


@action
def set_time_source_reachable(node: Any, reachable: bool) -> None:
    node.network.set_time_source_reachable(reachable)


@action
def set_hosts_entry(node: Any, name: str, address: str | None) -> None:
    node.network.set_hosts_entry(name, address)


@action
def set_dns_record(node: Any, name: str, address: str | None) -> None:
    node.network.set_dns_record(name, address)


@action
def set_cached_dns(node: Any, name: str, address: str) -> None:
    node.network.set_cached(name, address)


@action
def add_nic(node: Any, alias: str, mtu: int = 1500, addresses: list[str] | None = None,
            route: bool = True) -> None:
    node.network.add_nic(alias, mtu, addresses, route)


@action
def set_mtu(node: Any, alias: str, mtu: int) -> None:
    node.network.set_mtu(alias, mtu)


@action
def corrupt_winsock(node: Any) -> None:
    """The Winsock catalog is damaged (a broken layered service provider left by uninstalled
    security or VPN software): the client's sockets fail with WSAEINVAL."""
    node.network.corrupt_winsock()


@action
def add_hung_session(node: Any, user: str | None = None) -> None:
    """The user's earlier session hung in the Disconnected state (default: the lab's first
    user); reconnecting attaches to it and nothing is drawn."""
    node.sessions.add(user or next(iter(node.users)), state="Disc", hung=True)


@action
def set_incomplete_connections(node: Any, count: int) -> None:
    node.set_incomplete_connections(count)


@action
def uninstall_update(node: Any, kb: str) -> None:
    node.uninstall_update(kb)


@action
def set_connection_target(node: Any, target: str | None) -> None:
    node.set_connection_target(target)


# -- RD Gateway (the gateway node, and the client's gateway setting) -----------------------------

def _gateway(node: Any) -> Any:
    if getattr(node, "gateway", None) is None:
        raise FaultError(f"{node.name} is not an RD Gateway (role {node.role})")
    return node.gateway


@action
def expire_gateway_certificate(node: Any, days_ago: int = 30) -> None:
    """The gateway's bound SSL certificate expired `days_ago` days ago (same key, re-bound)."""
    import datetime as dt

    _gateway(node)
    end = node.now() - dt.timedelta(days=days_ago)
    node.replace_gateway_certificate(end - dt.timedelta(days=365), end)


@action
def remove_gateway_resource(node: Any, name: str, group: str | None = None) -> None:
    """Take a computer name out of the RD Gateway-managed computer groups (or one group)."""
    config = _gateway(node)
    target = config.group(group) if group else None
    if group and target is None:
        raise FaultError(f"no RD Gateway-managed computer group {group!r}")
    if not config.remove_computer(name, target):
        raise FaultError(f"{name!r} is in no RD Gateway-managed computer group")


@action
def set_firewall_outbound_default(node: Any, action: str = "Block") -> None:
    """The profiles' DefaultOutboundAction (Block: a hardening baseline's outbound lockdown)."""
    node.firewall.set_default_outbound(action)


@action
def set_rd_gateway(node: Any, name: str | None, usage: int = 1) -> None:
    """The RD Gateway the client's mstsc goes through (Default.rdp gatewayhostname)."""
    node.set_rd_gateway(name, usage)


def inject(node: Any, name: str, args: dict[str, Any] | None = None) -> None:
    """Apply one named fault action; FaultError for an unknown name or bad arguments."""
    fn = ACTIONS.get(name)
    if fn is None:
        raise FaultError(f"unknown fault action {name!r}; known: {', '.join(sorted(ACTIONS))}")
    args = dict(args or {})
    try:
        inspect.signature(fn).bind(node, **args)
    except TypeError as exc:
        raise FaultError(f"{name}: {exc}") from exc
    with node.lock:
        fn(node, **args)


__all__ = ["ACTIONS", "FaultError", "inject"]
