"""Running the iproute2 / nftables / tc command-line tools, with one error type."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Sequence

DEFAULT_TIMEOUT = 10.0


class NetError(RuntimeError):
    """A network-namespace operation failed (the tool's stderr is in the message)."""


def run(
    argv: Sequence[str],
    *,
    input: str | None = None,
    check: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """Run argv, capture text output; raise NetError on a non-zero exit when check is set."""
    try:
        proc = subprocess.run(
            list(argv), input=input, capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError as exc:
        raise NetError(f"{argv[0]}: not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise NetError(f"{' '.join(argv)}: timed out after {timeout} s") from exc
    if check and proc.returncode != 0:
        raise NetError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def ip_batch(
    lines: Iterable[str], *, ns: str | None = None, force: bool = False, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run `ip [-n ns] [-force] -batch -` with one ip command (without the `ip`) per line."""
    argv = ["ip"]
    if ns is not None:
        argv += ["-n", ns]
    if force:
        argv.append("-force")
    argv += ["-batch", "-"]
    return run(argv, input="".join(f"{line}\n" for line in lines), check=check)
