"""A lab topology file (labs/*.yaml), schema-checked, with users generated when not given."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faker import Faker

from ..probe.profiles import ProfileError, load_profile
from ..scenario.schema import check
from ..scenario.source import ScenarioFileError, load_sourced

LAB_DIR = Path(__file__).resolve().parents[2] / "labs"


# Model addresses of the nodes, the same on every backend (the netns backend makes them real).
ADDRESSES = {"client": "10.213.1.2", "host": "10.213.2.2", "gateway": "10.213.3.2",
             "dc": "10.213.4.2"}


@dataclass(frozen=True)
class NodeSpec:
    role: str
    name: str
    os: str
    updates: tuple[str, ...] = ()
    rdp_certificate: str = "lab-ca"  # lab-ca | self-signed (TermService's own)


@dataclass(frozen=True)
class LabSpec:
    """Everything a backend needs to build the lab (no state: that lives in the nodes)."""

    name: str
    description: str
    path: Path
    seed: int
    domain: str
    dns_domain: str
    nodes: dict[str, NodeSpec]
    users: dict[str, str]
    vpn: bool = True
    vpn_mtu: int = 1500
    profile: str = "mstsc-win11"
    code_profiles: tuple[str, ...] = ("mstsc-win11", "freerdp2")
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def has_gateway(self) -> bool:
        return "gateway" in self.nodes

    @property
    def has_domain_controller(self) -> bool:
        return "dc" in self.nodes

    @property
    def realm(self) -> str:
        """The Kerberos realm of the lab's domain (Active Directory: the DNS domain in capitals)."""
        return self.dns_domain.upper()

    @property
    def user(self) -> tuple[str, str]:
        """The user the lab's client logs on as (the first one)."""
        name = next(iter(self.users))
        return name, self.users[name]


def _password(fake: Faker) -> str:
    # Meets Windows' default complexity rules: upper, lower, digit, symbol, 14 characters.
    return fake.password(
        length=14, special_chars=True, digits=True, upper_case=True, lower_case=True
    )


def resolve_lab_path(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return path
    return LAB_DIR / f"{name_or_path}.yaml"


_loaded: dict[tuple[Path, int, int], LabSpec] = {}


def load_lab(name_or_path: str | Path) -> LabSpec:
    """Load and check a lab file; errors name the file, line and field.

    Cached by path, size and modification time, so the cells of one run parse it once.
    """
    path = resolve_lab_path(name_or_path)
    try:
        stat = path.stat()
    except OSError:
        return _load_lab(path)
    key = (path.resolve(), stat.st_size, stat.st_mtime_ns)
    if key not in _loaded:
        _loaded[key] = _load_lab(path)
    return _loaded[key]


def _load_lab(path: Path) -> LabSpec:
    doc = load_sourced(path)
    data = check(doc, "lab")
    seed = int(data.get("seed", 0))
    fake = Faker()
    fake.seed_instance(seed)
    users: dict[str, str] = {}
    for i, user in enumerate(data.get("users") or [{"name": fake.user_name()}]):
        users[user["name"]] = user.get("password") or _password(fake)
        if not user["name"].strip():
            raise doc.error(("users", i, "name"), "must not be empty")
    for key in ("profile",):
        if key in data:
            try:
                load_profile(data[key])
            except ProfileError as exc:
                raise doc.error((key,), str(exc)) from None
    for i, name in enumerate(data.get("code_profiles", [])):
        try:
            load_profile(name)
        except ProfileError as exc:
            raise doc.error(("code_profiles", i), str(exc)) from None
    nodes = {
        role: NodeSpec(role, spec["name"], spec["os"], tuple(spec.get("updates", [])),
                       spec.get("rdp_certificate", "lab-ca"))
        for role, spec in data["nodes"].items()
    }
    from ..windows.os_profiles import load_profile as load_os

    for role, node in nodes.items():
        try:
            load_os(node.os)
        except (KeyError, ValueError, FileNotFoundError) as exc:
            raise doc.error(
                ("nodes", role, "os"), f"unknown OS profile {node.os!r}: {exc}"
            ) from None
    network = data.get("network", {})
    return LabSpec(
        name=data["name"],
        description=data["description"],
        path=path,
        seed=seed,
        domain=data.get("domain", "LAB"),
        dns_domain=data.get("dns_domain", "lab.test"),
        nodes=nodes,
        users=users,
        vpn=network.get("path", "vpn") == "vpn",
        vpn_mtu=int(network.get("vpn_mtu", 1500)),
        profile=data.get("profile", "mstsc-win11"),
        code_profiles=tuple(data.get("code_profiles", ("mstsc-win11", "freerdp2"))),
        raw=data,
    )


__all__ = ["LabSpec", "NodeSpec", "ScenarioFileError", "load_lab"]
