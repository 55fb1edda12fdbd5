"""The Vagrant backend's lab: the lab's nodes are real Windows VMs (Vagrantfile at the
repository root), behind the same contract as every backend.

Per cell: `start()` reuses the running VMs and restores their "rdplab-baseline" snapshot (or,
the first time, runs `vagrant up` and takes that snapshot); faults are injected by running the
PowerShell of vagrant_faults.py over WinRM; remediation scripts run for real (winrm_runner);
`verify_state()` checks the VMs' state afterwards with testinfra's winrm backend; the probe
connects over TCP from this machine to the host VM. `snapshot()` / `restore()` are real VM
snapshots (`vagrant snapshot save/restore`), so a fault's remediation cells start from the VMs
as the fault left them. `close()` restores the baseline (or halts the VMs, or keeps them, per
option) and deletes the fault snapshots. Every step lands in `records` (the cell journal's
Vagrant part) and, in short, in the model node's journal.

The model nodes stay: the probe's client settings (resolver, CredSSP policy, MRU0) come from
the client model, so faults and remediations are applied to the model too ("mirror"), and the
model's prediction is journalled next to what the real VM did.

Nothing here can run without Vagrant, a provider and the Windows boxes (the tests use fakes of
python-vagrant, pywinrm and testinfra, and say so); `start()` refuses with VagrantUnavailable
naming what is missing. Mapping and credentials: see VagrantOptions.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import logging
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ...probe.kerberos import KerberosClient
from ...probe.profiles import ClientProfile
from ...probe.runner import ProbeOptions, ProbeTarget
from ...pwsh.remediation import (
    TARGETS,
    NodeRef,
    Remediation,
    RemediationError,
    TargetNodeMissing,
    load_remediation,
)
from ...pwsh.remediation import run_remediation as run_model_remediation
from ...pwsh.result import RemediationResult, ScriptResult
from ...windows import faults as model_faults
from ...windows.node import WindowsNode
from .. import vagrant_faults
from ..base import ADDRESSES, RDP_PORT, Lab, NotEmulated
from ..contract import LabSnapshot, kerberos_client_unavailable
from ..definition import LabSpec
from ..winrm_runner import (
    LabError,
    LabTimeout,
    RunResult,
    WinRMRunner,
    call_with_deadline,
    encode_command,
)
from .checks import ALWAYS, REMEDIATION_CHECKS, StateCheck
from .control import HeldConnections, VagrantControl, VmLock
from .domain import (
    KERBEROS_PORT,
    MEMBERSHIP_SCRIPT,
    Dial,
    check_dc_ports,
    domain_rdp_user_script,
    domain_users_script,
    membership_error,
    write_krb5_conf,
)
from .options import (
    VagrantOptions,
    VagrantUnavailable,
    box_env_var,
    preflight,
    required_boxes,
    vm_snapshot_name,
    vm_targets,
)
from .scripts import (
    GATEWAY_CERTIFICATE_SCRIPT,
    RENEW_CERTIFICATE_SCRIPT,
    SERVED_CERTIFICATE_SCRIPT,
    clock_script,
    lab_user_script,
    mstsc_script,
    parse_mstsc_events,
)

log = logging.getLogger(__name__)


class VagrantLab(Lab):
    """Real Windows VMs; see the module docstring. Extra API for the matrix: inject(),
    run_remediation(), verify(), mstsc_attempt(), records."""

    backend = "vagrant"

    @classmethod
    def availability(cls) -> str | None:
        """What this machine lacks for any Vagrant lab (python-vagrant, pywinrm, `vagrant`,
        the Vagrantfile), or None."""
        try:
            preflight(VagrantOptions.from_env().root)
        except LabError as exc:
            return str(exc)
        return None

    @classmethod
    def preflight(cls, spec: LabSpec) -> None:
        """As availability(), and a box for every node's OS; VagrantUnavailable otherwise.

        A domain lab's DC is a VM running Active Directory: no local MIT KDC is needed (unlike
        LabBackend.preflight on the embedded backends), only the client side of Kerberos the
        probe's mstsc profiles use against it (kinit, kvno, python-gssapi)."""
        try:
            options = VagrantOptions.from_env()
            preflight(options.root)
            required_boxes(spec, options)
        except LabError as exc:
            raise VagrantUnavailable(f"the vagrant backend cannot run here: {exc}") from None
        if spec.has_domain_controller:
            why = kerberos_client_unavailable()
            if why is not None:
                raise VagrantUnavailable(f"the vagrant backend cannot run lab {spec.name} "
                                         f"here: {why}")

    @classmethod
    def max_concurrent_labs(cls, spec: LabSpec) -> int | None:
        """One: the VMs of a lab are shared (VmLock serialises cells across processes)."""
        return 1

    @classmethod
    def default_jobs(cls, cores: int) -> int:
        return 1

    def __init__(self, spec: LabSpec, workdir: Path, nodes: dict[str, WindowsNode], *,
                 options: VagrantOptions | None = None,
                 session_factory: Callable[..., Any] | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 dial: Dial = socket.create_connection) -> None:
        super().__init__(spec, workdir, nodes)
        self._dial = dial  # TCP from this machine to a VM (the DC's ports after `vagrant up`)
        self.kdc_port = KERBEROS_PORT  # the DC VM's Kerberos port as this machine reaches it
        self.options = options or VagrantOptions.from_env()
        self.targets = vm_targets(spec, self.options)
        self.records: list[dict[str, Any]] = []
        self._session_factory = session_factory
        self._sleep = sleep
        self._runners: dict[str, WinRMRunner] = {}
        self._control: VagrantControl | None = None
        self._held = HeldConnections()
        self._pending_restart: list[str] = []
        self.pinned_pem = b""  # the host VM's baseline certificate, trusted like the lab CA
        self._started = False
        self._have_snapshot = False
        self._closed = False
        self._dirty = False
        self.dotfile = Path(self.options.root) / ".vagrant" / f"rdplab-{spec.name}"
        self._lock = VmLock(self.dotfile / "rdplab.lock")
        self._vm_snapshots: list[str] = []  # taken by snapshot(), deleted by close()

    # -- journal -------------------------------------------------------------------------------

    def _record(self, step: str, **data: Any) -> dict[str, Any]:
        entry = {"seq": len(self.records) + 1,
                 "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
                 "step": step, **data}
        self.records.append(entry)
        return entry

    def _note_on_node(self, role: str, what: str, after: Any) -> None:
        node = self.nodes.get(role)
        if node is not None:
            node.journal.record("vm", what, None, after)

    # -- Vagrant -------------------------------------------------------------------------------

    def vagrant_env(self) -> dict[str, str]:
        """What the Vagrantfile reads: the lab, its user, the gateway switch, credentials."""
        user, password = self.spec.user
        winrm_user, winrm_password = self.options.credentials_for("client")
        env = dict(os.environ)
        env.update(self.options.env)
        env.update({
            "RDPLAB_LAB": str(self.spec.path), "RDPLAB_LAB_USER": user,
            "RDPLAB_LAB_PASSWORD": password, "RDPLAB_LAB_USERS": json.dumps(self.spec.users),
            "RDPLAB_DOMAIN_ADMIN_PASSWORD": self.options.domain_admin_password,
            "RDPLAB_DC_SAFEMODE_PASSWORD": self.options.safe_mode_password,
            "RDPLAB_GATEWAY": "1" if self.spec.has_gateway or self.options.gateway else "0",
            "RDPLAB_WINRM_USER": winrm_user, "RDPLAB_WINRM_PASSWORD": winrm_password,
            "VAGRANT_DOTFILE_PATH": str(self.dotfile),
        })
        for role, address in self.options.addresses.items():
            env[f"RDPLAB_VM_ADDRESS_{role.upper()}"] = address
        return env

    def control(self) -> VagrantControl:
        if self._control is None:
            module = preflight(Path(self.options.root))
            self._control = VagrantControl(module, Path(self.options.root), self.vagrant_env(),
                                           self.dotfile / "vagrant.log", self._record,
                                           self.options.provider)
        return self._control

    def runner(self, role: str) -> WinRMRunner:
        if role not in self.targets:
            raise LabError(f"the lab has no {role} VM")
        if role not in self._runners:
            self._runners[role] = WinRMRunner(self.targets[role],
                                              session_factory=self._session_factory,
                                              sleep=self._sleep)
        return self._runners[role]

    def _state_path(self) -> Path:
        return self.dotfile / "rdplab-state.json"

    def _baseline_clean(self) -> bool:
        try:
            state = json.loads(self._state_path().read_text())
        except (OSError, ValueError):
            return False
        return state.get("baseline") == "clean" and state.get("lab") == str(self.spec.path)

    def _write_state(self, clean: bool) -> None:
        with contextlib.suppress(OSError):
            self.dotfile.mkdir(parents=True, exist_ok=True)
            self._state_path().write_text(json.dumps(
                {"lab": str(self.spec.path), "baseline": "clean" if clean else "dirty",
                 "snapshot": self.options.snapshot}))

    def _mark_dirty(self) -> None:
        if not self._dirty:
            self._dirty = True
            self._write_state(clean=False)

    # -- the Lab interface ---------------------------------------------------------------------

    def start(self) -> None:
        """Reuse the VMs at their baseline snapshot, or bring them up and take it."""
        self._closed = False
        opts = self.options
        ctl = self.control()
        waited = self._lock.acquire(opts.lock_timeout, self._sleep)
        self._record("lock", path=str(self._lock.path), waited=waited)
        boxes = required_boxes(self.spec, opts)
        have = ctl.box_names(opts.query_timeout)
        for role, box in boxes.items():
            if not any(name == box and (opts.provider is None or provider == opts.provider)
                       for name, provider in have):
                node = self.spec.nodes[role]
                raise VagrantUnavailable(
                    f"Vagrant box {box!r} (the {role} node {node.name}, OS {node.os}) is not "
                    f"installed: vagrant box add {box}"
                    + (f" --provider {opts.provider}" if opts.provider else ""))
        states = ctl.status(opts.query_timeout)
        missing = [role for role in self.targets if role not in states]
        if missing:
            raise LabError(f"the Vagrantfile in {opts.root} defines no VM for "
                           f"{', '.join(missing)} (gateway: set RDPLAB_GATEWAY=1)")
        created = all(states[r] not in ("not_created", "not created") for r in self.targets)
        snapshots = ctl.snapshot_count(opts.snapshot, opts.query_timeout) if created else 0
        fresh = snapshots == 0
        if 0 < snapshots < len(states):
            raise LabError(f"only some VMs have the {opts.snapshot!r} snapshot: delete it "
                           f"(vagrant snapshot delete {opts.snapshot}) or destroy the VMs")
        if fresh:
            ctl.up(opts.up_timeout)
        elif all(states[r] == "running" for r in self.targets) and self._baseline_clean():
            self._record("vagrant", command=f"snapshot restore {opts.snapshot}", ok=True,
                         skipped="the VMs are at the baseline (restored when the last cell "
                                 "closed)")
        else:
            ctl.snapshot_restore(opts.snapshot, opts.snapshot_timeout)
        self._started = True
        self._have_snapshot = not fresh
        for role in self.targets:
            boot = self.runner(role).wait_until_up(opts.winrm_timeout)
            self._record("winrm", role=role, vm=self.targets[role].vm, ok=True,
                         endpoint=self.targets[role].endpoint, boot_time=boot)
        if fresh:
            self._first_boot()
        self._align_clocks()
        if fresh:
            self._domain_checks()
        self._ensure_lab_user()
        if fresh:
            self._baseline_checks()
        self._pin_certificates()
        if fresh:
            ctl.snapshot_save(opts.snapshot, opts.snapshot_timeout)
            self._have_snapshot = True
        self._dirty = False
        self._write_state(clean=True)  # until the cell changes something (_mark_dirty)

    def sync(self) -> None:
        """The VMs' state is real; only restarts that injected faults asked for (Schannel
        reads its settings at boot) are done here, once, after the last step."""
        while self._pending_restart:
            role = self._pending_restart.pop(0)
            run = self.runner(role).restart(self.options.reboot_timeout)
            self._record("restart", reason="a fault needs a restart", **run.to_journal())

    def connect(self, address: str, port: int, timeout: float) -> socket.socket:
        """TCP from this machine to a VM (model addresses map to the VMs' addresses)."""
        role = next((r for r, a in ADDRESSES.items() if a == address), None)
        real = self.targets[role].address if role in self.targets else address
        self._mark_dirty()  # a logon leaves a session on the host
        sock = socket.create_connection((real, port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def unsupported(self, requirement: str) -> str | None:
        """'netns' means a real network stack (drops, resets): the VMs have one. Path faults,
        which they do not have, are refused when injected (apply_network_fault)."""
        if requirement == "netns":
            return None
        return super().unsupported(requirement)

    def install_os(self, role: str, os_profile: str) -> None:
        raise NotEmulated(f"install_os({role}, {os_profile}): a VM is not reinstalled per cell; "
                          f"run this fault with a lab file whose {role} has OS {os_profile} "
                          f"(box: ${box_env_var(os_profile)})", needs="a lab with that box")

    def probe_setup(self, profile: ClientProfile, **kw: Any) -> tuple[ProbeTarget, ProbeOptions]:
        """As the base class, and the client also trusts the host's and the gateway's baseline
        certificates (in the model the lab CA issues them; a real VM's are self-signed)."""
        target, options = super().probe_setup(profile, **kw)
        if not self.pinned_pem:
            return target, options
        options.trust_pem = options.trust_pem + b"\n" + self.pinned_pem
        settings = self.client.client_settings()
        gateway = getattr(settings, "gateway", None)
        if gateway:
            # The base class built the gateway connector with the trust it had: build it again
            # with the pinned certificates (same call as Lab.probe_setup).
            from ..gateway.probe_support import gateway_connector

            options.connect = gateway_connector(f"https://{gateway}", target, options,
                                                connect=self.connect,
                                                resolve=settings.resolve_or_raise)
        return target, options

    def apply_network_fault(self, action: str, args: dict[str, Any]) -> None:
        raise NotEmulated(f"network fault {action!r}: the Vagrant lab has no VPN path between "
                          "the VMs (use the netns backend)", needs="netns")

    def close(self) -> None:
        """Release held connections, then restore the snapshot / halt / keep (per option).
        Never raises: a failed restore is journalled and the next start() restores."""
        if self._closed:
            return
        self._closed = True
        self._held.close()
        try:
            if not self._started or self._control is None:
                return
            opts = self.options
            if opts.on_close == "restore" and self._have_snapshot:
                if self._dirty or not self._baseline_clean():
                    self._control.snapshot_restore(opts.snapshot, opts.snapshot_timeout)
                    self._write_state(clean=True)
            elif opts.on_close == "halt":
                self._control.halt(opts.halt_timeout)
        except LabError as exc:
            log.warning("vagrant lab close: %s", exc)
            self._record("close", ok=False, error=str(exc))
        finally:
            try:
                self._delete_vm_snapshots()
            finally:
                self._lock.release()

    def _delete_vm_snapshots(self) -> None:
        """The fault snapshots this lab took are its own: deleted at close (journalled)."""
        while self._vm_snapshots and self._control is not None:
            name = self._vm_snapshots.pop()
            try:
                self._control.snapshot_delete(name, self.options.snapshot_timeout)
            except LabError as exc:
                log.warning("vagrant lab close: %s", exc)
                self._record("close", ok=False, error=str(exc))

    # -- faults --------------------------------------------------------------------------------

    def inject(self, role: str, action: str, args: dict[str, Any] | None = None
               ) -> dict[str, Any]:
        """Inject one scenario fault on the VM for real, then on the model node.

        FaultError for an unknown action or bad arguments, NotEmulated for one a real VM
        cannot do (both before anything changes), LabError/LabTimeout when the VM fails.
        """
        if role == "network":
            self.apply_network_fault(action, dict(args or {}))
        node = self.nodes.get(role)
        if node is None or role not in self.targets:
            raise LabError(f"the lab has no {role} node")
        context = vagrant_faults.FaultContext(role, node.profile.id, self.targets[role].address)
        fault = vagrant_faults.plan(action, args, context)
        self._mark_dirty()
        entry = self._record("fault", role=role, vm=self.targets[role].vm, **fault.to_journal())
        if fault.kind == "runner":
            port = self.nodes["host"].listening_port() or RDP_PORT
            entry["held"] = self._held.open(self.targets["host"].address, port,
                                            int(fault.args["count"]), timeout=5.0)
        else:
            runner = self.runner(role)
            result = runner.run_ps(fault.script, self.options.fault_timeout,
                                   what=f"fault:{action}")
            entry["run"] = result.to_journal()
            self._raise_for(result, f"fault {action} on the {role} VM")
            if fault.restart and role not in self._pending_restart:
                self._pending_restart.append(role)  # done by sync(), after the last step
                entry["restart"] = "pending (sync)"
        entry["ok"] = True
        self._note_on_node(role, f"fault {action} (real)", fault.note or "injected")
        if self.options.mirror_model:
            try:
                model_faults.inject(node, action, args)
                entry["model"] = "applied"
            except Exception as exc:  # the model's view is journalled, the VM's stands
                entry["model"] = f"{type(exc).__name__}: {exc}"
        return entry

    @staticmethod
    def _raise_for(result: RunResult, doing: str) -> None:
        if result.timed_out:
            raise LabTimeout(f"{doing}: no result within {result.duration:g} s")
        if result.error:
            raise LabError(f"{doing}: WinRM failed: {result.error}")
        if result.exit_code != 0:
            detail = (result.stderr or result.stdout).strip() or "no output"
            raise LabError(f"{doing}: exit code {result.exit_code}: {detail}")

    # -- remediations --------------------------------------------------------------------------

    def bind_parameters(self, remediation: Remediation) -> dict[str, str]:
        """The sidecar's parameters from the real VMs (addresses) and the nodes (names)."""
        bound: dict[str, str] = {}
        for name, spec in remediation.parameters.items():
            ref = NodeRef.parse(spec)
            node = self.nodes.get(ref.role)
            if node is not None:
                bound[name] = ref.value(node, self.targets[ref.role].address)
        return bound

    def run_remediation(self, remediation: Remediation | Path,
                        params: dict[str, Any] | None = None) -> RemediationResult:
        """Run the remediation's .ps1, unchanged, on its target VM(s) over WinRM.

        A script that fails is a result (exit code and errors in the ScriptResult); a
        transport failure or a timeout is a LabError / LabTimeout.
        """
        rem = remediation if isinstance(remediation, Remediation) else \
            load_remediation(Path(remediation))
        bound: dict[str, Any] = {**self.bind_parameters(rem), **(params or {})}
        result = RemediationResult(rem.id)
        self._mark_dirty()
        for role in TARGETS[rem.target]:
            if role not in self.nodes or role not in self.targets:
                if TargetNodeMissing is not None:
                    raise TargetNodeMissing(str(rem.sidecar), role)
                raise RemediationError(str(rem.sidecar), "target", f"the lab has no {role} node")
            run = self.runner(role).run_file(rem.script, self.options.remediation_timeout,
                                             params=bound,
                                             reboot_timeout=self.options.reboot_timeout)
            entry = self._record("remediation", remediation=rem.id, target=rem.target,
                                 **run.to_journal())
            self._raise_for_transport(run, f"remediation {rem.id} on the {role} VM")
            node = self.nodes[role]
            result.results.append(ScriptResult(
                file=rem.script.name, node=node.name, output=run.stdout.splitlines(),
                errors=[line for line in run.stderr.splitlines() if line.strip()],
                rebooted=run.rebooted, exit_code=run.exit_code or 0))
            self._note_on_node(role, f"remediation {rem.id} (real)",
                               {"exit_code": run.exit_code, "rebooted": run.rebooted})
            entry["ok"] = run.ok
        if self.options.mirror_model:
            try:
                predicted = run_model_remediation(rem, self.nodes, params)
                self._record("model", remediation=rem.id, prediction=predicted.to_json())
            except Exception as exc:
                self._record("model", remediation=rem.id, error=f"{type(exc).__name__}: {exc}")
        return result

    @staticmethod
    def _raise_for_transport(result: RunResult, doing: str) -> None:
        if result.timed_out:
            raise LabTimeout(f"{doing}: no result within {result.duration:g} s")
        if result.error:
            raise LabError(f"{doing}: WinRM failed: {result.error}")

    # -- checks (testinfra) ----------------------------------------------------------------------

    def testinfra_host(self, role: str) -> Any:
        """A testinfra Host on the VM through its winrm backend (credentials set directly:
        testinfra's host spec cannot carry every password)."""
        try:
            import testinfra.backend
            import testinfra.host
        except ImportError:
            raise VagrantUnavailable("pytest-testinfra is not installed: pip install "
                                     "'rdplab[vagrant]'") from None
        target = self.targets[role]
        spec = (f"winrm://{target.address}:{target.port}?no_ssl=true&no_verify_ssl=true"
                f"&read_timeout_sec=30&operation_timeout_sec=20")
        backend = testinfra.backend.get_backend(spec)
        backend.conn_args.update(username=target.user, password=target.password)
        host = testinfra.host.Host(backend)
        backend.set_host(host)
        return host

    def checks_for(self, remediation: Remediation | str | None) -> list[tuple[str, StateCheck]]:
        rem_id = remediation.id if isinstance(remediation, Remediation) else remediation
        target = None
        if isinstance(remediation, Remediation):
            target = remediation.target
        chosen: list[tuple[str, StateCheck]] = [(c.role, c) for c in ALWAYS]
        for check in REMEDIATION_CHECKS.get(rem_id or "", ()):
            roles = TARGETS[target] if check.role == "target" and target else (check.role,)
            chosen += [(r, check) for r in roles if r in self.targets]
        return chosen

    def verify_state(self, remediation: Remediation) -> list[dict[str, Any]]:
        """The contract's name for verify()."""
        return self.verify(remediation)

    # -- snapshots (real VM snapshots; tested with fakes of python-vagrant and WinRM) ----------

    def snapshot(self, name: str) -> LabSnapshot:
        """`vagrant snapshot save` of every VM as they are now (pending restarts done first),
        with the model's mirror, the pinned certificates and the held connections."""
        self.sync()
        vm_name = vm_snapshot_name(self.spec.name, name)
        self.control().snapshot_save(vm_name, self.options.snapshot_timeout)
        if vm_name not in self._vm_snapshots:
            self._vm_snapshots.append(vm_name)
        snap = super().snapshot(name)
        snap.state.update(vm_snapshot=vm_name, pinned_pem=self.pinned_pem,
                          held=len(self._held.sockets))
        self._record("snapshot", name=vm_name, ok=True)
        return snap

    def restore(self, snapshot: LabSnapshot) -> None:
        """`vagrant snapshot restore`, WinRM up again, each VM's clock set to its model
        node's (a clock fault's skew stays), held connections opened again, then the model."""
        state = snapshot.state
        self._held.close()
        self._pending_restart.clear()
        self._mark_dirty()
        self.control().snapshot_restore(state["vm_snapshot"], self.options.snapshot_timeout)
        for role in self.targets:
            self.runner(role).wait_until_up(self.options.winrm_timeout)
        self.pinned_pem = state["pinned_pem"]
        super().restore(snapshot)  # the model first: the clocks follow it
        self._align_clocks(follow_model=True)
        if state["held"]:
            port = self.nodes["host"].listening_port() or RDP_PORT
            self._held.open(self.targets["host"].address, port, int(state["held"]), timeout=5.0)
        self._record("restore", name=state["vm_snapshot"], ok=True)

    def verify(self, remediation: Remediation | str | None = None) -> list[dict[str, Any]]:
        """Check the VMs' state with testinfra (TermService, listener, and what the
        remediation should leave); each result is journalled."""
        results = []
        for role, check in self.checks_for(remediation):
            expect = check.expect.replace("{host.address}", self.targets["host"].address)
            command = ("powershell -NoProfile -NonInteractive -EncodedCommand "
                       + encode_command(check.script))
            entry: dict[str, Any] = {"role": role, "check": check.name, "expected": expect}
            try:
                host = self.testinfra_host(role)
                out = call_with_deadline(lambda h=host, c=command: h.run(c),
                                         self.options.check_timeout, f"check {check.name}")
                observed = out.stdout.strip()
                entry.update(observed=observed, rc=out.rc, stderr=out.stderr.strip(),
                             ok=out.rc == 0 and observed == expect)
            except VagrantUnavailable:
                raise
            except Exception as exc:
                entry.update(observed=None, ok=False, error=f"{type(exc).__name__}: {exc}")
            self._record("check", via="testinfra winrm", **entry)
            results.append(entry)
        return results

    # -- mstsc on the client VM (rdp-facts section 9) --------------------------------------------

    def mstsc_attempt(self, wait_seconds: int = 60) -> dict[str, Any]:
        """Have mstsc on the client VM connect to the host and report what the RDP client
        logged (event 1026 carries the disconnect reason). The extended reason is not in
        that log: reading it needs the ActiveX control, which this does not host."""
        client = self.nodes["client"]
        target = client.client_settings().connection_target or self.nodes["host"].fqdn
        user, password = self.spec.user
        script = mstsc_script(target, f"{self.spec.domain}\\{user}", password, wait_seconds)
        run = self.runner("client").run_ps(script, self.options.mstsc_timeout + wait_seconds,
                                           what="mstsc")
        self._raise_for(run, "mstsc attempt on the client VM")
        found = parse_mstsc_events(run.stdout)
        self._record("mstsc", target=target, **found, run={
            k: v for k, v in run.to_journal().items() if k != "stdout"})
        return found

    # -- start helpers ---------------------------------------------------------------------------

    def _align_clocks(self, follow_model: bool = False) -> None:
        """A restored snapshot brings back the snapshot's clock and the hypervisor's time
        sync is off (for clock faults): set every VM to this machine's UTC time, or (a fault's
        snapshot, `follow_model`) to the model node's clock, which carries the fault's skew."""
        for role in self.targets:
            node = self.nodes.get(role)
            now_ms = (int(node.now().timestamp() * 1000) if follow_model and node is not None
                      else int(time.time() * 1000))
            run = self.runner(role).run_ps(clock_script(now_ms), self.options.fault_timeout,
                                           what="clock")
            self._record("clock", role=role, ok=run.ok, vm_clock_before=run.stdout.strip(),
                         set_to=dt.datetime.fromtimestamp(now_ms / 1000, dt.UTC).isoformat())
            self._raise_for(run, f"aligning the {role} VM's clock")

    def _ensure_lab_user(self) -> None:
        """The lab's user, with the lab's password, may log on over RDP (host, gateway): a
        local user, or in a domain lab the domain's users (on the DC VM) with the first one in
        the members' Remote Desktop Users."""
        user, password = self.spec.user
        if self.spec.has_domain_controller:
            self._ensure_domain_users()
            return
        for role in ("host", "gateway"):
            if role not in self.targets:
                continue
            run = self.runner(role).run_ps(lab_user_script(user, password),
                                           self.options.fault_timeout, what="lab-user")
            self._record("lab-user", role=role, user=user, ok=run.ok,
                         stderr=run.stderr.strip() or None)
            self._raise_for(run, f"creating the lab user {user} on the {role} VM")

    def _ensure_domain_users(self) -> None:
        """Every start (passwords are generated per lab file): the lab's users as domain
        users on the DC VM, the first one in Remote Desktop Users on the host and gateway."""
        netbios, (user, _) = self.spec.domain, self.spec.user
        script = domain_users_script(self.spec.users, self.spec.dns_domain, netbios,
                                     self.options.domain_admin_password)
        run = self.runner("dc").run_ps(script, self.options.fault_timeout, what="domain-users")
        self._record("domain-users", role="dc", users=sorted(self.spec.users), ok=run.ok,
                     stderr=run.stderr.strip() or None)
        self._raise_for(run, f"creating the domain users on the DC VM {self.nodes['dc'].name}")
        for role in ("host", "gateway"):
            if role not in self.targets:
                continue
            run = self.runner(role).run_ps(domain_rdp_user_script(netbios, user),
                                           self.options.fault_timeout, what="lab-user")
            self._record("lab-user", role=role, user=f"{netbios}\\{user}", ok=run.ok,
                         stderr=run.stderr.strip() or None)
            self._raise_for(run, f"adding {netbios}\\{user} to Remote Desktop Users on the "
                                 f"{role} VM")

    def _domain_checks(self) -> None:
        """After `vagrant up` (a domain lab): the DC VM answers Kerberos and LDAP from this
        machine, and every other VM is a member of the lab's domain; LabError saying what to
        do otherwise (nothing is snapshotted as the baseline)."""
        if not self.spec.has_domain_controller:
            return
        dc = self.targets["dc"]
        tries = check_dc_ports(dc.address, self.nodes["dc"].name, self._dial,
                               self.options.check_timeout, self._sleep)
        self._record("domain", role="dc", address=dc.address, tries=tries, ok=True)
        for role in self.targets:
            if role == "dc":
                continue
            run = self.runner(role).run_ps(MEMBERSHIP_SCRIPT, self.options.check_timeout,
                                           what="domain-member")
            self._raise_for(run, f"reading the {role} VM's domain membership")
            error = membership_error(role, self.nodes[role].name, run.stdout,
                                     self.spec.dns_domain)
            self._record("domain", role=role, membership=run.stdout.strip(), ok=error is None)
            if error is not None:
                raise LabError(error)

    # -- Kerberos against the DC VM --------------------------------------------------------------

    def kerberos_client(self) -> KerberosClient | None:
        """The client machine's Kerberos in a domain lab: the real Active Directory KDC on the
        DC VM (its address, port 88, the lab's realm) through a krb5.conf in the lab's work
        directory, with the client machine's clock offset (a clock fault: the DC answers
        KRB_AP_ERR_SKEW beyond 5 minutes). None outside a domain."""
        if not self.spec.has_domain_controller or "dc" not in self.targets:
            return None
        conf = write_krb5_conf(self.spec, self.targets["dc"].address, self.workdir / "dc-krb5",
                               self.kdc_port)
        settings = self.client.client_settings()
        return KerberosClient(self.spec.realm, conf, self.workdir / "client-krb5",
                              settings.clock_offset, tuple(self.client_exec_prefix()))

    def _first_boot(self) -> None:
        """Once, before the snapshot: restart every VM (the DNS suffix and the client's
        autologon apply at boot), then have TermService make a certificate for the host's
        FQDN."""
        for role in self.targets:
            run = self.runner(role).restart(self.options.reboot_timeout)
            self._record("first-boot", **run.to_journal())
        for role in ("host", "gateway"):
            if role in self.targets:
                run = self.runner(role).run_ps(RENEW_CERTIFICATE_SCRIPT,
                                               self.options.fault_timeout, what="certificate")
                self._record("first-boot", purpose="RDP certificate for the FQDN",
                             **run.to_journal())
                self._raise_for(run, f"renewing the {role} VM's RDP certificate")

    def _pin_certificates(self) -> None:
        """The certificates the client is to trust, read from the VMs at the baseline: the
        RDP listener's on the host and the bound SSL certificate on the gateway."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization

        pems = []
        for role, script, what in (("host", SERVED_CERTIFICATE_SCRIPT, "RDP certificate"),
                                   ("gateway", GATEWAY_CERTIFICATE_SCRIPT, "gateway certificate")):
            if role not in self.targets:
                continue
            run = self.runner(role).run_ps(script, self.options.check_timeout,
                                           what=f"pin {what}")
            self._raise_for(run, f"reading the {role} VM's {what}")
            try:
                cert = x509.load_der_x509_certificate(base64.b64decode(run.stdout.strip()))
            except ValueError as exc:
                raise LabError(f"the {role} VM's {what} could not be read: {exc}") from exc
            pems.append(cert.public_bytes(serialization.Encoding.PEM))
            self._record("pin", role=role, certificate=what,
                         subject=cert.subject.rfc4514_string(),
                         not_after=cert.not_valid_after_utc.isoformat(),
                         sha256=cert.fingerprint(hashes.SHA256()).hex())
        self.pinned_pem = b"".join(pems)

    def _baseline_checks(self) -> None:
        """Before the snapshot: the host's listener must be up (else every cell is wrong)."""
        check = ALWAYS[0]
        run = self.runner("host").run_ps(check.script, self.options.check_timeout,
                                         what="baseline-check")
        self._record("baseline", check=check.name, observed=run.stdout.strip(), ok=run.ok)
        self._raise_for(run, "the baseline check on the host VM")
        if run.stdout.strip() != check.expect:
            raise LabError(f"baseline: {check.name} is {run.stdout.strip()!r} on the host VM; "
                           "the provisioning did not enable Remote Desktop")


__all__ = ["VagrantLab"]
