"""`rdplab classroom create|grade|down`: a class of isolated labs, one per student, each with a
hidden fault from the catalog and generated names, users and passwords (seeded: the same seed
gives the same class), a Markdown handout per student; grading checks every lab."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..lab import registry

    p = sub.add_parser("classroom", help="a class of labs: create, grade, down",
                       description=__doc__)
    csub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    c = csub.add_parser("create", help="one lab per student, each with a hidden fault")
    c.add_argument("--students", type=int, required=True, help="how many labs")
    c.add_argument("--seed", type=int, required=True, help="the same seed gives the same class")
    c.add_argument("--faults", help="comma-separated fault ids to draw from (default: every "
                   "fault this backend and lab can show)")
    c.add_argument("--lab", default="default", help="lab name or file (default: default)")
    c.add_argument("--backend", default="auto", choices=registry.choices(trainable=True))
    c.add_argument("--dir", type=Path, default=Path("classroom"),
                   help="the class directory (default ./classroom)")
    c.add_argument("--publish-address", default="127.0.0.1",
                   help="address the labs are published on (default 127.0.0.1)")
    g = csub.add_parser("grade", help="check every lab: fixed / broken / weakened")
    g.add_argument("--dir", type=Path, default=Path("classroom"))
    g.add_argument("--json", action="store_true", help="print the grades as JSON")
    d = csub.add_parser("down", help="remove every lab of the class")
    d.add_argument("--dir", type=Path, default=Path("classroom"))
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..training.cli_support import guarded

    return guarded(_run)(args)


def _run(args: argparse.Namespace) -> int:
    from ..training import classroom

    if args.action == "create":
        return classroom.create_command(args)
    if args.action == "grade":
        return classroom.grade_command(args)
    return classroom.down_command(args)
