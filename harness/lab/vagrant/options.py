"""How the Vagrant lab reaches its VMs: options from the environment, the boxes per OS, the
VM for each node, and what this machine must have (preflight)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import BackendUnavailable, LabError
from ..base import ADDRESSES
from ..definition import LabSpec
from ..winrm_runner import WinRMTarget

REPO_ROOT = Path(__file__).resolve().parents[3]
SNAPSHOT = "rdplab-baseline"
ROLES = ("client", "host", "gateway", "dc")
# Public boxes that fit (Vagrant Cloud, VirtualBox/Hyper-V/VMware); any box with WinRM works.
DEFAULT_BOXES = {
    "windows-11": "gusztavvargadr/windows-11",
    "windows-server-2022": "gusztavvargadr/windows-server-2022-standard",
}
DEFAULT_WINRM_CREDENTIALS = ("vagrant", "vagrant")  # the convention of public Windows boxes
# A domain lab's secrets on its DC VM (lab-only defaults, the Vagrantfile's): the domain
# administrator (LAB\Administrator) and the Directory Services Restore Mode password.
DEFAULT_DOMAIN_ADMIN_PASSWORD = "Rdplab-Admin-2026!"
DEFAULT_SAFE_MODE_PASSWORD = "Rdplab-SafeMode-2026!"
ON_CLOSE = ("restore", "halt", "keep")


class VagrantUnavailable(BackendUnavailable):
    """Something the Vagrant lab needs is missing on this machine (named in the message)."""


def vm_snapshot_name(lab: str, name: str) -> str:
    """A VM snapshot's name for one of the lab's own snapshots (`rdplab-<lab>-<name>`)."""
    return "rdplab-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{lab}-{name}")


def box_env_var(os_id: str) -> str:
    """RDPLAB_BOX_<OS>: windows-server-2008r2 -> RDPLAB_BOX_WINDOWS_SERVER_2008R2."""
    return "RDPLAB_BOX_" + re.sub(r"[^A-Z0-9]", "_", os_id.upper())


def box_for(os_id: str, env: Mapping[str, str] | None = None) -> str | None:
    """The box for an OS profile: $RDPLAB_BOX_<OS>, else the default, else None (the
    Vagrantfile applies the same rule)."""
    env = os.environ if env is None else env
    return env.get(box_env_var(os_id)) or DEFAULT_BOXES.get(os_id)


def _env_float(env: Mapping[str, str], name: str, default: float) -> float:
    try:
        return float(env.get(name, default))
    except ValueError:
        raise LabError(f"${name} must be a number of seconds, not {env[name]!r}") from None


@dataclass
class VagrantOptions:
    """How the lab reaches its VMs. `from_env()` reads the documented environment variables:

    RDPLAB_VAGRANT_ROOT (the directory of the Vagrantfile; default the repository root),
    RDPLAB_VAGRANT_PROVIDER, RDPLAB_VAGRANT_ON_CLOSE (restore|halt|keep),
    RDPLAB_WINRM_USER / RDPLAB_WINRM_PASSWORD (default vagrant/vagrant), per node
    RDPLAB_WINRM_USER_<ROLE> / RDPLAB_WINRM_PASSWORD_<ROLE>, RDPLAB_WINRM_PORT (5985),
    RDPLAB_VM_ADDRESS_<ROLE> (default the model address), RDPLAB_GATEWAY=1 (a gateway VM
    even when the lab has none), a domain lab's RDPLAB_DOMAIN_ADMIN_PASSWORD and
    RDPLAB_DC_SAFEMODE_PASSWORD (defaults above), RDPLAB_VAGRANT_MIRROR_MODEL=0 (do not
    apply to the model),
    RDPLAB_VAGRANT_<X>_TIMEOUT in seconds for X in UP, SNAPSHOT, HALT, WINRM, FAULT,
    REMEDIATION, REBOOT, CHECK, MSTSC, LOCK.
    """

    root: Path = REPO_ROOT
    provider: str | None = None
    on_close: str = "restore"
    snapshot: str = SNAPSHOT
    winrm_port: int = 5985
    credentials: dict[str, tuple[str, str]] = field(default_factory=dict)
    addresses: dict[str, str] = field(default_factory=lambda: dict(ADDRESSES))
    gateway: bool = False
    mirror_model: bool = True
    domain_admin_password: str = DEFAULT_DOMAIN_ADMIN_PASSWORD
    safe_mode_password: str = DEFAULT_SAFE_MODE_PASSWORD
    up_timeout: float = 3600.0
    snapshot_timeout: float = 900.0
    halt_timeout: float = 600.0
    query_timeout: float = 120.0  # status, box list, snapshot list
    winrm_timeout: float = 900.0  # until WinRM answers after up / restore
    fault_timeout: float = 300.0
    remediation_timeout: float = 1800.0
    reboot_timeout: float = 1200.0
    check_timeout: float = 120.0
    mstsc_timeout: float = 120.0
    lock_timeout: float = 3600.0  # waiting for another process's cell on the same VMs
    env: dict[str, str] = field(default_factory=dict)  # the environment read (box_for)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> VagrantOptions:
        env = dict(os.environ if env is None else env)
        user = env.get("RDPLAB_WINRM_USER", DEFAULT_WINRM_CREDENTIALS[0])
        password = env.get("RDPLAB_WINRM_PASSWORD", DEFAULT_WINRM_CREDENTIALS[1])
        credentials = {
            role: (env.get(f"RDPLAB_WINRM_USER_{role.upper()}", user),
                   env.get(f"RDPLAB_WINRM_PASSWORD_{role.upper()}", password))
            for role in ROLES
        }
        addresses = {role: env.get(f"RDPLAB_VM_ADDRESS_{role.upper()}", address)
                     for role, address in ADDRESSES.items()}
        on_close = env.get("RDPLAB_VAGRANT_ON_CLOSE", "restore")
        if on_close not in ON_CLOSE:
            raise LabError(f"$RDPLAB_VAGRANT_ON_CLOSE must be one of {ON_CLOSE}, not {on_close!r}")
        options = cls(
            root=Path(env.get("RDPLAB_VAGRANT_ROOT", REPO_ROOT)),
            provider=env.get("RDPLAB_VAGRANT_PROVIDER") or None, on_close=on_close,
            winrm_port=int(env.get("RDPLAB_WINRM_PORT", 5985)), credentials=credentials,
            addresses=addresses, gateway=env.get("RDPLAB_GATEWAY", "0") == "1",
            mirror_model=env.get("RDPLAB_VAGRANT_MIRROR_MODEL", "1") != "0", env=env,
            domain_admin_password=env.get("RDPLAB_DOMAIN_ADMIN_PASSWORD",
                                          DEFAULT_DOMAIN_ADMIN_PASSWORD),
            safe_mode_password=env.get("RDPLAB_DC_SAFEMODE_PASSWORD",
                                       DEFAULT_SAFE_MODE_PASSWORD),
        )
        for name in ("up", "snapshot", "halt", "winrm", "fault", "remediation", "reboot",
                     "check", "mstsc", "lock"):
            var = f"RDPLAB_VAGRANT_{name.upper()}_TIMEOUT"
            setattr(options, f"{name}_timeout", _env_float(env, var,
                                                           getattr(options, f"{name}_timeout")))
        return options

    def credentials_for(self, role: str) -> tuple[str, str]:
        return self.credentials.get(role, DEFAULT_WINRM_CREDENTIALS)


def vm_targets(spec: LabSpec, options: VagrantOptions) -> dict[str, WinRMTarget]:
    """Lab node -> VM: the Vagrant machine is named after the role, at the node's address."""
    targets = {}
    for role in spec.nodes:
        user, password = options.credentials_for(role)
        targets[role] = WinRMTarget(role, role, options.addresses.get(role, ADDRESSES[role]),
                                    user, password, port=options.winrm_port)
    return targets


def required_boxes(spec: LabSpec, options: VagrantOptions) -> dict[str, str]:
    """role -> box name; VagrantUnavailable naming the variable when an OS has no box."""
    boxes = {}
    for role, node in spec.nodes.items():
        box = box_for(node.os, options.env)
        if box is None:
            raise VagrantUnavailable(
                f"no Vagrant box for OS {node.os} (the {role} node {node.name} of lab "
                f"{spec.name}): set ${box_env_var(node.os)} to a box you built or added "
                "(docs/vagrant.md lists what fits)")
        boxes[role] = box
    return boxes


def preflight(root: Path) -> Any:
    """The python-vagrant module, once everything the lab needs here is present; otherwise
    VagrantUnavailable saying what is missing (python-vagrant, pywinrm, `vagrant`, Vagrantfile)."""
    try:
        import vagrant
    except ImportError:
        raise VagrantUnavailable("python-vagrant is not installed: pip install "
                                 "'rdplab[vagrant]' (python-vagrant, pywinrm, "
                                 "pytest-testinfra)") from None
    try:
        import winrm  # noqa: F401
    except ImportError:
        raise VagrantUnavailable("pywinrm is not installed: pip install 'rdplab[vagrant]'"
                                 ) from None
    if not vagrant.get_vagrant_executable():
        raise VagrantUnavailable(
            "the `vagrant` binary is not on PATH: the Vagrant lab needs Vagrant, a provider "
            "(VirtualBox, libvirt, Hyper-V) and the Windows boxes; use the loopback or netns "
            "backend on a machine without them")
    if not (Path(root) / "Vagrantfile").is_file():
        raise VagrantUnavailable(f"no Vagrantfile in {root} (set $RDPLAB_VAGRANT_ROOT)")
    return vagrant


__all__ = ["DEFAULT_BOXES", "DEFAULT_DOMAIN_ADMIN_PASSWORD", "DEFAULT_SAFE_MODE_PASSWORD",
           "DEFAULT_WINRM_CREDENTIALS", "ON_CLOSE", "REPO_ROOT", "ROLES",
           "SNAPSHOT", "VagrantOptions", "VagrantUnavailable", "box_env_var", "box_for",
           "preflight", "required_boxes", "vm_snapshot_name", "vm_targets"]
