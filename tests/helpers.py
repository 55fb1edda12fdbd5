"""Small builders the tests share: a running emulated host with a given policy, and what a lab
namespace's kernel learned about path MTUs."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from harness.host.credentials import check_pair
from harness.host.policy import CredentialUnavailable, HostPolicy, TlsCredential
from harness.host.server import EmulatedHost, listen
from harness.pki import KeyPair
from harness.rdp import events as ev

if TYPE_CHECKING:
    from harness.net import NetLab

USER, PASSWORD = "alice", "Secret1!"


def policy_for(pair: KeyPair, **changes: Any) -> HostPolicy:
    base = HostPolicy(load_credential=lambda: check_pair(pair.cert_pem, pair.key_pem),
                      users={USER: PASSWORD})
    return replace(base, **changes)


def broken_key_policy(pair: KeyPair, **changes: Any) -> HostPolicy:
    def load() -> TlsCredential:
        raise CredentialUnavailable("keyset does not exist (MachineKeys ACL)", 36870)

    return replace(policy_for(pair), load_credential=load, **changes)


@contextlib.contextmanager
def running_host(policy: HostPolicy) -> Iterator[tuple[EmulatedHost, list[ev.HostLog]]]:
    log: list[ev.HostLog] = []
    host = EmulatedHost(lambda: policy, on_event=log.append, idle_timeout=10)
    host.start(listen("127.0.0.1", 0))
    try:
        yield host, log
    finally:
        host.stop()


def learned_path_mtus(lab: NetLab) -> dict[str, str]:
    """Per endpoint, what `ip route get <other endpoint>` says when it carries a learned MTU."""
    found = {}
    for node in lab.topology.endpoints():
        for other in lab.topology.endpoints():
            if other != node:
                out = subprocess.run(
                    ["ip", "-n", lab.ns(node), "route", "get", lab.address(other)],
                    capture_output=True, text=True, timeout=10, check=True).stdout
                if " mtu " in out:
                    found[f"{node}->{other}"] = " ".join(out.split())
    return found
