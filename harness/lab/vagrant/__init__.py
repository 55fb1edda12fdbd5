"""The Vagrant backend, one module per concern: options (environment, boxes, preflight),
control (python-vagrant bounded in time, the VM lock, held connections), checks (testinfra
state checks), scripts (PowerShell for the VMs), lab (VagrantLab, the contract)."""

from .checks import ALWAYS, REMEDIATION_CHECKS, StateCheck
from .control import HeldConnections, VagrantControl, VmLock
from .lab import VagrantLab
from .options import (
    DEFAULT_BOXES,
    SNAPSHOT,
    VagrantOptions,
    VagrantUnavailable,
    box_env_var,
    box_for,
    preflight,
    required_boxes,
    vm_snapshot_name,
    vm_targets,
)
from .scripts import mstsc_script, parse_mstsc_events

__all__ = ["ALWAYS", "DEFAULT_BOXES", "REMEDIATION_CHECKS", "SNAPSHOT", "HeldConnections",
           "StateCheck", "VagrantControl", "VagrantLab", "VagrantOptions", "VagrantUnavailable",
           "VmLock", "box_env_var", "box_for", "mstsc_script", "parse_mstsc_events", "preflight",
           "required_boxes", "vm_snapshot_name", "vm_targets"]
