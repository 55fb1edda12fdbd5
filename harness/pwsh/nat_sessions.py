"""Session commands (query session / qwinsta / quser, logoff, reset session / rwinsta), the RDP
client (mstsc) and the VPN dialler (rasdial): their messages and exit codes."""

from __future__ import annotations

from typing import Any

from .commands import native


def _server_args(ctx: Any, argv: list[str]) -> list[str]:
    """Drop /server:<this node> (another server is not emulated) and /v."""
    rest = []
    for arg in argv:
        low = arg.lower()
        if low.startswith("/server:"):
            name = low.split(":", 1)[1]
            if name not in (ctx.node.computer_name.lower(), ctx.node.fqdn.lower(), "localhost"):
                raise ctx.not_emulated(f"/server:{name} (another machine)")
        elif low not in ("/v", "/vm"):
            rest.append(arg)
    return rest


def _query_sessions(ctx: Any, argv: list[str]) -> int:
    _server_args(ctx, argv)
    for line in ctx.node.sessions.query_lines():
        ctx.out(line)
    return 0


def _query_users(ctx: Any, argv: list[str]) -> int:
    _server_args(ctx, argv)
    sessions = list(ctx.node.sessions.sessions.values())
    if not sessions:
        ctx.out("No User exists for *")
        return 1
    ctx.out(" USERNAME              SESSIONNAME        ID  STATE   IDLE TIME  LOGON TIME")
    for s in sessions:
        ctx.out(f" {s.user:<21} {s.name:<17} {s.id:>3}  {s.state:<7} "
                f"{'1+00:00' if s.hung else '.':>9}")
    return 0


@native("query")
def query(ctx: Any, argv: list[str]) -> int:
    what = argv[0].lower() if argv else ""
    if what in ("session", "sessi", "sess"):
        return _query_sessions(ctx, argv[1:])
    if what in ("user", "use"):
        return _query_users(ctx, argv[1:])
    raise ctx.not_emulated("query " + " ".join(argv[:1]))


@native("qwinsta")
def qwinsta(ctx: Any, argv: list[str]) -> int:
    return _query_sessions(ctx, argv)


@native("quser")
def quser(ctx: Any, argv: list[str]) -> int:
    return _query_users(ctx, argv)


def _end(ctx: Any, argv: list[str], how: str, program: str) -> int:
    rest = _server_args(ctx, argv)
    if len(rest) != 1:
        ctx.out(f"Invalid parameter(s)\nUsage: {program} [sessionname | sessionid] "
                "[/SERVER:servername] [/V]")
        return 1
    session = ctx.node.sessions.find(rest[0])
    if session is None:
        ctx.out(f"Session {rest[0]} not found.")  # 'Error [1] ...' on some builds [open]
        return 1
    ctx.node.sessions.end(session.id, how)
    ctx.effect(f"session {session.id} ({session.user}) {how}")
    return 0


@native("logoff")
def logoff(ctx: Any, argv: list[str]) -> int:
    return _end(ctx, argv, "logged off", "LOGOFF")


@native("rwinsta")
def rwinsta(ctx: Any, argv: list[str]) -> int:
    return _end(ctx, argv, "reset", "RESET SESSION")


@native("reset")
def reset(ctx: Any, argv: list[str]) -> int:
    if not argv or argv[0].lower() not in ("session", "ses"):
        raise ctx.not_emulated("reset " + " ".join(argv[:1]))
    return _end(ctx, argv[1:], "reset", "RESET SESSION")


@native("mstsc")
def mstsc(ctx: Any, argv: list[str]) -> int:
    """The user connects with this machine's own, current Remote Desktop Connection."""
    node = ctx.node
    if node.role != "client":
        raise ctx.not_emulated("mstsc on a server")
    if node.client_program is not None:
        node.journal.record("client", "RDP client program", node.client_program, None)
        node.client_program = None
    ctx.effect(f"the user connects with {node.profile.product}'s built-in mstsc.exe")
    return 0


@native("rasdial")
def rasdial(ctx: Any, argv: list[str]) -> int:
    """rasdial <entry> [/disconnect]: the VPN tunnel goes down / comes up again over the same
    link; the VPN adapter comes back with its persistent settings."""
    network = ctx.node.network
    nic = network.nic("VPN")
    if nic is None or not argv:
        ctx.out("Remote Access error 623 - The system could not find the phone book entry for "
                "this connection.")
        return 623
    if any(a.lower() in ("/disconnect", "/d") for a in argv[1:]):
        ctx.effect(f"VPN connection {argv[0]} disconnected")
        ctx.out("Command completed successfully.")
        return 0
    if nic.mtu != nic.mtu_persistent:
        network.set_mtu("VPN", nic.mtu_persistent)
    network.flush_dns()
    ctx.effect(f"VPN connection {argv[0]} re-established over the same link")
    ctx.out(f"Connecting to {argv[0]}...\nVerifying username and password...\n"
            f"Registering your computer on the network...\nSuccessfully connected to {argv[0]}.\n"
            "Command completed successfully.")
    return 0
