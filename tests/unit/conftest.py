"""The unit tier's inner loop: labs built here draw their RSA keys from one pool made once per
session (as a matrix run does), instead of generating three RSA-2048 keys per lab; and the
Vagrant fakes' `world` fixture."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from harness.pki import KeyPool

# the Vagrant fakes' `world` fixture (tests/unit/test_vagrant_backend.py)
with contextlib.suppress(pytest.skip.Exception):
    from tests.vagrant_fakes import world  # noqa: F401


@pytest.fixture(scope="session")
def _session_key_pool() -> KeyPool:
    return KeyPool(8)


@pytest.fixture(autouse=True)
def _unit_key_pool(_session_key_pool: KeyPool) -> Iterator[None]:
    previous = KeyPool._active
    KeyPool._active = previous or _session_key_pool
    try:
        yield
    finally:
        KeyPool._active = previous
