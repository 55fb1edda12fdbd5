"""LocalMachine certificate stores; "Remote Desktop" holds the certificate TermService serves."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from .journal import ActionJournal
from .labca import RDP_CERT_DAYS, LabCA, new_key, termservice_self_signed
from .machinekeys import MachineKeys

RDP_STORE = "Remote Desktop"
STORES = (RDP_STORE, "My", "Root")
RDP_ISSUER_LAB_CA = "lab-ca"
RDP_ISSUER_SELF = "self-signed"
RDP_ISSUERS = (RDP_ISSUER_LAB_CA, RDP_ISSUER_SELF)


@dataclass(frozen=True)
class StoredCert:
    """A certificate in a store, with the name of its private-key file in MachineKeys."""

    cert: x509.Certificate
    key_name: str | None

    @property
    def thumbprint(self) -> str:
        return self.cert.fingerprint(hashes.SHA1()).hex().upper()

    @property
    def serial(self) -> str:
        return format(self.cert.serial_number, "x")

    @property
    def subject(self) -> str:
        return self.cert.subject.rfc4514_string()

    @property
    def not_before(self) -> dt.datetime:
        return self.cert.not_valid_before_utc

    @property
    def not_after(self) -> dt.datetime:
        return self.cert.not_valid_after_utc

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def expired(self, at: dt.datetime) -> bool:
        return at >= self.not_after

    def to_json(self) -> dict[str, Any]:
        return {"thumbprint": self.thumbprint, "serial": self.serial, "subject": self.subject,
                "not_before": self.not_before.isoformat(), "not_after": self.not_after.isoformat(),
                "key_name": self.key_name}


class CertStore:
    """Cert:\\LocalMachine\\<store>; issuing goes through the lab CA and MachineKeys."""

    def __init__(self, ca: LabCA, machinekeys: MachineKeys, clock: Callable[[], dt.datetime],
                 fqdn: str, names: list[str], journal: ActionJournal | None = None, *,
                 rdp_issuer: str = RDP_ISSUER_LAB_CA) -> None:
        if rdp_issuer not in RDP_ISSUERS:
            raise ValueError(f"rdp_issuer must be one of {RDP_ISSUERS}, not {rdp_issuer!r}")
        self.ca, self.machinekeys, self.clock = ca, machinekeys, clock
        self.fqdn, self.names = fqdn, names
        # Who issues the RDP listener's certificate: the lab CA (deployed by the lab, as an
        # enterprise deploys one from its CA) or TermService itself (self-signed, its default).
        self.rdp_issuer = rdp_issuer
        self.journal = journal if journal is not None else ActionJournal()
        self.stores: dict[str, list[StoredCert]] = {name: [] for name in STORES}

    def store(self, name: str) -> list[StoredCert]:
        for key, certs in self.stores.items():
            if key.lower() == name.lower():
                return certs
        raise KeyError(name)

    def rdp_certificate(self) -> StoredCert | None:
        """The certificate the listener serves: the newest in the Remote Desktop store."""
        certs = self.stores[RDP_STORE]
        return max(certs, key=lambda c: c.not_before) if certs else None

    def add(self, store: str, item: StoredCert) -> None:
        self.store(store).append(item)
        self.journal.record("certstore", f"{store}\\{item.thumbprint}", None, item.to_json())

    def remove(self, store: str, thumbprint: str) -> bool:
        certs = self.store(store)
        for item in list(certs):
            if item.thumbprint == thumbprint.upper():
                certs.remove(item)
                self.journal.record("certstore", f"{store}\\{item.thumbprint}", item.to_json(),
                                    None)
                return True
        return False

    def _issue(self, key_name: str, key: Any, not_before: dt.datetime,
               not_after: dt.datetime) -> StoredCert:
        if self.rdp_issuer == RDP_ISSUER_SELF:
            cert = termservice_self_signed(key, self.fqdn, not_before, not_after)
        else:
            cert = self.ca.issue(key.public_key(), self.fqdn, self.names, not_before, not_after)
        return StoredCert(cert, key_name)

    def issue_rdp_certificate(self, account: str = "SYSTEM") -> StoredCert:
        """What TermService does when its certificate is missing or expired: a new key in
        MachineKeys (KeyStoreError when the store refuses), a new certificate replacing the old."""
        key = self.machinekeys.create_key(self.machinekeys.rdp_key_name, account)
        now = self.clock()
        item = self._issue(self.machinekeys.rdp_key_name, key, now,
                           now + dt.timedelta(days=RDP_CERT_DAYS))
        for old in list(self.stores[RDP_STORE]):
            self.remove(RDP_STORE, old.thumbprint)
        self.add(RDP_STORE, item)
        return item

    # -- fault injection --------------------------------------------------------------------

    def replace_with_validity(self, not_before: dt.datetime, not_after: dt.datetime) -> StoredCert:
        """Re-issue the RDP certificate for the same key with the given validity."""
        name = self.machinekeys.rdp_key_name
        key = self.machinekeys.read_key_as_admin(name)
        if key is None:
            key = new_key()
            self.machinekeys.store_key_as_admin(name, key)
        item = self._issue(name, key, not_before, not_after)
        for old in list(self.stores[RDP_STORE]):
            self.remove(RDP_STORE, old.thumbprint)
        self.add(RDP_STORE, item)
        return item

    def replace_with_expired(self, days_ago: int = 30) -> StoredCert:
        """An RDP certificate that expired `days_ago` days ago on the node's clock."""
        end = self.clock() - dt.timedelta(days=days_ago)
        return self.replace_with_validity(end - dt.timedelta(days=RDP_CERT_DAYS), end)

    def remove_rdp_certificate(self) -> None:
        for old in list(self.stores[RDP_STORE]):
            self.remove(RDP_STORE, old.thumbprint)

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        return {name: [c.to_json() for c in certs] for name, certs in self.stores.items()}
