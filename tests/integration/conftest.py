"""Fixtures the integration tier shares: the Vagrant fakes' `world` (when python-vagrant,
pywinrm and testinfra are installed; the tests that use it skip otherwise)."""

import contextlib

import pytest

with contextlib.suppress(pytest.skip.Exception):
    from tests.vagrant_fakes import world  # noqa: F401
