"""The host's Remote Desktop sessions, as `query session` (qwinsta) lists them.

A stuck session: the user's earlier session hung in the Disconnected state (its winlogon or
shell stopped answering). Reconnecting, the user is attached to it again (one session per user,
the Windows Server default fSingleSessionPerUser = 1) and the desktop never draws: logon
succeeds and no graphics follow. `logoff <id>`, `reset session <id>` (rwinsta) or a reboot end it;
restarting TermService alone does not end a session's processes [open] (rdp-facts §15).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .journal import ActionJournal

FIRST_USER_SESSION = 2  # 0 is services, 1 the console


@dataclass
class Session:
    id: int
    user: str
    state: str = "Disc"  # Active | Disc | Listen | Conn
    hung: bool = False
    name: str = ""  # the WinStation name (rdp-tcp#N while connected, empty when disconnected)


class SessionTable:
    def __init__(self, journal: ActionJournal | None = None) -> None:
        self.journal = journal if journal is not None else ActionJournal()
        self.sessions: dict[int, Session] = {}

    def add(self, user: str, state: str = "Disc", hung: bool = False) -> Session:
        sid = max([FIRST_USER_SESSION - 1, *self.sessions]) + 1
        session = Session(sid, user, state, hung)
        self.sessions[sid] = session
        self.journal.record("sessions", f"{sid} {user}", None, asdict(session))
        return session

    def find(self, key: str) -> Session | None:
        """By id or session name (what logoff / rwinsta take; not a user name)."""
        text = key.strip().lower()
        if text.isdigit():
            return self.sessions.get(int(text))
        return next((s for s in self.sessions.values() if s.name and text == s.name.lower()),
                    None)

    def end(self, sid: int, how: str) -> bool:
        session = self.sessions.pop(sid, None)
        if session is not None:
            self.journal.record("sessions", f"{sid} {session.user}", asdict(session), how)
        return session is not None

    def clear(self, how: str = "reboot") -> None:
        for sid in list(self.sessions):
            self.end(sid, how)

    def hung_session_of(self, users: list[str]) -> Session | None:
        wanted = {u.lower() for u in users}
        return next((s for s in self.sessions.values() if s.hung and s.user.lower() in wanted),
                    None)

    def query_lines(self) -> list[str]:
        """`query session` output (the lab's fixed sessions 0 and 65536 included)."""
        lines = [" SESSIONNAME       USERNAME                 ID  STATE   TYPE        DEVICE",
                 " services                                    0  Disc",
                 ">console                                     1  Conn"]
        for s in sorted(self.sessions.values(), key=lambda x: x.id):
            lines.append(f" {s.name:<17} {s.user:<22} {s.id:>4}  {s.state}")
        lines.append(" rdp-tcp                                 65536  Listen")
        return lines

    def snapshot(self) -> list[dict[str, Any]]:
        return [asdict(s) for s in self.sessions.values()]
