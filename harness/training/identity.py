"""A lab's identity: the names, user and password it runs with. `up` takes the lab file's;
a classroom generates one per student (Faker, seeded: the same seed gives the same class)."""

from __future__ import annotations

import dataclasses
from typing import Any

from faker import Faker

from ..lab.definition import LabSpec, NodeSpec

ROLE_PREFIX = {"client": "WS", "gateway": "RDGW", "host": "RDS"}


def apply_identity(spec: LabSpec, identity: dict[str, Any] | None, password: str | None
                   ) -> LabSpec:
    """The spec with the identity's names and user (the password from its 0600 file)."""
    if not identity:
        if password is None:
            return spec
        user = spec.user[0]
        return dataclasses.replace(spec, users={user: password})
    nodes = {role: NodeSpec(role, identity["nodes"].get(role, node.name), node.os, node.updates)
             for role, node in spec.nodes.items()}
    user = identity["user"]
    return dataclasses.replace(
        spec, nodes=nodes, users={user: password or spec.user[1]},
        domain=identity.get("domain", spec.domain),
        dns_domain=identity.get("dns_domain", spec.dns_domain),
        seed=int(identity.get("seed", spec.seed)))


def _password(fake: Faker) -> str:
    return fake.password(length=14, special_chars=True, digits=True, upper_case=True,
                         lower_case=True)


def generate(fake: Faker, index: int) -> tuple[dict[str, Any], str]:
    """One student's identity and password from a seeded Faker (call in order)."""
    word = fake.unique.last_name().split()[0].upper()
    word = "".join(c for c in word if c.isalnum())[:8] or f"S{index}"
    domain = "".join(c for c in fake.unique.company().split()[0].upper() if c.isalnum())[:10]
    domain = domain or f"CORP{index}"
    identity = {
        "nodes": {role: f"{prefix}-{word}"[:15] for role, prefix in ROLE_PREFIX.items()},
        "user": fake.unique.user_name(),
        "domain": domain,
        "dns_domain": f"{domain.lower()}.test",
        "seed": fake.random_int(1, 2**31 - 1),
    }
    return identity, _password(fake)
