"""`rdplab down --all`: remove whatever labs left behind (namespaces, veths, nft tables,
processes, temporary folders), from their state files; for after a kill -9."""

from __future__ import annotations

import argparse
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("down", help="remove what interrupted labs left behind",
                       description=__doc__)
    p.add_argument("--all", action="store_true", required=True,
                   help="every lab recorded in the state directory")
    p.add_argument("--keep-live", action="store_true",
                   help="leave labs whose process is still running")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..net.cleanup import down_all

    removed = down_all(include_live=not args.keep_live)
    for item in removed:
        print(f"removed {item}")
    if not removed:
        print("nothing to remove")
    return 0 if removed is not None else 1


_ = sys
