"""`rdplab reset`: put the lab back in its broken state (a fresh lab with the same fault), to
try again; the commands log keeps what was tried."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..training.cli_support import add_lab_args

    p = sub.add_parser("reset", help="back to the broken state", description=__doc__)
    add_lab_args(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..training.cli_support import guarded

    return guarded(_run)(args)


def _run(args: argparse.Namespace) -> int:
    from ..training import control
    from ..training.cli_support import lab_from_args, running_record

    labdir = lab_from_args(args)
    with labdir.locked():
        running_record(labdir)
        reply = control.call(labdir.socket_path, "reset", timeout=120.0)
    state = "broken state" if reply["fault"] else "healthy state (no fault was injected)"
    print(f"lab {labdir.path.name}: back to its {state}")
    return 0
