"""The machine key store: real private-key files in MachineKeys, readable per the model's ACLs.

Key files hold PKCS#8 PEM (Windows keeps CAPI/CNG blobs; the format is the lab's choice, the
file semantics are Windows'): deleting, renaming or damaging a file has the real effect on the
next load. Who may read or create a file is decided by the AclTable, since the lab runs as root.
"""

from __future__ import annotations

import os
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from harness.pki import load_private_key_cached

from .acl import Ace, AclTable, ace
from .filesystem import WinFs
from .journal import ActionJournal
from .labca import key_pem, new_key

MACHINEKEYS = r"C:\ProgramData\Microsoft\Crypto\RSA\MachineKeys"
# Container TSSecKeySet1, the RDP listener's key: Microsoft's articles name this file.
RDP_KEY_PREFIX = "f686aace6942fb7f7ceb231212eef4a4"

# KB278381 defaults: both ACEs apply to the folder only, so key files inherit nothing.
FOLDER_DEFAULT_ACL = [ace("Administrators", "F"), Ace("Everyone", frozenset({"read", "write"}))]
# What the RDP key gets when TermService's certificate is created.
RDP_KEY_ACL = [ace("SYSTEM", "F"), ace("Administrators", "F"), ace("NETWORK SERVICE", "R")]

STATUS_KEYSET_MISSING = ("Keyset does not exist", "0x80090016")
STATUS_ACCESS_DENIED = ("Access is denied.", "0x80070005")


class KeyStoreError(Exception):
    """A key the store cannot create; `status` is the Windows text, `code` the HRESULT."""

    def __init__(self, status: str, code: str, detail: str) -> None:
        super().__init__(f"{detail}: {status} ({code})")
        self.status, self.code, self.detail = status, code, detail


class KeyUnreadable(Exception):
    """A key the given account cannot load: missing, access denied or corrupt."""


class MachineKeys:
    """C:\\ProgramData\\Microsoft\\Crypto\\RSA\\MachineKeys of one node."""

    def __init__(self, fs: WinFs, acl: AclTable, machine_guid: str,
                 journal: ActionJournal | None = None) -> None:
        self.fs, self.acl, self.machine_guid = fs, acl, machine_guid
        self.journal = journal if journal is not None else ActionJournal()

    @property
    def path(self) -> str:
        return MACHINEKEYS

    @property
    def rdp_key_name(self) -> str:
        return f"{RDP_KEY_PREFIX}_{self.machine_guid}"

    def file_path(self, name: str) -> str:
        return f"{MACHINEKEYS}\\{name}"

    def folder_usable(self) -> bool:
        return self.fs.is_dir(MACHINEKEYS)

    def ensure_folder(self) -> bool:
        """Create the folder with its default ACL when missing (setup, reboot); True if created."""
        if self.fs.exists(MACHINEKEYS):
            return False
        self.fs.mkdir(MACHINEKEYS)
        self.acl.forget(MACHINEKEYS)
        self.acl.set(MACHINEKEYS, FOLDER_DEFAULT_ACL, protected=True)
        self.journal.record("machinekeys", MACHINEKEYS, None, "created (default ACL)")
        return True

    def names(self) -> list[str]:
        if not self.folder_usable():
            return []
        return [p.rsplit("\\", 1)[1] for p in self.fs.listdir(MACHINEKEYS)]

    def exists(self, name: str) -> bool:
        return self.fs.real(self.file_path(name)).is_file()

    # -- as Windows uses it ----------------------------------------------------------------

    def create_key(self, name: str, account: str = "SYSTEM",
                   acl: list[Ace] | None = None) -> rsa.RSAPrivateKey:
        """Generate a key into `name` as `account` would; KeyStoreError when Windows would fail."""
        if not self.folder_usable():
            raise KeyStoreError(*STATUS_KEYSET_MISSING, f"{MACHINEKEYS} does not exist")
        path = self.file_path(name)
        if self.exists(name):
            if not self.acl.allows(path, account, "write"):
                raise KeyStoreError(*STATUS_ACCESS_DENIED, f"{account} cannot write {path}")
        elif not self.acl.allows(MACHINEKEYS, account, "write"):
            raise KeyStoreError(*STATUS_ACCESS_DENIED, f"{account} cannot create files in "
                                f"{MACHINEKEYS}")
        key = new_key()
        self._write(name, key_pem(key), "key created")
        self.acl.set(path, acl or RDP_KEY_ACL, protected=True)
        return key

    def load_key(self, name: str, account: str = "NETWORK SERVICE") -> rsa.RSAPrivateKey:
        """The key as `account` opens it; KeyUnreadable says why it cannot."""
        path = self.file_path(name)
        if not self.exists(name):
            raise KeyUnreadable(f"{path}: the key file does not exist (keyset does not exist)")
        if not self.acl.allows(path, account, "read"):
            raise KeyUnreadable(f"{path}: access denied for {account}")
        return self._parse(name)

    def _parse(self, name: str) -> rsa.RSAPrivateKey:
        data = self.fs.real(self.file_path(name)).read_bytes()
        try:
            key = load_private_key_cached(data)
        except (ValueError, TypeError) as exc:
            raise KeyUnreadable(f"{self.file_path(name)}: the key is corrupt ({exc})") from exc
        if not isinstance(key, rsa.RSAPrivateKey):
            raise KeyUnreadable(f"{self.file_path(name)}: not an RSA key")
        return key

    def _write(self, name: str, data: bytes, what: str) -> None:
        real = self.fs.real(self.file_path(name))
        before = "present" if real.exists() else None
        real.write_bytes(data)
        self.journal.record("machinekeys", self.file_path(name), before, what)

    # -- fault injection (acts as an administrator, bypassing the ACL) ------------------------

    def read_key_as_admin(self, name: str) -> rsa.RSAPrivateKey | None:
        try:
            return self._parse(name) if self.exists(name) else None
        except KeyUnreadable:
            return None

    def store_key_as_admin(self, name: str, key: rsa.RSAPrivateKey) -> None:
        self.ensure_folder()
        self._write(name, key_pem(key), "key written")
        self.acl.set(self.file_path(name), RDP_KEY_ACL, protected=True)

    def set_acl(self, aces: list[Ace], name: str | None = None, protected: bool = True) -> None:
        """Replace the explicit ACL of a key file (or of the folder when name is None)."""
        path = self.file_path(name) if name else MACHINEKEYS
        before = self.acl.text(path)
        self.acl.set(path, aces, protected)
        self.journal.record("machinekeys", f"{path} (ACL)", before, self.acl.text(path))

    def revoke(self, account: str = "NETWORK SERVICE", name: str | None = None) -> None:
        """Remove an account's explicit ACEs from the RDP key (or the named file)."""
        path = self.file_path(name or self.rdp_key_name)
        before = self.acl.text(path)
        self.acl.remove(path, account)
        self.journal.record("machinekeys", f"{path} (ACL)", before, self.acl.text(path))

    def deny(self, account: str, rights: str = "F", name: str | None = None) -> None:
        """Add a deny ACE (on the RDP key file, the named file, or "" for the folder)."""
        path = MACHINEKEYS if name == "" else self.file_path(name or self.rdp_key_name)
        before = self.acl.text(path)
        self.acl.grant(path, ace(account, rights, deny=True))
        self.journal.record("machinekeys", f"{path} (ACL)", before, self.acl.text(path))

    def corrupt(self, name: str | None = None) -> None:
        """Damage the key file's bytes for real: the middle third becomes random bytes."""
        real = self.fs.real(self.file_path(name or self.rdp_key_name))
        data = bytearray(real.read_bytes())
        third = len(data) // 3
        data[third:2 * third] = os.urandom(third)
        real.write_bytes(bytes(data))
        self.journal.record("machinekeys", self.fs.win(real), "intact", "corrupted")

    def replace_with_foreign_key(self, name: str | None = None) -> None:
        """Overwrite the key with a valid key that does not match the certificate."""
        self._write(name or self.rdp_key_name, key_pem(new_key()), "replaced by a foreign key")

    def delete(self, name: str | None = None) -> None:
        path = self.file_path(name or self.rdp_key_name)
        self.fs.remove(path)
        self.acl.forget(path)
        self.journal.record("machinekeys", path, "present", None)

    def rename_folder(self, new_name: str) -> str:
        new_path = self.fs.rename(MACHINEKEYS, new_name)
        self.acl.move(MACHINEKEYS, new_path)
        self.journal.record("machinekeys", MACHINEKEYS, "present", f"renamed to {new_path}")
        return new_path

    def snapshot(self) -> dict[str, Any]:
        files: dict[str, Any] = {}
        for name in self.names():
            path = self.file_path(name)
            try:
                self._parse(name)
                state = "ok"
            except KeyUnreadable:
                state = "corrupt"
            files[name] = {"state": state, "acl": self.acl.text(path),
                           "network_service_can_read":
                               self.acl.allows(path, "NETWORK SERVICE", "read")}
        return {"path": MACHINEKEYS, "exists": self.folder_usable(),
                "acl": self.acl.text(MACHINEKEYS) if self.folder_usable() else None,
                "system_can_create": self.folder_usable()
                and self.acl.allows(MACHINEKEYS, "SYSTEM", "write"),
                "files": files}
