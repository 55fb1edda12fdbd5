"""Local accounts of a node, generated with Faker from a seed unless the lab gives them."""

from __future__ import annotations

import hashlib
import random
import uuid

from faker import Faker


def seed_for(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big")


def generate_users(seed: int, count: int = 3) -> dict[str, str]:
    """{user name: password}: `labadmin` plus `count` people, reproducible from the seed."""
    fake = Faker()
    fake.seed_instance(seed)
    users = {"labadmin": fake.password(length=16, special_chars=True)}
    while len(users) < count + 1:
        name = f"{fake.first_name()[0]}{fake.last_name()}".lower()[:20]
        users.setdefault(name, fake.password(length=14, special_chars=True))
    return users


def machine_guid(seed: int) -> str:
    """HKLM\\SOFTWARE\\Microsoft\\Cryptography\\MachineGuid, lower-case as Windows writes it."""
    return str(uuid.UUID(int=random.Random(seed).getrandbits(128), version=4))
