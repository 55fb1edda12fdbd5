"""NTFS-style access control lists that the model (not the host's file permissions) enforces.

The lab's processes run as root, so POSIX permissions cannot say whether NETWORK SERVICE may
read a key file; this table does. Semantics follow icacls: explicit ACEs, inheritance from the
parent unless the path is protected, deny ACEs win over allow ACEs.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

# Canonical account names, and what icacls accepts for each (names, short names, *SIDs).
PRINCIPALS = {
    "NT AUTHORITY\\SYSTEM": ("SYSTEM", "*S-1-5-18", "LOCALSYSTEM"),
    "BUILTIN\\Administrators": ("Administrators", "*S-1-5-32-544"),
    "NT AUTHORITY\\NETWORK SERVICE": ("NETWORK SERVICE", "NETWORKSERVICE", "*S-1-5-20"),
    "NT AUTHORITY\\LOCAL SERVICE": ("LOCAL SERVICE", "LOCALSERVICE", "*S-1-5-19"),
    "Everyone": ("*S-1-1-0",),
    "BUILTIN\\Users": ("Users", "*S-1-5-32-545"),
    "NT AUTHORITY\\Authenticated Users": ("Authenticated Users", "*S-1-5-11"),
    "CREATOR OWNER": ("*S-1-3-0",),
}
_ALIASES = {alias.upper(): name for name, aliases in PRINCIPALS.items()
            for alias in (name, *aliases)}

# The groups in each service account's token.
MEMBERSHIP = {
    "NT AUTHORITY\\SYSTEM": ("Everyone", "BUILTIN\\Administrators",
                             "NT AUTHORITY\\Authenticated Users"),
    "NT AUTHORITY\\NETWORK SERVICE": ("Everyone", "NT AUTHORITY\\Authenticated Users",
                                      "BUILTIN\\Users"),
    "NT AUTHORITY\\LOCAL SERVICE": ("Everyone", "NT AUTHORITY\\Authenticated Users",
                                    "BUILTIN\\Users"),
}

# icacls simple rights and the access each grants.
SIMPLE_RIGHTS = {
    "F": frozenset({"read", "write", "delete", "execute", "change_perms"}),
    "M": frozenset({"read", "write", "delete", "execute"}),
    "RX": frozenset({"read", "execute"}),
    "R": frozenset({"read"}),
    "W": frozenset({"write"}),
    "D": frozenset({"delete"}),
}
SPECIFIC_RIGHTS = {
    "RD": "read", "REA": "read", "RA": "read", "GR": "read", "RC": "read",
    "WD": "write", "AD": "write", "WEA": "write", "WA": "write", "GW": "write",
    "X": "execute", "GE": "execute", "DE": "delete", "DC": "delete",
    "WDAC": "change_perms", "WO": "change_perms", "GA": "all", "MA": "all",
}


class AclError(ValueError):
    """An account or a permission that icacls would refuse."""


def principal(name: str) -> str:
    """The canonical account name; AclError when Windows would not map it to a SID."""
    found = _ALIASES.get(name.strip().upper())
    if found is None:
        raise AclError(f"{name}: No mapping between account names and security IDs was done.")
    return found


def rights_text(rights: frozenset[str]) -> str:
    for letter, granted in SIMPLE_RIGHTS.items():
        if rights == granted:
            return letter
    return ",".join(sorted(rights))


@dataclass(frozen=True)
class Ace:
    principal: str
    rights: frozenset[str]
    deny: bool = False
    inheritable: bool = False  # (OI)(CI): children inherit it
    inherited: bool = False

    def text(self) -> str:
        flags = ("(I)" if self.inherited else "") + ("(OI)(CI)" if self.inheritable else "")
        deny = "(DENY)" if self.deny else ""
        return f"{self.principal}:{deny}{flags}({rights_text(self.rights)})"


def ace(who: str, rights: str, *, deny: bool = False, inheritable: bool = False) -> Ace:
    """An ACE from icacls-style text: ace("NETWORK SERVICE", "R")."""
    return Ace(principal(who), SIMPLE_RIGHTS[rights.upper()], deny, inheritable)


@dataclass
class PathAcl:
    explicit: list[Ace] = field(default_factory=list)
    protected: bool = False  # inheritance disabled


def _key(path: str) -> str:
    return path.replace("/", "\\").rstrip("\\").lower()


def _parent(key: str) -> str | None:
    return key.rsplit("\\", 1)[0] if "\\" in key else None


class AclTable:
    """ACLs by Windows path. Paths without an entry inherit everything from their parent."""

    def __init__(self, root_inheritable: list[Ace]) -> None:
        self.root_inheritable = [replace(a, inheritable=True) for a in root_inheritable]
        self._acls: dict[str, PathAcl] = {}

    def entry(self, path: str) -> PathAcl:
        return self._acls.setdefault(_key(path), PathAcl())

    def effective(self, path: str) -> list[Ace]:
        key = _key(path)
        acl = self._acls.get(key, PathAcl())
        if acl.protected:
            return list(acl.explicit)
        parent = _parent(key)
        above = self.root_inheritable if parent is None else self.effective(parent)
        inherited = [replace(a, inherited=True) for a in above if a.inheritable]
        return list(acl.explicit) + inherited

    def allows(self, path: str, who: str, right: str) -> bool:
        """Whether the account may `right` (read, write, delete…) the path; deny wins."""
        account = principal(who)
        identities = {account, *MEMBERSHIP.get(account, ("Everyone",))}
        applying = [a for a in self.effective(path) if a.principal in identities]
        if any(a.deny and (right in a.rights or "all" in a.rights) for a in applying):
            return False
        return any(not a.deny and (right in a.rights or "all" in a.rights) for a in applying)

    def set(self, path: str, aces: list[Ace], protected: bool = True) -> None:
        """Replace the explicit ACL (a fault's or a creator's)."""
        self._acls[_key(path)] = PathAcl(list(aces), protected)

    def grant(self, path: str, new: Ace, replace_existing: bool = False) -> None:
        acl = self.entry(path)
        if replace_existing:
            acl.explicit = [a for a in acl.explicit if a.deny or a.principal != new.principal]
        for i, old in enumerate(acl.explicit):
            if (old.principal, old.deny, old.inheritable) == (new.principal, new.deny,
                                                              new.inheritable):
                acl.explicit[i] = replace(old, rights=old.rights | new.rights)
                return
        acl.explicit.append(new)

    def remove(self, path: str, who: str, grants: bool = True, denies: bool = True) -> None:
        acl = self.entry(path)
        account = principal(who)
        acl.explicit = [a for a in acl.explicit if a.principal != account
                        or (a.deny and not denies) or (not a.deny and not grants)]

    def reset(self, path: str) -> None:
        """icacls /reset: drop explicit ACEs, inherit again."""
        self._acls[_key(path)] = PathAcl()

    def inheritance(self, path: str, mode: str) -> None:
        """icacls /inheritance:e|d|r (enable, disable keeping copies, remove)."""
        acl = self.entry(path)
        if mode == "e":
            acl.protected = False
            return
        inherited = [replace(a, inherited=False) for a in self.effective(path) if a.inherited]
        acl.protected = True
        if mode == "d":
            acl.explicit.extend(inherited)

    def move(self, old: str, new: str) -> None:
        """A rename: ACLs travel with the path and everything under it."""
        old_key, new_key = _key(old), _key(new)
        for key in [k for k in self._acls if k == old_key or k.startswith(old_key + "\\")]:
            self._acls[new_key + key[len(old_key):]] = self._acls.pop(key)

    def forget(self, path: str) -> None:
        key = _key(path)
        for k in [k for k in self._acls if k == key or k.startswith(key + "\\")]:
            del self._acls[k]

    def text(self, path: str) -> list[str]:
        return [a.text() for a in self.effective(path)]
