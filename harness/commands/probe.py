"""`rdplab probe rdp://[USER@]HOST[:PORT]`: run the connection sequence and print the trace."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

from ..probe.profiles import ProfileError, load_profile, profile_names
from ..probe.report import print_trace
from ..probe.result import EXIT_USAGE
from ..probe.runner import DeadlineExceeded, ProbeOptions, ProbeTarget, overall_alarm, run_probe
from ..rdp.certverify import load_trust_anchors
from .options import seconds


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "probe", help="connect like a real client and report every stage", description=__doc__
    )
    p.add_argument("url", help="rdp://[USER@]HOST[:PORT] (USER may be DOMAIN\\\\user)")
    p.add_argument(
        "--password-env", metavar="VAR",
        help="environment variable holding the password (required; it may hold an empty one)"
    )
    p.add_argument(
        "--profile",
        default="mstsc-win11",
        help=f"client profile (default mstsc-win11; known: {', '.join(profile_names())})",
    )
    p.add_argument("--cafile", type=Path, help="PEM file of trusted CA certificates")
    p.add_argument(
        "--cert-policy",
        choices=("ignore", "warn", "strict"),
        help="override the profile's certificate policy",
    )
    p.add_argument("--timeout", type=seconds, default=60.0,
                   help="overall limit in seconds (above 0); the probe ends by then, whatever "
                        "the server sends")
    p.add_argument("--gateway", metavar="URL", help="https://[USER@]HOST[:PORT] of an RD Gateway")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=run)


def parse_target(url: str, password: str) -> ProbeTarget:
    """ProbeTarget from rdp://[DOMAIN\\]USER@HOST[:PORT]; raises ValueError with a hint."""
    if "://" not in url:
        url = "rdp://" + url
    parts = urlsplit(url)
    if parts.scheme != "rdp":
        raise ValueError(f"expected an rdp:// URL, got scheme {parts.scheme!r}")
    if not parts.hostname:
        raise ValueError("the URL has no host: use rdp://[USER@]HOST[:PORT]")
    user = parts.username or ""
    domain = ""
    if "\\" in user:
        domain, user = user.split("\\", 1)
    elif "%5C" in user.upper():
        idx = user.upper().index("%5C")
        domain, user = user[:idx], user[idx + 3 :]
    try:
        port = parts.port or 3389
    except ValueError as exc:
        raise ValueError(f"bad port in {url!r}: {exc}") from None
    return ProbeTarget(
        host=parts.hostname, port=port, username=user, password=password, domain=domain
    )


def run(args: argparse.Namespace) -> int:
    password = ""
    if args.password_env:
        if args.password_env not in os.environ:
            print(
                f"rdplab probe: environment variable {args.password_env} is not set",
                file=sys.stderr,
            )
            return EXIT_USAGE
        password = os.environ[args.password_env]
    try:
        target = parse_target(args.url, password)
        profile = load_profile(args.profile)
    except (ValueError, ProfileError) as exc:
        print(f"rdplab probe: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not args.password_env:
        print("rdplab probe: no password given: use --password-env VAR (an empty VAR tries an "
              "empty password)", file=sys.stderr)
        return EXIT_USAGE
    if args.cafile is not None:
        problem = _cafile_problem(args.cafile)
        if problem:
            print(f"rdplab probe: --cafile {args.cafile}: {problem}", file=sys.stderr)
            return EXIT_USAGE
    options = ProbeOptions(
        profile=profile,
        cert_policy=args.cert_policy,
        cafile=args.cafile,
        overall_timeout=args.timeout,
    )
    if args.gateway:
        from ..gateway.probe_support import gateway_connector  # optional layer

        try:
            options.connect = gateway_connector(args.gateway, target, options)
        except ValueError as exc:
            print(f"rdplab probe: --gateway: {exc}", file=sys.stderr)
            return EXIT_USAGE
    try:
        with overall_alarm(args.timeout):
            result = run_probe(target, options)
    except DeadlineExceeded:  # fired between the probe's end and the alarm's cancellation
        print(f"rdplab probe: --timeout {args.timeout:g} s reached", file=sys.stderr)
        return 1
    if args.json:
        json.dump(result.as_dict(), sys.stdout, indent=2)
        print()
    else:
        print_trace(result)
    return result.exit_status()


def _cafile_problem(path: Path) -> str | None:
    """Why a --cafile cannot be used (checked before connecting), or None."""
    if not path.is_file():
        return "no such file"
    try:
        data = path.read_bytes()
    except OSError as exc:
        return f"cannot read it: {exc.strerror}"
    if len(data) > 10 << 20:
        return "larger than 10 MB: not a CA bundle"
    try:
        anchors = load_trust_anchors(data)
    except ValueError:
        anchors = []
    if not anchors:
        return "no PEM certificate in it (expected -----BEGIN CERTIFICATE----- blocks)"
    return None
