"""The node's network state: NICs and MTU, DNS client (hosts file, cache, resolver), clock."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import asdict, dataclass, field
from typing import Any

from .journal import ActionJournal


@dataclass
class Nic:
    alias: str
    mtu: int = 1500
    mtu_persistent: int = 1500  # netsh store=persistent; the active value returns to it at boot
    addresses: list[str] = field(default_factory=list)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


class Network:
    """NICs by alias (one carries the route to the peers), DNS client and the clock offset."""

    def __init__(self, journal: ActionJournal | None = None) -> None:
        self.journal = journal if journal is not None else ActionJournal()
        self.nics: dict[str, Nic] = {}
        self.route_alias = ""
        self.hosts: dict[str, str] = {}  # C:\Windows\System32\drivers\etc\hosts
        self.dns_records: dict[str, str] = {}  # what the configured DNS server answers
        self.dns_cache: dict[str, str] = {}
        self.clock_offset = 0.0  # seconds this node's clock is ahead of real time
        self.time_source_reachable = True
        self.winsock_catalog = "ok"  # ok | corrupt | reset pending restart

    # -- NICs ---------------------------------------------------------------------------------

    def add_nic(self, alias: str, mtu: int = 1500, addresses: list[str] | None = None,
                route: bool = False) -> Nic:
        """Add a NIC; `route=True` makes it the one traffic to the peers leaves by."""
        nic = Nic(alias, mtu, mtu, list(addresses or []))
        self.nics[alias.lower()] = nic
        self.journal.record("network", f"NIC {alias}", None, asdict(nic))
        if route or not self.route_alias:
            self.set_route(alias)
        return nic

    def nic(self, alias: str) -> Nic | None:
        return self.nics.get(alias.lower())

    def set_route(self, alias: str) -> None:
        before, self.route_alias = self.route_alias, self.nics[alias.lower()].alias
        self.journal.record("network", "route NIC", before or None, self.route_alias)

    def route_nic(self) -> Nic | None:
        return self.nic(self.route_alias) if self.route_alias else None

    def set_mtu(self, alias: str, mtu: int, persistent: bool = True) -> None:
        nic = self.nics[alias.lower()]
        before = nic.mtu
        nic.mtu = mtu
        if persistent:
            nic.mtu_persistent = mtu
        self.journal.record("network", f"NIC {nic.alias} MTU", before,
                            {"mtu": mtu, "persistent": persistent})

    def primary_address(self) -> str | None:
        nic = self.route_nic()
        return nic.addresses[0] if nic and nic.addresses else None

    # -- DNS client ---------------------------------------------------------------------------

    def set_hosts_entry(self, name: str, address: str | None) -> None:
        """Add, change or (address None) remove a hosts-file line."""
        key = name.lower()
        before = self.hosts.get(key)
        if address is None:
            self.hosts.pop(key, None)
        else:
            self.hosts[key] = address
        self.journal.record("network", f"hosts {name}", before, address)

    def set_dns_record(self, name: str, address: str | None) -> None:
        key = name.lower()
        before = self.dns_records.get(key)
        if address is None:
            self.dns_records.pop(key, None)
        else:
            self.dns_records[key] = address
        self.journal.record("network", f"DNS record {name}", before, address)

    def set_cached(self, name: str, address: str) -> None:
        """A (possibly stale) resolver-cache entry, as left by an earlier lookup."""
        before = self.dns_cache.get(name.lower())
        self.dns_cache[name.lower()] = address
        self.journal.record("network", f"DNS cache {name}", before, address)

    def flush_dns(self) -> int:
        count = len(self.dns_cache)
        if count:
            self.journal.record("network", "DNS cache", dict(self.dns_cache), {})
        self.dns_cache.clear()
        return count

    def resolve(self, name: str) -> str | None:
        """hosts file first, then the cache, then the DNS server (whose answer is cached)."""
        if _is_ip(name):
            return name
        key = name.lower().rstrip(".")
        if key in self.hosts:
            return self.hosts[key]
        if key in self.dns_cache:
            return self.dns_cache[key]
        answer = self.dns_records.get(key)
        if answer is not None:
            self.dns_cache[key] = answer
        return answer

    # -- clock --------------------------------------------------------------------------------

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.clock_offset)

    def set_clock_offset(self, seconds: float) -> None:
        before, self.clock_offset = self.clock_offset, float(seconds)
        self.journal.record("network", "clock offset (s)", before, self.clock_offset)

    def set_time_source_reachable(self, reachable: bool) -> None:
        before, self.time_source_reachable = self.time_source_reachable, reachable
        self.journal.record("network", "time source reachable", before, reachable)

    def resync(self, service_running: bool, max_pos: int, max_neg: int) -> tuple[bool, str]:
        """w32tm /resync: (done, the message w32tm prints)."""
        if not service_running:
            return False, ("The following error occurred: The service has not been started. "
                           "(0x80070426)")
        if not self.time_source_reachable:
            return False, "The computer did not resync because no time data was available."
        correction = -self.clock_offset  # positive: the clock must move forward
        limit = max_pos if correction > 0 else max_neg
        if limit != 0xFFFFFFFF and abs(correction) > limit:
            return False, ("The computer did not resync because the required time change was "
                           "too big.")
        self.set_clock_offset(0.0)
        return True, "The command completed successfully."

    def corrupt_winsock(self) -> None:
        """A broken LSP / damaged Winsock catalog (WinSock2\\Parameters): every socket()
        or connect() of a program fails with WSAEINVAL."""
        self._set_winsock("corrupt")

    def reset_winsock(self) -> None:
        """`netsh winsock reset`: the catalog is rebuilt from defaults at the next restart."""
        if self.winsock_catalog != "ok":
            self._set_winsock("reset pending restart")

    def _set_winsock(self, state: str) -> None:
        if state != self.winsock_catalog:
            self.journal.record("network", "Winsock catalog", self.winsock_catalog, state)
            self.winsock_catalog = state

    def reboot(self) -> None:
        """Active MTUs return to their persistent values; the resolver cache is empty; a reset
        Winsock catalog is rebuilt."""
        if self.winsock_catalog == "reset pending restart":
            self._set_winsock("ok")
        for nic in self.nics.values():
            if nic.mtu != nic.mtu_persistent:
                self.set_mtu(nic.alias, nic.mtu_persistent)
        self.dns_cache.clear()

    def snapshot(self) -> dict[str, Any]:
        return {"nics": [asdict(n) for n in self.nics.values()], "route": self.route_alias,
                "hosts": dict(self.hosts), "dns_records": dict(self.dns_records),
                "dns_cache": dict(self.dns_cache), "clock_offset": self.clock_offset,
                "time_source_reachable": self.time_source_reachable,
                "winsock_catalog": self.winsock_catalog}
