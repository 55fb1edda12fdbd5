"""`rdplab status`: a lab's state, backend, fault (or `hidden`), endpoints, how to connect and
the commands run on it since the break."""

from __future__ import annotations

import argparse
import json
import time


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..training.cli_support import add_lab_args

    p = sub.add_parser("status", help="state of a lab started with `rdplab up`",
                       description=__doc__)
    add_lab_args(p)
    p.add_argument("--json", action="store_true", help="print the status as JSON")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..training.cli_support import guarded

    return guarded(_run)(args)


def _run(args: argparse.Namespace) -> int:
    from ..training.cli_support import lab_from_args
    from ..training.statusview import lab_status

    status = lab_status(lab_from_args(args))
    if args.json:
        print(json.dumps(status, indent=1))
        return 0
    print(f"lab {status['name']}: {status['state']} ({status['backend']})")
    print(f"  fault: {status['fault'] or 'none'}")
    ends = status["endpoints"]
    print(f"  gateway: {ends['gateway'] or '-'}   host: {ends['host'] or '-'}")
    print(f"  user: {status['user']} (password in {status['password_file']})")
    connect = status["connect"]
    if connect:
        env = " ".join(f"{k}={v}" for k, v in connect["env"].items())
        print(f"  xfreerdp: {env} {' '.join(connect['xfreerdp'])} /p:<password>")
        print(f"  mstsc: {connect['rdp_file']}")
    if status["commands"]:
        print("  since the break:")
        for entry in status["commands"]:
            when = time.strftime("%H:%M:%S", time.localtime(entry["time"]))
            what = entry.get("line") or entry.get("file") or entry.get("verdict") or ""
            print(f"    {when} {entry['kind']:<6} {entry.get('node', ''):<8} {what}")
    return 0
