"""One Windows machine of the lab: its state, and the HostPolicy / ClientSettings derived from it.

Nothing here is configured twice: a host's policy for the next connection is computed from the
registry, certificate store, key store, services, clock, users and patch level at that moment.
"""

from __future__ import annotations

import copy
import datetime as dt
import threading
from pathlib import Path
from typing import Any, Literal

from harness.gateway.policy import GatewayPolicy
from harness.host.policy import CredentialUnavailable, HostPolicy, TlsCredential
from harness.rdp.server_config import neg_rsp_flags_for_build

from . import derive
from .acl import AclTable, ace
from .certstore import RDP_ISSUER_LAB_CA, CertStore, StoredCert
from .eventlog import EventLog
from .filesystem import WinFs
from .firewall import Firewall, FirewallRule, Verdict
from .gateway import (
    GATEWAY_CERT_DAYS,
    GATEWAY_KEY_PREFIX,
    GATEWAY_SERVICE,
    HTTPS_PORT,
    HTTPS_RULE,
    WEBSOCKET_GROUP,
    WEBSOCKET_RULE_PORT,
    GatewayConfig,
    default_config,
)
from .journal import ActionJournal
from .labca import LabCA, key_pem, new_key
from .machinekeys import KeyStoreError, KeyUnreadable, MachineKeys
from .managed import install_managed_services
from .network import Network
from .os_profiles import PatchLevel, load_profile
from .registry import (
    CRYPTOGRAPHY,
    MSTSC_DEFAULT,
    RDP_TCP,
    TERMINAL_SERVER,
    W32TIME_CONFIG,
    Registry,
    RegType,
)
from .services import ServiceManager
from .sessions import SessionTable
from .settings import ClientSettings
from .users import generate_users, machine_guid, seed_for

__all__ = ["ClientSettings", "WindowsNode"]

Role = Literal["client", "host", "gateway", "dc"]
DEFAULT_PROFILE = {"client": "windows-11", "host": "windows-server-2022",
                   "gateway": "windows-server-2022", "dc": "windows-server-2022"}
ERRINFO_SERVER_DENIED_CONNECTION = 7
# How long the RD Gateway waits for the host's SYN-ACK before answering E_PROXY_TS_CONNECTFAILED.
# Windows' value is [open]; the lab's is short (a LAN) and below the matrix's per-stage cap, so
# that bounding the client's waits never changes what a patient client would be told.
GATEWAY_CONNECT_TIMEOUT = 1.0
STANDARD_FOLDERS = ("C:\\Windows\\System32\\drivers\\etc", "C:\\Windows\\Temp",
                    "C:\\Users\\labadmin", "C:\\Users\\labadmin\\Documents", "C:\\Program Files")
# mstsc's saved settings (UTF-16 on Windows); the lab reads its RD Gateway lines from it.
DEFAULT_RDP = "C:\\Users\\labadmin\\Documents\\Default.rdp"
CLIENT_PROGRAM = "C:\\Windows\\System32\\mstsc.exe"  # the program that makes the connection


class WindowsNode:
    """A client, host or gateway; `lab_dir` holds the lab CA and this node's C: drive."""

    def __init__(self, name: str, role: Role, lab_dir: Path, *, os_profile: str | None = None,
                 fqdn: str | None = None, domain: str = "LAB", dns_domain: str = "lab.test",
                 users: dict[str, str] | None = None, addresses: list[str] | None = None,
                 installed_updates: list[str] | None = None, seed: int | None = None,
                 rdp_certificate_issuer: str = RDP_ISSUER_LAB_CA) -> None:
        if role not in DEFAULT_PROFILE:
            raise ValueError(f"role must be client, host, gateway or dc, not {role!r}")
        self.name, self.role = name, role
        self.computer_name = name.upper()
        self.domain, self.dns_domain = domain, dns_domain
        self.fqdn = fqdn or f"{name.lower()}.{dns_domain}"
        self.profile = load_profile(os_profile or DEFAULT_PROFILE[role])
        self.patches = PatchLevel(self.profile, list(installed_updates or []))
        seed = seed_for(name) if seed is None else seed
        self.lock = threading.RLock()
        self.journal = ActionJournal()
        self.network = Network(self.journal)
        self.eventlog = EventLog(self.now)
        self.registry = Registry(self.journal)
        for path, value_name, kind, data in self.profile.registry:
            self.registry.set(path, value_name, data, kind)
        self.registry.set(TERMINAL_SERVER, "MaxOutstandingConnections",
                          self.profile.max_outstanding_connections)
        if role != "client":  # the lab's hosts have Remote Desktop enabled
            self.registry.set(TERMINAL_SERVER, "fDenyTSConnections", 0)
        self.registry.set(CRYPTOGRAPHY, "MachineGuid", machine_guid(seed), RegType.REG_SZ)
        self.users = dict(users) if users is not None else generate_users(seed)
        self.fs = WinFs(Path(lab_dir) / "nodes" / name)
        for folder in STANDARD_FOLDERS:
            self.fs.mkdir(folder)
        self.acl = AclTable([ace("SYSTEM", "F"), ace("Administrators", "F")])
        self.machinekeys = MachineKeys(self.fs, self.acl, machine_guid(seed), self.journal)
        self.machinekeys.ensure_folder()
        self.ca = LabCA.load_or_create(Path(lab_dir))
        self.certstore = CertStore(self.ca, self.machinekeys, self.now, self.fqdn,
                                   [self.fqdn, self.computer_name.lower()], self.journal,
                                   rdp_issuer=rdp_certificate_issuer)
        self.firewall = Firewall(self.journal)
        for rule in self.profile.firewall_rules:
            self.firewall.add_rule(FirewallRule(
                rule["name"], rule["display_name"], rule["display_group"], rule["group"],
                rule["protocol"], tuple(rule["ports"]), enabled=role != "client"
                and not rule.get("websocket", False), service=rule.get("service"),
                program=rule.get("program")))
        self.network.add_nic("Ethernet", 1500, list(addresses or []), route=True)
        self.incomplete_connections = 0
        self.sessions = SessionTable(self.journal)  # the host's user sessions (qwinsta)
        self.client_program: str | None = None  # the RDP client the user runs (None: the lab's)
        self.modules: set[str] = set()  # PowerShell modules installed (PSWindowsUpdate)
        self.boot_count = 0
        self._listener: dict[str, int] = {}
        if role == "client":  # mstsc has been used: its settings key exists
            self.registry.create_key(MSTSC_DEFAULT)
        self._schannel = derive.capture_schannel(self.registry)
        self.services = ServiceManager(self.profile.services, self.eventlog, self.journal)
        self.services.on_start["TermService"] = self._termservice_started
        self.services.on_start["SessionEnv"] = self.check_certificate
        if self.services.is_running("TermService"):
            self._termservice_started()
        self.gateway: GatewayConfig | None = None
        if role == "gateway":
            self._install_gateway()
        self.winrm_https_thumbprint: str | None = None
        if role == "host":  # a managed server: WinRM HTTPS and SMB depend on the same state
            install_managed_services(self)
        self.eventlog.entries.clear()
        self.journal.entries.clear()
        self.journal.record("node", self.name, None, f"installed {self.profile.id} as {role}")

    def __getstate__(self) -> dict[str, Any]:
        """For lab snapshots (pickled): everything but the lock."""
        return {k: v for k, v in self.__dict__.items() if k != "lock"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.lock = threading.RLock()

    def __deepcopy__(self, memo: dict[int, Any]) -> WindowsNode:
        """A private copy of the machine's state (lab snapshots); its lock is a new one."""
        clone = object.__new__(type(self))
        memo[id(self)] = clone
        for key, value in self.__dict__.items():
            setattr(clone, key, threading.RLock() if key == "lock" else copy.deepcopy(value, memo))
        return clone

    # -- clock ----------------------------------------------------------------------------------

    def now(self) -> dt.datetime:
        """The node's local clock (real time plus its offset)."""
        return self.network.now()

    # -- TermService behaviour ------------------------------------------------------------------

    def _termservice_started(self) -> None:
        """The listener reads its port and connection limit when the service starts."""
        self._listener = {
            "port": int(self.registry.value(RDP_TCP, "PortNumber", 3389)),
            "max_outstanding": int(self.registry.value(TERMINAL_SERVER,
                                                       "MaxOutstandingConnections",
                                                       self.profile.max_outstanding_connections)),
        }
        self.check_certificate()

    def check_certificate(self) -> None:
        """Replace a missing or expired RDP certificate, or one whose key file is gone.

        Failure logs 1057 (no certificate to replace) or 1058 (replacing an expired one) with the
        key store's status, and the old certificate, if any, keeps being served.
        """
        cert = self.certstore.rdp_certificate()
        if cert is None:
            reason = "missing"
        elif cert.expired(self.now()):
            reason = "expired"
        elif cert.key_name is None or not self.machinekeys.exists(cert.key_name):
            reason = "key missing"
        else:
            return
        try:
            new = self.certstore.issue_rdp_certificate("SYSTEM")
        except KeyStoreError as exc:
            if reason == "expired":
                self.eventlog.write(1058, "The RD Session Host Server has failed to replace the "
                                    "expired self signed certificate used for RD Session Host "
                                    "Server authentication on SSL connections. The relevant "
                                    f"status code was {exc.status}")
            else:
                self.eventlog.write(1057, "The RD Session Host Server has failed to create a new "
                                    "self signed certificate to be used for RD Session Host "
                                    "Server authentication on SSL connections. The relevant "
                                    f"status code was {exc.status}")
            return
        self.eventlog.write(1056, "A new self signed certificate to be used for RD Session Host "
                            f"Server authentication on SSL connections has been generated. The "
                            f"name of the certificate is {self.fqdn}. The SHA1 hash of the "
                            f"certificate is {new.thumbprint}.", level="Information")

    def host_tls_versions(self) -> list[str]:
        """TLS versions the RDP listener can use: OS and updates, and Schannel's settings as
        read at the last boot (SCHANNEL registry changes need a restart)."""
        return derive.schannel_protocols(self._schannel, self.profile, self.patches.features(),
                                         "Server", rdp=True)

    def reload_schannel(self) -> None:
        """Schannel re-reads SCHANNEL\\Protocols (what a reboot does)."""
        self._schannel = derive.capture_schannel(self.registry)

    def served_credential(self) -> TlsCredential:
        """What the listener loads at each connection, as NETWORK SERVICE.

        Raises CredentialUnavailable with Schannel's event: 36871 when no TLS protocol is
        enabled, 36870 when the certificate or its private key cannot be used.
        """
        with self.lock:
            return self._schannel_credential(self.host_tls_versions(),
                                             self.certstore.rdp_certificate(),
                                             "no certificate in LocalMachine\\Remote Desktop")

    def _schannel_credential(self, versions: list[str], cert: Any, missing: str) -> TlsCredential:
        """What Schannel does when a service (as NETWORK SERVICE) acquires its TLS credential:
        36871 with no protocol enabled, 36870 when the certificate or its key cannot be used."""
        if not versions:
            self.eventlog.write(36871, "A fatal error occurred while creating a TLS server "
                                "credential. The internal error state is 10013.")
            raise CredentialUnavailable("no TLS protocol is enabled for the server", 36871,
                                        "10013")
        if cert is None or cert.key_name is None:
            self._log_36870("0x8009030E")
            raise CredentialUnavailable(missing, 36870, "0x8009030E")
        try:
            key = self.machinekeys.load_key(cert.key_name, "NETWORK SERVICE")
        except KeyUnreadable as exc:
            self._log_36870("0x8009030D")
            raise CredentialUnavailable(str(exc), 36870, "0x8009030D") from exc
        if key.public_key().public_numbers() != cert.cert.public_key().public_numbers():
            self._log_36870("0x8009030D")
            raise CredentialUnavailable("the private key does not match the certificate",
                                        36870, "0x8009030D")
        return TlsCredential(cert.pem, key_pem(key))

    def _log_36870(self, code: str) -> None:
        self.eventlog.write(36870, "A fatal error occurred when attempting to access the TLS "
                            "server credential private key. The error code returned from the "
                            f"cryptographic module is {code}. The internal error state is "
                            "10001.")

    def connection_limit_reached(self) -> bool:
        limit = self._listener.get("max_outstanding", self.profile.max_outstanding_connections)
        return self.incomplete_connections >= limit

    def host_policy(self) -> HostPolicy:
        """The HostPolicy for the next connection, derived from the node's state now."""
        with self.lock:
            features = self.patches.features()
            versions = self.host_tls_versions() or list(self.profile.tls_supported)
            return HostPolicy(
                security_layer=derive.security_layer(self.registry),
                user_authentication=derive.user_authentication(self.registry),
                min_encryption_level=derive.min_encryption_level(self.registry),
                tls_min=versions[0], tls_max=versions[-1],
                load_credential=self.served_credential,
                credssp_version=int(features["credssp_version"]),
                allow_encryption_oracle=derive.allow_encryption_oracle(self.registry, features),
                users=dict(self.users), domain=self.domain, computer_name=self.computer_name,
                dns_domain=self.dns_domain, clock_offset=self.network.clock_offset,
                deny_error_info=ERRINFO_SERVER_DENIED_CONNECTION
                if self.connection_limit_reached() else None,
                os_build=f"{self.profile.product} ({self.profile.build})",
                neg_rsp_flags=neg_rsp_flags_for_build(self.profile.build),
                max_outstanding_connections=int(self._listener.get(
                    "max_outstanding", self.profile.max_outstanding_connections)),
                # reconnected to the user's hung session: logon works, nothing is ever drawn
                **({"update_burst_bytes": 0}
                   if self.sessions.hung_session_of(list(self.users)) else {}),
            )

    def is_listening(self) -> bool:
        """TermService runs and Remote Desktop is enabled (fDenyTSConnections 0)."""
        with self.lock:
            deny = derive.policy_dword(self.registry, "fDenyTSConnections", TERMINAL_SERVER, 1)
            return self.services.is_running("TermService") and deny == 0

    def listening_port(self) -> int | None:
        """The port the listener bound at TermService's last start; None when not listening."""
        return self._listener.get("port") if self.is_listening() else None

    def firewall_verdict(self, port: int | None = None) -> Verdict:
        """allow, drop or reject for an inbound TCP SYN (default: the RDP port)."""
        with self.lock:
            target = port or self._listener.get("port") or int(
                self.registry.value(RDP_TCP, "PortNumber", 3389))
            return self.firewall.verdict(target)

    # -- RD Gateway (role "gateway") -----------------------------------------------------------

    def _install_gateway(self) -> None:
        """The RD Gateway role as the lab set it up: TSGateway running; an SSL certificate from
        the lab CA for the gateway's FQDN in LocalMachine\\My (enrolled a month ago, valid a
        year), bound to the gateway; the HTTPS and Remote Desktop (WebSocket) rules enabled; one
        CAP and one RAP for Domain Users (the lab adds the session host to the RAP's group)."""
        name, display, account = GATEWAY_SERVICE
        self.services.install(name, display, account, "Automatic", True)
        self.modules.add("remotedesktopservices")
        self.firewall.add_rule(FirewallRule(
            HTTPS_RULE["name"], HTTPS_RULE["display_name"], HTTPS_RULE["group"],
            HTTPS_RULE["group"], "TCP", (HTTPS_PORT,)))
        self.firewall.set_group_enabled(WEBSOCKET_GROUP, True)
        self.gateway = default_config(self.domain, self.journal)
        now = self.now()
        item = self.issue_gateway_certificate(now - dt.timedelta(days=30),
                                              now + dt.timedelta(days=GATEWAY_CERT_DAYS - 30))
        self.gateway.bind_certificate(item.thumbprint)

    @property
    def gateway_key_name(self) -> str:
        return f"{GATEWAY_KEY_PREFIX}_{self.machinekeys.machine_guid}"

    def issue_gateway_certificate(self, not_before: dt.datetime, not_after: dt.datetime,
                                  names: list[str] | None = None) -> StoredCert:
        """A lab-CA certificate for the gateway's key (created when missing) into
        LocalMachine\\My; it is not bound until SSLCertificate\\Thumbprint names it."""
        key_name = self.gateway_key_name
        key = self.machinekeys.read_key_as_admin(key_name)
        if key is None:
            key = new_key()
            self.machinekeys.store_key_as_admin(key_name, key)
        cert = self.ca.issue(key.public_key(), self.fqdn,
                             names or [self.fqdn, self.computer_name.lower()], not_before,
                             not_after)
        item = StoredCert(cert, key_name)
        self.certstore.add("My", item)
        return item

    def bound_gateway_certificate(self) -> StoredCert | None:
        if self.gateway is None or not self.gateway.ssl_thumbprint:
            return None
        want = self.gateway.ssl_thumbprint.upper()
        return next((c for c in self.certstore.store("My") if c.thumbprint == want), None)

    def replace_gateway_certificate(self, not_before: dt.datetime, not_after: dt.datetime
                                    ) -> StoredCert:
        """Re-issue the bound certificate (same key) with another validity and bind it."""
        assert self.gateway is not None, "not an RD Gateway"
        old = self.bound_gateway_certificate()
        item = self.issue_gateway_certificate(not_before, not_after)
        if old is not None:
            self.certstore.remove("My", old.thumbprint)
        self.gateway.bind_certificate(item.thumbprint)
        return item

    def gateway_credential(self) -> TlsCredential:
        """What TSGateway (NETWORK SERVICE) loads at each connection: the certificate
        SSLCertificate\\Thumbprint names in LocalMachine\\My, and its private key."""
        with self.lock:
            if self.gateway is None:
                raise CredentialUnavailable("this node is not an RD Gateway")
            return self._schannel_credential(
                self.gateway_tls_versions(), self.bound_gateway_certificate(),
                "no SSL certificate bound to RD Gateway (RDS:\\GatewayServer\\SSLCertificate)")

    def gateway_tls_versions(self) -> list[str]:
        """TLS versions Schannel serves HTTPS with (SCHANNEL values as read at the last boot)."""
        return derive.schannel_protocols(self._schannel, self.profile, self.patches.features(),
                                         "Server")

    def gateway_listening(self) -> bool:
        """TSGateway runs (HTTP.sys then listens on 443 for /remoteDesktopGateway/)."""
        with self.lock:
            service = self.services.find(GATEWAY_SERVICE[0])
            return self.gateway is not None and service is not None and service.running

    def gateway_policy(self) -> GatewayPolicy:
        """The GatewayPolicy for the next connection, derived from the node's state now:
        certificate (read per connection), CAP, RAP and the WebSocket firewall rule."""
        with self.lock:
            if self.gateway is None:
                raise ValueError(f"{self.name} is not an RD Gateway (role {self.role})")
            versions = self.gateway_tls_versions() or list(self.profile.tls_supported)
            return GatewayPolicy(
                load_credential=self.gateway_credential, users=dict(self.users),
                allowed_users=self.gateway.allowed_users(self.users),
                allowed_resources=self.gateway.allowed_resources(),
                rap=self.gateway.rap_rules(self.users),
                websocket_allowed=self.firewall_verdict(WEBSOCKET_RULE_PORT) == "allow",
                http_allowed=True, host_reachable=True, domain=self.domain,
                computer_name=self.computer_name, dns_domain=self.dns_domain,
                tls_min=versions[0], tls_max=versions[-1],
                connect_timeout=GATEWAY_CONNECT_TIMEOUT,
            )

    def outbound_verdict(self, address: str, port: int, program: str | None = None) -> str:
        """allow or block for an outbound TCP connect from this node (its firewall), made by
        `program` (None: a service)."""
        with self.lock:
            return self.firewall.outbound_verdict(address, port, program=program)

    def client_socket_error(self, address: str, port: int) -> OSError | None:
        """What the RDP client's connect() fails with on this machine before any packet leaves:
        WSAEINVAL with a corrupt Winsock catalog, WSAEACCES when the firewall blocks mstsc.exe
        outbound (rdp-facts §15); None when the connect may go ahead."""
        import errno

        with self.lock:
            if self.network.winsock_catalog != "ok":
                return OSError(errno.EINVAL, "WSAEINVAL (10022): An invalid argument was "
                               "supplied (the Winsock catalog is corrupt)")
            if self.firewall.outbound_verdict(address, port, program=CLIENT_PROGRAM) == "block":
                return PermissionError(errno.EACCES, "WSAEACCES (10013): An attempt was made "
                                       "to access a socket in a way forbidden by its access "
                                       f"permissions (outbound filter on {self.name}, "
                                       f"{CLIENT_PROGRAM} to {address}:{port})")
        return None

    # -- client side ----------------------------------------------------------------------------

    def client_settings(self) -> ClientSettings:
        with self.lock:
            features = self.patches.features()
            versions = derive.schannel_protocols(self._schannel, self.profile, features,
                                                 "Client")
            nic = self.network.route_nic()
            target = self.registry.value(MSTSC_DEFAULT, "MRU0")
            return ClientSettings(
                name=self.computer_name,
                os_build=f"{self.profile.product} ({self.profile.build})",
                credssp_version=int(features["credssp_version"]),
                allow_encryption_oracle=derive.allow_encryption_oracle(self.registry, features),
                tls_versions=tuple(versions),
                tls_min=versions[0] if versions else None,
                tls_max=versions[-1] if versions else None,
                clock_offset=self.network.clock_offset, mtu=nic.mtu if nic else 1500,
                nla_capable=self.profile.nla_capable,
                connection_target=str(target) if target else None,
                trusted_ca_pem=self.ca.cert_pem, hosts=dict(self.network.hosts),
                dns_cache=dict(self.network.dns_cache),
                dns_records=dict(self.network.dns_records), gateway=self.rd_gateway())

    def _rdp_file(self) -> dict[str, str]:
        real = self.fs.real(DEFAULT_RDP)
        if not real.is_file():
            return {}
        raw = real.read_bytes()
        text = raw.decode("utf-16") if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else \
            raw.decode("utf-8-sig", "replace")
        fields: dict[str, str] = {}
        for line in text.splitlines():
            name, _, rest = line.strip().partition(":")
            _, _, value = rest.partition(":")
            if name:
                fields[name.lower()] = value.strip()
        return fields

    def rd_gateway(self) -> str | None:
        """The RD Gateway mstsc goes through: Default.rdp's gatewayhostname when
        gatewayusagemethod is 1 (always); None for a direct connection."""
        fields = self._rdp_file()
        if fields.get("gatewayusagemethod") != "1":
            return None
        return fields.get("gatewayhostname") or None

    def set_rd_gateway(self, name: str | None, usage: int = 1) -> None:
        """Write Default.rdp's RD Gateway lines (other lines stay); None: no gateway."""
        real = self.fs.real(DEFAULT_RDP)
        before = self.rd_gateway()
        lines = []
        if real.is_file():
            lines = [ln for ln in real.read_text("utf-8-sig", "replace").splitlines()
                     if not ln.lower().startswith(("gatewayhostname:", "gatewayusagemethod:"))]
        if name is not None:
            lines += [f"gatewayhostname:s:{name}", f"gatewayusagemethod:i:{usage}"]
        real.parent.mkdir(parents=True, exist_ok=True)
        real.write_text("\n".join(lines) + "\n")
        self.journal.record("client", "Default.rdp RD Gateway", before, self.rd_gateway())

    def set_connection_target(self, target: str | None) -> None:
        """What mstsc's Computer box holds (HKCU\\...\\Terminal Server Client\\Default MRU0)."""
        if target is None:
            self.registry.delete_value(MSTSC_DEFAULT, "MRU0")
        else:
            self.registry.set(MSTSC_DEFAULT, "MRU0", target, RegType.REG_SZ)

    # -- machine-level actions ------------------------------------------------------------------

    def reboot(self) -> None:
        """Shut down and start: pending updates apply, MTUs and DNS cache reset, a missing
        MachineKeys folder is recreated, automatic services start (TermService checks its
        certificate)."""
        with self.lock:
            self.eventlog.write(6006, "The Event log service was stopped.", level="Information")
            self.services.shutdown()
            for kb in list(self.patches.pending):
                self.patches.pending.remove(kb)
                self.patches.installed.append(kb)
                self.journal.record("updates", kb, "pending", "installed")
            self.network.reboot()
            self.reload_schannel()
            self.machinekeys.ensure_folder()
            self.sessions.clear("ended by the reboot")
            self.boot_count += 1
            self.journal.record("node", "boot", self.boot_count - 1, self.boot_count)
            self.eventlog.write(6005, "The Event log service was started.", level="Information")
            self.services.start_automatic()
            if self.services.is_running("TermService"):
                for name in ("SessionEnv", "UmRdpService"):  # started on demand by TermService
                    if self.services.get(name).start_type != "Disabled":
                        self.services.start(name)

    def install_update(self, kb: str) -> bool:
        """Windows Update installs an applicable update; it takes effect at the next reboot.
        False when the update does not apply to this OS or is already there."""
        update = self.profile.update(kb)
        if update is None or update.kb in self.patches.installed + self.patches.pending:
            return False
        self.patches.pending.append(update.kb)
        self.journal.record("updates", update.kb, None, "pending")
        self.eventlog.write(19, "Installation Successful: Windows successfully installed the "
                            f"following update: {update.title} ({update.kb})",
                            level="Information")
        return True

    def uninstall_update(self, kb: str) -> None:
        for pool in (self.patches.installed, self.patches.pending):
            if kb in pool:
                pool.remove(kb)
                self.journal.record("updates", kb, "installed", None)

    def resync_time(self) -> tuple[bool, str]:
        """w32tm /resync, within MaxPos/MaxNegPhaseCorrection."""
        return self.network.resync(self.services.is_running("W32Time"),
                                   int(self.registry.value(W32TIME_CONFIG,
                                                           "MaxPosPhaseCorrection", 54000)),
                                   int(self.registry.value(W32TIME_CONFIG,
                                                           "MaxNegPhaseCorrection", 54000)))

    # -- fault injection shortcuts --------------------------------------------------------------

    def set_incomplete_connections(self, count: int) -> None:
        """Half-open connections held by something outside the node (a flood, a scanner);
        they survive service restarts. At the limit the host logs 1006 and denies (errinfo 7)."""
        before, self.incomplete_connections = self.incomplete_connections, count
        self.journal.record("node", "incomplete connections", before, count)
        if self.connection_limit_reached():
            self.eventlog.write(1006, "The RD Session Host Server has received a large number "
                                "of incomplete connections. The system may be under attack.",
                                level="Warning")

    # -- reporting ------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The node's state as a JSON-able dict, for journals."""
        with self.lock:
            return {
                "name": self.name, "role": self.role, "fqdn": self.fqdn,
                "os": {"profile": self.profile.id, "product": self.profile.product,
                       "build": self.profile.build, "installed": list(self.patches.installed),
                       "pending": list(self.patches.pending),
                       "features": self.patches.features()},
                "listening": self.is_listening(), "port": self.listening_port(),
                "firewall_verdict": self.firewall_verdict(),
                "host_tls": self.host_tls_versions(),
                "incomplete_connections": self.incomplete_connections,
                "boot_count": self.boot_count, "modules": sorted(self.modules),
                "registry": self.registry.snapshot(), "certstore": self.certstore.snapshot(),
                "machinekeys": self.machinekeys.snapshot(),
                "services": self.services.snapshot(), "firewall": self.firewall.snapshot(),
                "network": self.network.snapshot(), "events": self.eventlog.snapshot(),
                "gateway": self.gateway.snapshot() if self.gateway else None,
                "rd_gateway": self.rd_gateway(),
                "sessions": self.sessions.snapshot(), "client_program": self.client_program,
            }
