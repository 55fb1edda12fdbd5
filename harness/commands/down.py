"""`rdplab down`: stop and remove a lab started with `rdplab up` (`--name`, `--dir`), also after
its supervisor was killed; `--all` removes every lab of this user whose supervisor is gone
(running ones too with `--force`) and whatever interrupted matrix labs left behind (namespaces,
veths, nft tables, processes, temporary folders, orphaned workers), from their state files;
a matrix lab whose process still runs is left alone unless `--force`."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..training.cli_support import add_lab_args

    p = sub.add_parser("down", help="stop and remove a lab; --all: what labs left behind",
                       description=__doc__)
    add_lab_args(p)
    p.add_argument("--all", action="store_true",
                   help="every lab of this user whose supervisor is gone, and every state file")
    p.add_argument("--force", action="store_true", help="with --all: running labs too")
    p.add_argument("--keep-live", action="store_true",
                   help=argparse.SUPPRESS)  # the default now; kept so old scripts still run
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..training.cli_support import guarded

    return guarded(_run)(args)


def _run(args: argparse.Namespace) -> int:
    from ..training.cli_support import lab_from_args
    from ..training.errors import TrainingError
    from ..training.labdir import user_labs
    from ..training.lifecycle import remove, supervisor_alive

    if not args.all:
        labdir = lab_from_args(args)
        if not labdir.path.exists():
            raise TrainingError(f"no lab at {labdir.path}")
        with labdir.locked():
            removed = remove(labdir)
        print(f"lab {labdir.path.name} removed ({len(removed)} items)")
        return 0

    from ..net.cleanup import down_all

    removed: list[str] = []
    for labdir in user_labs():
        record = labdir.read() if labdir.exists() else {}
        if record and supervisor_alive(record) and not args.force:
            print(f"left running: lab {labdir.path.name} (use --force, or `rdplab down "
                  f"--name {labdir.path.name}`)")
            continue
        with labdir.locked():
            removed += remove(labdir)
    from ..net.cleanup import live_labs

    if not args.force:
        for lab_id in live_labs():
            print(f"left running: matrix lab {lab_id} (its process runs; use --force)")
    removed += down_all(include_live=args.force)
    for item in removed:
        print(f"removed {item}")
    if not removed:
        print("nothing to remove")
    return 0
