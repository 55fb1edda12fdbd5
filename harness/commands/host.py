"""`rdplab host --listen ADDR:PORT`: serve the emulated RDP host in the foreground."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

from ..host.config import HostConfigError, load_host_config, policy_from_mapping
from ..host.server import EmulatedHost, listen
from ..pki import issue_server_cert, make_ca
from .options import listen_address


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("host", help="serve an emulated Windows RDP host", description=__doc__)
    p.add_argument("--listen", default=("127.0.0.1", 3389), type=listen_address,
                   metavar="ADDR:PORT",
                   help="address to listen on (port 0 picks a free one)")
    p.add_argument("--config", type=Path, help="YAML host policy (see docs/host-config.md)")
    p.add_argument("--user", help="a local user the host accepts")
    p.add_argument("--password-env", metavar="VAR", help="environment variable with its password")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        address, port = args.listen
        data = load_host_config(args.config) if args.config else {}
    except (ValueError, HostConfigError) as exc:
        print(f"rdplab host: {exc}", file=sys.stderr)
        return 2
    users = dict(data.get("users", {}))
    if args.user:
        if not args.password_env or args.password_env not in os.environ:
            print("rdplab host: --user needs --password-env naming a set variable", file=sys.stderr)
            return 2
        users[args.user] = os.environ[args.password_env]
    data["users"] = users
    from ..net.state import recorded_tempdir

    with recorded_tempdir("rdplab-host-") as tmp:  # its keys: removed by down --all if killed
        cert_file, key_file = Path(tmp, "rdp.crt"), Path(tmp, "rdp.key")
        if "cert_file" not in data:
            ca = make_ca()
            pair = issue_server_cert(ca, data.get("computer_name", "RDHOST").lower(),
                                     names=["localhost", "127.0.0.1", address])
            cert_file.write_bytes(pair.cert_pem)
            key_file.write_bytes(pair.key_pem)
            Path(tmp, "lab-ca.crt").write_bytes(ca.cert_pem)
        try:
            policy = policy_from_mapping(data, cert_file, key_file)
            sock = listen(address, port)
        except (OSError, TypeError) as exc:
            print(f"rdplab host: {exc}", file=sys.stderr)
            return 2
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        host = EmulatedHost(lambda: policy,
                            on_event=lambda e: print(f"event {e.event_id or '-'}: {e.message}",
                                                     file=sys.stderr, flush=True))
        host.start(sock)
        bound = host.address
        print(f"listening on {bound[0]}:{bound[1]}", flush=True)
        if "cert_file" not in data:
            print(f"lab CA certificate: {Path(tmp, 'lab-ca.crt')}", file=sys.stderr, flush=True)
        try:
            stop.wait()
        finally:
            host.stop(timeout=1.0)  # signals are honoured within a second
    return 0
