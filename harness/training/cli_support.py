"""What the training commands share: finding the lab from --name/--dir, and turning errors into
a clear message and an exit status (2 bad input, 1 the lab failed)."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import LabFailed, TrainingError
from .labdir import LabDir


def add_lab_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", default="default", help="the lab's name (default: default)")
    p.add_argument("--dir", type=Path, help="the lab's directory (instead of the user's state "
                   "dir; classrooms keep each student's lab in <class dir>/<student>)")


def lab_from_args(args: argparse.Namespace) -> LabDir:
    if getattr(args, "dir", None):
        return LabDir(args.dir)
    return LabDir.named(args.name)


def guarded(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """TrainingError -> message + exit 2; LabFailed -> message + exit 1."""

    @functools.wraps(fn)
    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except TrainingError as exc:
            print(f"rdplab {args.command}: {exc}", file=sys.stderr)
            return exc.exit_code
        except LabFailed as exc:
            print(f"rdplab {args.command}: {exc}", file=sys.stderr)
            return exc.exit_code

    return run


def running_record(labdir: LabDir) -> dict[str, Any]:
    """The record of a lab that is up (TrainingError otherwise: exit 2)."""
    from .lifecycle import supervisor_alive

    record = labdir.read()
    if record.get("state") != "running" or not supervisor_alive(record):
        raise TrainingError(f"lab {record.get('name', labdir.path.name)} is not up (state "
                            f"{record.get('state')}, supervisor gone); `rdplab down` removes "
                            "what is left, `rdplab up` starts it again")
    return record
