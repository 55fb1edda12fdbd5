"""`rdplab exec NODE SCRIPT.ps1`: run a PowerShell/cmd script on a node of a running lab and
print its output (the same interpreter as the remediation scripts)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..training.cli_support import add_lab_args

    p = sub.add_parser("exec", help="run a script on a node of a running lab",
                       description=__doc__)
    p.add_argument("node", help="client, gateway or host")
    p.add_argument("script", type=Path, help="the .ps1 file")
    add_lab_args(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..training.cli_support import guarded

    return guarded(_run)(args)


def _run(args: argparse.Namespace) -> int:
    from ..training import control
    from ..training.cli_support import lab_from_args, running_record
    from ..training.errors import TrainingError

    try:
        text = args.script.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise TrainingError(f"{args.script}: {exc.strerror}") from None
    labdir = lab_from_args(args)
    with labdir.locked():
        running_record(labdir)
        reply = control.call(labdir.socket_path, "exec", node=args.node, script=text,
                             file=args.script.name)
    for line in reply["output"]:
        print(line)
    for error in reply["errors"]:
        print(error, file=sys.stderr)
    if reply.get("rebooted"):
        print(f"({args.node} restarted)")
    if reply.get("not_emulated"):
        return 1
    return int(reply.get("exit") or 0)
