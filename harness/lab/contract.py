"""The lab contract: everything a cell, the CLI and other commands may ask of a backend.

A backend is a class registered by name in `harness/lab/registry.py` (as pytest-testinfra's
connection backends are). Callers use only what is declared here, never `hasattr`:

- class level, before any lab exists: `availability()` (can it run on this machine at all),
  `preflight(spec)` (can it run this lab: tools, boxes), `max_concurrent_labs(spec)` and
  `default_jobs(cores)` (how many labs may run at once, how many workers to use);
- a running lab (a context manager: `with backend(spec, workdir, nodes) as lab`, or through
  `LabHandle`): `probe`, `inject` / `install_os` / `apply_network_fault` (the steps of a fault),
  `run_remediation` (a script on its target nodes), `verify_state` (checks of the real state a
  script left, where there is one), `unsupported(requirement)` (preflight for a fault's
  `requires`), `client_endpoint()` (where a real client program on the client node connects),
  and `snapshot()` / `restore()` (the cell lifecycle: every remediation of one fault starts from
  the lab the fault left).

Every method returns a typed value; nothing is passed back by mutating the lab.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Self

if TYPE_CHECKING:
    from ..probe.profiles import ClientProfile
    from ..probe.result import ProbeResult
    from ..pwsh.remediation import Remediation
    from ..pwsh.result import RemediationResult
    from ..windows.node import WindowsNode
    from .definition import LabSpec


@dataclass(frozen=True)
class GatewayEndpoint:
    """The RD Gateway a real client on the client node uses (`xfreerdp /g:address:port`)."""

    address: str
    port: int
    name: str  # the gateway's name in the client's settings


@dataclass(frozen=True)
class ClientEndpoint:
    """Where a real client program started on the client node connects.

    `prefix` is an argv prefix that runs a program on the client node (`ip netns exec <ns>` on
    netns); None means this process's own network (loopback), where `address` is what the
    client's name resolves to and must be given to the program (a private hosts file).
    """

    address: str
    port: int
    server_name: str  # the name the client uses for the host (its certificate check)
    prefix: tuple[str, ...] | None = None
    gateway: GatewayEndpoint | None = None


@dataclass(frozen=True)
class DomainController:
    """The lab's domain controller as the client node sees it: the realm its KDC serves, the
    krb5.conf a real Kerberos client on the client node uses (`KRB5_CONFIG`), where the KDC
    listens, and its log (what the KDC itself decided)."""

    realm: str
    krb5_conf: Path
    kdc_address: str
    kdc_port: int
    kdc_log: Path


@dataclass(frozen=True)
class StepEffect:
    """What one injection step did: the journal line, and what the cell must know afterwards
    (`client_program`: the user now connects with another client profile)."""

    line: str
    client_program: str | None = None


@dataclass
class LabSnapshot:
    """A lab's state at one point (`Lab.snapshot`); `restore` brings the lab back to it.

    `state` belongs to the backend that made it (the model's nodes and files, the kernel's
    network faults, a VM snapshot's name); `describe()` is what a journal records."""

    name: str
    backend: str
    state: Any = field(repr=False, default=None)
    taken_at: str = ""
    restores: int = 0

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "backend": self.backend, "taken_at": self.taken_at,
                "restores": self.restores}


class LabBackend(ABC):
    """The contract; `harness/lab/base.py:Lab` implements it for the Windows model."""

    backend: ClassVar[str] = "abstract"  # the name it is registered under
    # It can run as a trainer's lab that stays up (`rdplab up`, `classroom`): one supervisor
    # process holds it and answers a published port. A backend of real VMs has its own.
    trainable: ClassVar[bool] = False

    def __init__(self, spec: LabSpec, workdir: Path, nodes: dict[str, WindowsNode]) -> None:
        """Every backend is built the same way (registry.backend_class(name)(...)): the lab's
        spec, a work directory it may use, and the Windows nodes (the model)."""
        self.spec = spec
        self.workdir = workdir
        self.nodes = nodes

    # -- before a lab exists ---------------------------------------------------------------------

    @classmethod
    def availability(cls) -> str | None:
        """Why this backend cannot run on this machine at all, or None when it can."""
        return None

    @classmethod
    def lacks(cls, requirement: str) -> str | None:
        """Why no lab of this backend can ever meet a fault's requirement ('netns'), or None
        (what depends on the lab file, such as 'gateway', is `unsupported`'s to say)."""
        return None

    @classmethod
    def preflight(cls, spec: LabSpec) -> None:
        """Raise BackendUnavailable (harness.errors) naming what this machine lacks to run
        `spec` (tools, images, boxes); nothing is created."""
        why = cls.availability()
        if why is None and spec.has_domain_controller:
            why = domain_controller_unavailable()
        if why is not None:
            from ..errors import BackendUnavailable

            raise BackendUnavailable(f"the {cls.backend} backend cannot run here: {why}")

    @classmethod
    def max_concurrent_labs(cls, spec: LabSpec) -> int | None:
        """How many labs of `spec` may run at once on this machine (None: no limit)."""
        return None

    @classmethod
    def default_jobs(cls, cores: int) -> int:
        """Worker processes a matrix uses by default on a machine with `cores` cores."""
        return max(1, min(8, cores))

    # -- a running lab ---------------------------------------------------------------------------

    @abstractmethod
    def start(self) -> None:
        """Bring the lab up."""

    @abstractmethod
    def close(self) -> None:
        """Tear everything down; safe to call twice, also after a failed start."""

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def path_randomness(self) -> str | None:
        """Why two connections made now may meet different paths (random loss, jitter or
        reordering on a link), or None when the path treats every connection alike."""
        return None

    def settle(self, since: float) -> None:
        """After a client closed: wait (bounded) until the lab's servers have finished the
        connections made since `since` (time.monotonic()); nothing to wait for by default."""
        del since

    @abstractmethod
    def sync(self) -> None:
        """Make the network follow the lab's state (listening, firewall, MTU, names)."""

    @abstractmethod
    def unsupported(self, requirement: str) -> str | None:
        """Why this lab cannot meet a fault's requirement ('netns', 'gateway'), or None."""

    @abstractmethod
    def probe(self, profile: ClientProfile, *, usable_window: float | None = None,
              adaptive_floor: float | None = None, overall_timeout: float = 30.0) -> ProbeResult:
        """Connect as the client machine would run this client program now (the wait for
        graphics: `usable_window`; with `adaptive_floor`, every wait adapts to how fast the
        server answered on this connection, as ProbeOptions says)."""

    @abstractmethod
    def inject(self, role: str, action: str, args: dict[str, Any] | None = None
               ) -> dict[str, Any] | None:
        """Apply one fault action to the node in `role` (FaultError, NotEmulated); a real
        machine returns its record of what ran there, the model None."""

    @abstractmethod
    def install_os(self, role: str, os_profile: str) -> None:
        """The machine in `role` is (re)installed with another OS build."""

    @abstractmethod
    def apply_network_fault(self, action: str, args: dict[str, Any]) -> None:
        """A fault on the path between the nodes (NotEmulated where there is no such path)."""

    @property
    @abstractmethod
    def client_program(self) -> str | None:
        """The client profile the user runs now (the client machine's state: a fault may change
        it, a remediation may change it back); None: the lab's deciding profile."""

    @client_program.setter
    @abstractmethod
    def client_program(self, profile: str | None) -> None: ...

    @abstractmethod
    def run_remediation(self, remediation: Remediation) -> RemediationResult:
        """Run a remediation's script on its target nodes (PwshError, NotEmulated)."""

    def verify_state(self, remediation: Remediation) -> list[dict[str, Any]]:
        """Checks of the real state a remediation left (a VM's); empty where the lab's state
        is the model itself, which the probe reads directly."""
        return []

    def domain_controller(self) -> DomainController | None:
        """The running DC of a lab with a `dc` node (its KDC), None for a lab without one or a
        backend that runs none."""
        return None

    @abstractmethod
    def client_endpoint(self) -> ClientEndpoint:
        """Where a real client program on the client node connects now (NotEmulated when this
        backend gives no place to run one)."""

    @abstractmethod
    def snapshot(self, name: str) -> LabSnapshot:
        """The lab's state now, to come back to with restore()."""

    @abstractmethod
    def restore(self, snapshot: LabSnapshot) -> None:
        """Bring the lab back to `snapshot` exactly (state, and the network derived from it)."""


def domain_controller_unavailable() -> str | None:
    """What this machine lacks to run a lab's domain controller (a real MIT KDC), or None."""
    from ..rdp import kerberos
    from .kdc import missing_tools

    missing = missing_tools()
    if missing:
        return (f"the lab's domain controller needs MIT Kerberos ({', '.join(missing)} missing: "
                "Debian packages krb5-kdc krb5-admin-server krb5-user)")
    if not kerberos.available():
        return "the lab's domain controller needs python-gssapi: pip install 'rdplab[kerberos]'"
    return None


def kerberos_client_unavailable() -> str | None:
    """What this machine lacks for the client side of a domain lab's Kerberos (the probe's
    mstsc profiles: MIT kinit and kvno, python-gssapi), also when the KDC is not local (a
    real Active Directory DC on the Vagrant backend), or None."""
    from ..rdp import kerberos
    from .kdc import missing_client_tools

    missing = missing_client_tools()
    if missing:
        return (f"the probe's Kerberos against the lab's domain controller needs MIT Kerberos "
                f"client tools ({', '.join(missing)} missing: Debian package krb5-user)")
    if not kerberos.available():
        return "the probe's Kerberos needs python-gssapi: pip install 'rdplab[kerberos]'"
    return None


__all__ = ["ClientEndpoint", "DomainController", "GatewayEndpoint", "LabBackend", "LabSnapshot",
           "StepEffect", "domain_controller_unavailable", "kerberos_client_unavailable"]
