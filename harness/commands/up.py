"""`rdplab up`: build a lab and leave it running under a supervisor process (like
`docker compose up -d`); returns when it is ready and prints how to connect."""

from __future__ import annotations

import argparse
import ipaddress
import sys
import time


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..lab import registry
    from ..training.cli_support import add_lab_args

    p = sub.add_parser("up", help="start a lab that stays up for hands-on work",
                       description=__doc__)
    p.add_argument("--lab", default="default", help="lab name or file (default: default)")
    add_lab_args(p)
    p.add_argument("--backend", default="auto", choices=registry.choices(trainable=True),
                   help="how the lab's network is made (default: netns when possible)")
    p.add_argument("--publish", default="127.0.0.1:0", metavar="ADDR:PORT",
                   help="where the lab's entry point is published (default 127.0.0.1, a free "
                   "port); another address makes the lab reachable from the network")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..training.cli_support import guarded

    return guarded(_run)(args)


def _run(args: argparse.Namespace) -> int:
    from ..training.bringup import bring_up, print_connect
    from ..training.cli_support import lab_from_args

    labdir = lab_from_args(args)
    name = args.name if not args.dir else labdir.path.name
    address = args.publish.rpartition(":")[0].strip("[]")
    try:
        loopback = ipaddress.ip_address(address).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        print(f"warning: publishing on {args.publish}: the lab's entry point is reachable from "
              "the network (nothing else of the lab is)", file=sys.stderr)
    t0 = time.monotonic()
    record = bring_up(labdir, name=name, lab=args.lab, backend=args.backend,
                      publish=args.publish)
    print(f"lab {name} is up ({record['backend']}, {time.monotonic() - t0:.1f} s)")
    print_connect(labdir, labdir.read())
    return 0
