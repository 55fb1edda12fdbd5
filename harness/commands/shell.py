"""`rdplab shell NODE`: an interactive PowerShell prompt on a node of a running lab (client,
gateway, host): the remediation scripts' subset, history, tab completion, the node's events with
Get-WinEvent / Get-EventLog; a clear "not emulated" for anything else."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..training.cli_support import add_lab_args

    p = sub.add_parser("shell", help="interactive PowerShell on a node of a running lab",
                       description=__doc__)
    p.add_argument("node", help="client, gateway or host")
    add_lab_args(p)
    p.add_argument("--vagrant", action="store_true",
                   help="a WinRM session on the node's Vagrant VM (Vagrantfile, RDPLAB_VAGRANT_* "
                   "settings; VMs brought up by `rdplab matrix --backend vagrant`) instead of "
                   "a running lab's model")
    p.add_argument("--lab", default="default", help="with --vagrant: the lab (default: default)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..training.cli_support import guarded

    return guarded(_run)(args)


def _run(args: argparse.Namespace) -> int:
    from ..training import control
    from ..training.cli_support import lab_from_args, running_record
    from ..training.errors import TrainingError
    from ..training.repl import SupervisorRunner, run_repl
    from ..training.shellsession import command_names

    if args.vagrant:
        return _vagrant(args)
    labdir = lab_from_args(args)
    with labdir.locked():
        running_record(labdir)
        status = control.call(labdir.socket_path, "status")
    if args.node not in status["nodes"]:
        raise TrainingError(f"the lab has no node {args.node!r}; nodes: "
                            f"{', '.join(status['nodes'])}")

    def call(op: str, **kw: object) -> dict:
        with labdir.locked():
            return control.call(labdir.socket_path, op, **kw)

    prompt = f"[{args.node}]: PS C:\\Windows\\system32> "
    return run_repl(SupervisorRunner(call, args.node), prompt, command_names(),
                    history=labdir.path / f".history-{args.node}")


def _vagrant(args: argparse.Namespace) -> int:
    from ..lab.definition import load_lab
    from ..lab.vagrant import VagrantOptions, vm_targets
    from ..lab.winrm_runner import WinRMRunner
    from ..training.errors import TrainingError
    from ..training.repl import WinRMLineRunner, run_repl
    from ..training.shellsession import command_names

    targets = vm_targets(load_lab(args.lab), VagrantOptions.from_env())
    if args.node not in targets:
        raise TrainingError(f"the {args.lab} lab has no node {args.node!r}; nodes: "
                            f"{', '.join(targets)}")
    target = targets[args.node]
    prompt = f"[{target.address}]: PS C:\\Users\\{target.user}\\Documents> "
    return run_repl(WinRMLineRunner(WinRMRunner(target)), prompt, command_names())
