"""`rdplab`: the command line front end."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from . import __version__
from .commands import (
    breakfault,
    check,
    classroom,
    diff,
    down,
    execscript,
    hint,
    host,
    matrix,
    merge,
    probe,
    reset,
    shell,
    status,
    up,
    verify,
)

COMMANDS = (probe, host, matrix, diff, merge, verify, up, breakfault, status, shell, execscript,
            check, hint, reset, down, classroom)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rdplab",
        description="Reproduce Remote Desktop connection failures and validate their fixes.",
    )
    parser.add_argument("--version", action="version", version=f"rdplab {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
