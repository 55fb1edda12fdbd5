"""`rdplab check`: connect as the lab's client and say whether the fault is fixed.
Exit 0 fixed, 1 still broken (which stage, what the client shows), 3 fixed but security
weakened compared with the healthy lab (naming what)."""

from __future__ import annotations

import argparse
import json


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..training.cli_support import add_lab_args

    p = sub.add_parser("check", help="is the lab fixed? (exit 0 fixed, 1 broken, 3 weakened)",
                       description=__doc__)
    add_lab_args(p)
    p.add_argument("--json", action="store_true", help="print the verdict as JSON")
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
        reply = control.call(labdir.socket_path, "check")
    verdict = {k: reply[k] for k in ("verdict", "exit", "stage", "symptom", "client_shows",
                                      "weakened", "profile")}
    if args.json:
        print(json.dumps(verdict, indent=1))
        return int(verdict["exit"])
    if verdict["verdict"] == "fixed":
        print(f"fixed: the lab's client ({verdict['profile']}) gets a usable session")
    elif verdict["verdict"] == "weakened":
        print("fixed, but security is weaker than in the healthy lab:")
        for item in verdict["weakened"]:
            print(f"  - {item}")
    else:
        print(f"still broken at stage {verdict['stage']}: {verdict['client_shows']}")
    return int(verdict["exit"])
