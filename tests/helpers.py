"""Small builders the tests share: a running emulated host with a given policy."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from harness.host.credentials import check_pair
from harness.host.policy import CredentialUnavailable, HostPolicy, TlsCredential
from harness.host.server import EmulatedHost, listen
from harness.pki import KeyPair
from harness.rdp import events as ev

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
