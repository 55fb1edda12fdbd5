"""`rdplab break FAULT[@VARIANT]`: inject a fault from the catalog into a running lab
(`--hidden`: status and handouts do not name it)."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..training.cli_support import add_lab_args

    p = sub.add_parser("break", help="inject a fault into a running lab", description=__doc__)
    p.add_argument("fault", help="fault id from scenarios/ (FAULT or FAULT@VARIANT)")
    add_lab_args(p)
    p.add_argument("--hidden", action="store_true", help="do not name the fault anywhere a "
                   "student looks (status, handout)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..training.cli_support import guarded

    return guarded(_run)(args)


def _run(args: argparse.Namespace) -> int:
    from ..training.breaking import break_lab
    from ..training.cli_support import lab_from_args

    labdir = lab_from_args(args)
    reply = break_lab(labdir, args.fault, hidden=args.hidden)
    if args.hidden:
        print(f"lab {labdir.path.name}: broken (hidden fault)")
    else:
        print(f"lab {labdir.path.name}: broken with {reply['fault']}")
        for step in reply["steps"]:
            print(f"  {step}")
        print(f"  the lab's client now sees: {reply['client_shows']}")
    if not reply["reproduced"]:
        print("  warning: the lab's client still connects; this fault shows no symptom in this "
              "lab")
    return 0
